"""`python -m inspection` against the stores real pipeline runs leave, and bad stores."""

import html.parser
import json
import os
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from conftest import PROJECT_DIR
from inspection import cli as inspect_lib

COMPONENTS = {'CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
              'DataValidationGate', 'Transform', 'ColumnarExamplesGen', 'Trainer',
              'latest_blessed_model_resolver', 'Evaluator', 'Pusher'}


def _inspect(capsys, *argv):
  code = inspect_lib.main(list(argv))
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _json(capsys, *argv):
  code, out, err = _inspect(capsys, *argv, '--json')
  assert code == 0, err
  return json.loads(out)


def _store_args(run):
  config, _ = run
  return ('--store', config.paths.metadata_path)


@pytest.mark.slow
def test_runs_list_each_component_with_state_and_times(sample_run, capsys):
  described = _json(capsys, 'runs', *_store_args(sample_run))
  assert described['pipeline'] == 'movielens-sample'
  first = described['runs'][0]
  assert {c['component'] for c in first['components']} == COMPONENTS
  assert all(c['state'] == 'COMPLETE' for c in first['components'])
  trainer = next(c for c in first['components'] if c['component'] == 'Trainer')
  assert trainer['seconds'] > 1 and first['seconds'] >= trainer['seconds']
  assert first['started'] <= trainer['started'] <= trainer['ended'] <= first['ended']

  code, text, _ = _inspect(capsys, 'runs', *_store_args(sample_run))
  assert code == 0
  assert f'Run {first["run_id"]}' in text
  assert all(component in text for component in COMPONENTS)


@pytest.mark.slow
def test_artifacts_are_listed_by_type_with_their_producers(sample_run, capsys):
  run_id = _json(capsys, 'runs', *_store_args(sample_run))['runs'][0]['run_id']
  artifacts = _json(capsys, 'artifacts', '--run', run_id, *_store_args(sample_run))
  by_type = {}
  for artifact in artifacts:
    by_type.setdefault(artifact['type'], []).append(artifact)
  assert {'Examples', 'ExampleStatistics', 'Schema', 'ExampleAnomalies', 'TransformGraph',
          'Model', 'ModelEvaluation', 'ModelBlessing', 'PushedModel'} <= set(by_type)
  # Transform writes neither examples nor statistics when the Trainer reads columns.
  assert sorted(a['produced_by'] for a in by_type['Examples']) == [
      'ColumnarExamplesGen', 'CsvExampleGen']
  assert [a['produced_by'] for a in by_type['ExampleStatistics']] == ['StatisticsGen']
  assert [a['properties']['blessed'] for a in by_type['ModelBlessing']] == [1]
  pushed, = by_type['PushedModel']
  assert pushed['properties']['pushed'] == 1
  assert os.path.isdir(pushed['properties']['pushed_destination'])

  models = _json(capsys, 'artifacts', '--type', 'Model', *_store_args(sample_run))
  assert models and {m['produced_by'] for m in models} == {'Trainer'}
  code, text, _ = _inspect(capsys, 'artifacts', '--type', 'Model', *_store_args(sample_run))
  assert code == 0 and text.startswith(f'Model ({len(models)})')


def _edges(node, edges=None):
  """(downstream type, input key, upstream type, upstream producer) for every input."""
  edges = set() if edges is None else edges
  for key, upstream in node['inputs'].items():
    for child in upstream:
      edges.add((node['type'], key, child['type'], child['produced_by']))
      _edges(child, edges)
  return edges


def _find(node, producer):
  if node['produced_by'] == producer:
    return node
  for upstream in node['inputs'].values():
    for child in upstream:
      found = _find(child, producer)
      if found:
        return found
  return None


@pytest.mark.slow
def test_the_pushed_model_traces_back_to_data_schema_and_config(sample_run, capsys):
  config, _ = sample_run
  lineage = _json(capsys, 'lineage', *_store_args(sample_run))
  assert lineage['type'] == 'PushedModel' and lineage['produced_by'] == 'Pusher'
  assert {
      ('PushedModel', 'model', 'Model', 'Trainer'),
      ('PushedModel', 'model_blessing', 'ModelBlessing', 'Evaluator'),
      ('Model', 'examples', 'Examples', 'ColumnarExamplesGen'),
      ('Model', 'transform_graph', 'TransformGraph', 'Transform'),
      # The columnar examples are the raw examples through the transform graph.
      ('Examples', 'examples', 'Examples', 'CsvExampleGen'),
      ('Examples', 'transform_graph', 'TransformGraph', 'Transform'),
      ('TransformGraph', 'examples', 'Examples', 'CsvExampleGen'),
      ('TransformGraph', 'schema', 'Schema', 'ImportSchemaGen'),
  } <= _edges(lineage)
  data = _find(lineage, 'CsvExampleGen')['execution']
  assert data['input_base'] == os.path.dirname(config.paths.input)
  assert 'total_bytes:' in data['input_fingerprint']
  schema_import = _find(lineage, 'ImportSchemaGen')
  assert schema_import['execution']['schema_file'] == config.paths.schema_file
  trainer = _find(lineage, 'Trainer')['execution']
  assert trainer['training']['batch_size'] == config.training.batch_size
  assert trainer['label'] == 'rating >= 4'

  code, text, _ = _inspect(capsys, 'lineage', *_store_args(sample_run))
  assert code == 0 and text.startswith('PushedModel #')
  assert '(shown above)' in text  # the raw examples feed Transform and the Evaluator


@pytest.mark.slow
def test_evaluation_shows_metrics_slices_blessing_and_anomalies(sample_run, capsys):
  config, _ = sample_run
  described = _json(capsys, 'evaluation', '--slices', '3', *_store_args(sample_run))
  overall = described['evaluation']['overall']
  assert {'auc', 'average_precision', 'calibration', 'mean_label', 'mean_prediction',
          'binary_accuracy'} <= set(overall)
  assert overall['example_count'] > 1000
  assert overall['auc'] >= config.evaluation.min_auc
  slices = described['evaluation']['slices']
  assert len(slices) == 3 and all(s['slice'].startswith('movieId=') for s in slices)
  counts = [s['metrics']['example_count'] for s in slices]
  assert counts == sorted(counts, reverse=True)
  blessing = described['blessing']
  assert blessing['blessed'] and blessing['reason'] == 'passed every threshold'
  assert f'auc >= {config.evaluation.min_auc:g}' in blessing['thresholds']
  assert described['anomalies'] == {'train': {}, 'eval': {}}

  code, text, _ = _inspect(capsys, 'evaluation', *_store_args(sample_run))
  assert code == 0 and ': BLESSED (passed every threshold)' in text
  assert 'Anomalies: none' in text


@pytest.mark.slow
def test_an_unblessed_model_says_which_threshold_it_failed(shuffled_run, capsys):
  described = _json(capsys, 'evaluation', *_store_args(shuffled_run))
  blessing = described['blessing']
  assert not blessing['blessed']
  auc = described['evaluation']['overall']['auc']
  assert blessing['reason'].startswith(f'auc = {auc:.4f} on Overall')
  code, text, _ = _inspect(capsys, 'evaluation', *_store_args(shuffled_run))
  assert code == 0 and 'NOT BLESSED (auc = ' in text


class _Elements(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.tags = []
    self.text = []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)

  def handle_data(self, data):
    self.text.append(data)


@pytest.mark.slow
def test_the_run_report_shows_data_training_evaluation_and_the_model(sample_run, capsys,
                                                                      tmp_path):
  output = tmp_path / 'report.html'
  code, out, err = _inspect(capsys, 'report', '--output', str(output),
                            *_store_args(sample_run))
  assert code == 0, err
  assert out.strip() == f'wrote {output}'
  page = _Elements()
  page.feed(output.read_text())
  text = ' '.join(page.text)
  for heading in ('Components', 'Data', 'Anomalies against the schema', 'Training',
                  'Evaluation (TFMA)', 'Pushed model', 'Lineage of the pushed model',
                  'Models, oldest first'):
    assert heading in text, heading
  assert 'train: 4,' in text and 'eval: 1,' in text  # example counts per split
  assert page.tags.count('polyline') >= 4  # loss and AUC, train and validation
  assert 'BLESSED' in text and 'serving_default' in text and 'transform_features' in text
  assert 'examples: string (None)' in text
  assert all(component in text for component in COMPONENTS)
  assert 'serving' in text  # the models table marks the one serving


def _store_with_pipeline(path, name):
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = str(path)
  store = metadata_store.MetadataStore(connection)
  type_id = store.put_context_type(metadata_store_pb2.ContextType(name='pipeline'))
  store.put_contexts([metadata_store_pb2.Context(type_id=type_id, name=name)])


@pytest.mark.parametrize('prepare, argv, message', [
    (lambda d: None, ('--store', '{d}/absent.sqlite'), 'no ML Metadata store at'),
    (lambda d: (d / 'empty.sqlite').write_bytes(b''), ('--store', '{d}/empty.sqlite'),
     'is empty'),
    (lambda d: (d / 'notes.sqlite').write_text('not a database'),
     ('--store', '{d}/notes.sqlite'), 'is not a readable ML Metadata store'),
    (lambda d: _store_with_pipeline(d / 'other.sqlite', 'other-pipeline'),
     ('--store', '{d}/other.sqlite', '--pipeline', 'movielens-sample'),
     "holds pipeline(s) other-pipeline, not 'movielens-sample'"),
    (lambda d: _store_with_pipeline(d / 'fresh.sqlite', 'movielens-sample'),
     ('--store', '{d}/fresh.sqlite'), "holds no runs of pipeline 'movielens-sample'"),
    (lambda d: None, ('--config', '{d}/absent.yaml'), 'absent.yaml: <file>: cannot be read'),
])
def test_a_store_that_cannot_answer_is_an_error_not_a_traceback(tmp_path, capsys, prepare,
                                                                 argv, message):
  prepare(tmp_path)
  before = sorted(os.listdir(tmp_path))
  code, out, err = _inspect(capsys, 'evaluation', *[a.format(d=tmp_path) for a in argv])
  assert code == 1 and not out
  assert err.startswith('inspect: ') and message in err
  assert sorted(os.listdir(tmp_path)) == before  # nothing created or changed


@pytest.mark.slow
def test_an_unknown_run_or_artifact_is_named(sample_run, capsys):
  code, _, err = _inspect(capsys, 'evaluation', '--run', 'yesterday', *_store_args(sample_run))
  assert code == 1 and "no run 'yesterday' of pipeline 'movielens-sample'; its runs are" in err
  code, _, err = _inspect(capsys, 'lineage', '999999', *_store_args(sample_run))
  assert code == 1 and 'no artifact with id 999999' in err


@pytest.mark.parametrize('command', [
    [sys.executable, '-m', 'inspection'],
    [sys.executable, '-m', 'pipeline.inspect'],  # the tool's old name, kept working
    [os.path.join(os.path.dirname(sys.executable), 'ranker-inspect')],  # setup.py's script
])
def test_the_command_line_exits_cleanly_on_a_missing_store(tmp_path, command):
  result = subprocess.run(
      [*command, 'runs', '--store', str(tmp_path / 'metadata.sqlite')],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 1
  assert result.stderr.strip().endswith(
      f'inspect: no ML Metadata store at {tmp_path / "metadata.sqlite"}: run the pipeline '
      'first (python local_runner.py), or pass --store with the path of its metadata.sqlite')
  assert 'Traceback' not in result.stderr


@pytest.mark.slow
def test_models_list_each_trained_model_and_the_one_serving(sample_run, capsys):
  models = _json(capsys, 'models', *_store_args(sample_run))
  first = models[0]
  # The sample's input has no spans (span 0); the first model starts cold and serves
  # unless a later one was pushed.
  assert first['spans'] == [0] and first['warm_started_from'] is None
  assert first['blessed'] is True and first['pushed'] is True
  evaluation = _json(capsys, 'evaluation', '--run', first['run_id'], *_store_args(sample_run))
  assert first['auc'] == pytest.approx(evaluation['evaluation']['overall']['auc'])
  serving = [m for m in models if m['serving']]
  assert len(serving) == 1 and serving[0]['pushed']
  code, text, _ = _inspect(capsys, 'models', *_store_args(sample_run))
  assert code == 0
  line = next(l for l in text.splitlines() if l.startswith(f'#{first["model_id"]} '))
  assert first['run_id'] in line and 'yes' in line
  assert sum('serving' in l for l in text.splitlines()) == 1
