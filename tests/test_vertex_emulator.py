"""vertex_runner.py --emulate runs the compiled Vertex AI spec on this machine as Vertex AI
would: the tasks' own container commands in a folder laid out as the image, resolvers
answered from the emulator's ML Metadata, the Trainer's custom job as local processes.

The end-to-end runs are real processes, as a person starts them: the shipped sample's
Vertex config (a TPU v5e Trainer, which trains on CPU here) reading span 2 of the sample
cut by year from "Cloud Storage", with a window of 2 spans; then a second run in the same
folder on span 3 with a 2-replica CPU pool, which must reuse the cache, find the first
run's span history and model (the window holds spans 2 and 3, the tables start warm),
judge its model against the first run's, and deploy it to an Endpoint (recorded, not
made).
"""

import glob
import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import PROJECT_DIR
from pipeline.vertex_emulator import image as image_lib
from pipeline.vertex_emulator import run as run_lib
from pipeline.vertex_emulator import store as store_lib
from pipeline.vertex_emulator.container import emulated_services

VERTEX_SAMPLE = os.path.join(PROJECT_DIR, 'configs', 'vertex_sample.yaml')
SPANS_TOOL = os.path.join(PROJECT_DIR, 'data', 'spans.py')
# Both runs: the sample by year under gs://my-bucket/spans, a window of 2 spans, warm start.
CONTINUOUS = ('--set', 'paths.input=gs://my-bucket/spans/span-{SPAN:3}/ratings.csv',
              '--set', 'training.window_spans=2', '--set', 'training.warm_start=latest_blessed',
              '--set', 'training.epochs=3', '--set', 'evaluation.min_auc=0.5')
# The second run: two CPU replicas, and the blessed model deployed to an Endpoint.
SECOND_RUN = ('--set', 'vertex.trainer.machine_type=n1-standard-4',
              '--set', 'vertex.trainer.replica_count=2',
              '--set', 'vertex.endpoint.name=ranker',
              '--set', 'vertex.endpoint.serving_image=us-docker.pkg.dev/vertex-ai/prediction/'
              'tf2-cpu.2-15:latest')
_TASK_LINE = re.compile(r'^\d\d:\d\d:\d\d  (\S+) +(.*)$')


def _emulate(folder, *args, timeout=900) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, os.path.join(PROJECT_DIR, 'vertex_runner.py'),
       '--config', VERTEX_SAMPLE, '--emulate', str(folder), *CONTINUOUS, *args],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=timeout, check=False)


def _spans_in_the_bucket(folder):
  subprocess.run([sys.executable, SPANS_TOOL, os.path.join(PROJECT_DIR, 'data', 'sample',
                                                            'ratings.csv'),
                  '--by', 'year', '--out', str(folder / 'gcs' / 'my-bucket' / 'spans')],
                 check=True, capture_output=True)


def _executor_output(folder, run_line, task):
  with open(os.path.join(_task_folder(folder, run_line, task), 'executor_output.json')) as f:
    return json.load(f)


def _results(stdout):
  """{task: what its line says} from the emulator's console."""
  return {m[1]: m[2] for m in map(_TASK_LINE.match, stdout.splitlines()) if m}


def _task_folder(folder, run_line, task):
  run_id = re.search(r'as run (\S+)', run_line)[1]
  found = glob.glob(os.path.join(folder, 'gcs', 'my-bucket', 'ranker', 'sample',
                                 'pipeline_root', run_id, f'{task}_*'))
  assert len(found) == 1, found
  return found[0]


@pytest.fixture(scope='module')
def emulated(tmp_path_factory):
  """(folder, first run, second run): the shipped config, then SECOND_RUN's."""
  folder = tmp_path_factory.mktemp('vertex') / 'emulated'
  _spans_in_the_bucket(folder)
  first = _emulate(folder, '--span', '2')
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  second = _emulate(folder, '--span', '3', *SECOND_RUN)
  return folder, first, second


@pytest.mark.slow
def test_the_sample_spec_runs_to_a_pushed_model_that_scores(emulated):
  folder, first, _ = emulated
  results = _results(first.stdout)
  spec = json.loads((folder / 'pipeline.json').read_text())
  assert set(results) == set(spec['pipelineSpec']['root']['dag']['tasks'])
  assert results['Evaluator'].endswith(': blessed'), first.stdout
  # What stood in for the cloud is said, once each.
  assert 'the Beam steps run on the DirectRunner' in first.stdout
  assert 'it trains on CPU here (no TPU)' in first.stdout
  destination = re.search(r'pushed to (\S+)', results['Pusher'])[1]
  assert destination.startswith(str(folder / 'gcs' / 'my-bucket' / 'ranker' / 'sample' /
                                    'serving'))
  model = tf.saved_model.load(destination)
  examples = [tf.train.Example(features=tf.train.Features(feature={
      'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
      'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[movie])),
  })).SerializeToString() for user, movie in ((284, 770), (10**9, 10**9))]
  scores = model.signatures['serving_default'](examples=tf.constant(examples))
  assert all(0.0 < float(p) < 1.0 for p in scores['probability'])


@pytest.mark.slow
def test_the_tpu_trainer_is_a_custom_job_the_emulator_received(emulated):
  folder, _, _ = emulated
  request = json.loads((folder / 'jobs' / '1' / 'request.json').read_text())
  pool, = request['custom_job']['job_spec']['worker_pool_specs']
  assert pool['machine_spec']['accelerator_type'] == 'TPU_V5_LITEPOD'
  assert request['endpoint'] == 'us-central1-aiplatform.googleapis.com'
  assert pool['container_spec']['command'][:3] == ['python', '-m', 'tfx.scripts.run_executor']
  log = (folder / 'jobs' / '1' / 'workerpool0-0.log').read_text()
  assert 'Input pipeline 0 of 1' in log


@pytest.mark.slow
def test_a_second_run_reuses_the_cache_and_judges_against_the_first(emulated):
  folder, first, second = emulated
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  results = _results(second.stdout)
  assert results['ImportSchemaGen'] == 'cached', second.stdout
  # A new span: read, and everything after it runs again.
  for task in ('CsvExampleGen', 'StatisticsGen', 'SpanWindow', 'Transform', 'Trainer',
               'Evaluator', 'Pusher'):
    assert results[task].startswith('ran'), second.stdout
  first_model = json.loads(open(os.path.join(
      _task_folder(folder, first.stdout, 'Trainer'), 'executor_output.json')).read())
  first_model_name = first_model['artifacts']['model']['artifacts'][0]['name']
  assert results['latest_blessed_model_resolver-model-resolver'] == (
      f'resolved {first_model_name.rsplit("/", 1)[-1]}')
  evaluation = json.loads(open(os.path.join(
      _task_folder(folder, second.stdout, 'Evaluator'), 'executor_output.json')).read())
  blessing = evaluation['artifacts']['blessing']['artifacts'][0]['metadata']
  assert blessing['baseline_model_id'] == first_model_name


@pytest.mark.slow
def test_the_span_is_the_pipeline_parameter_and_the_window_spans_both_runs(emulated):
  """ExampleGen's driver reads the span the run names; the second run's SpanWindow finds
  the first run's history through Vertex's latest-artifact query and links span 2's files
  beside span 3's; each span is read once."""
  folder, first, second = emulated
  for run, span in ((first, 2), (second, 3)):
    examples = _executor_output(folder, run.stdout, 'CsvExampleGen')['artifacts'][
        'examples']['artifacts'][0]['metadata']
    # TFX 1.16's driver records the span as a custom property: `custom:span` on Vertex.
    assert examples['custom:span'] == span
  first_history = _executor_output(folder, first.stdout, 'SpanWindow')['artifacts'][
      'history']['artifacts'][0]['name']
  assert _results(second.stdout)['latest_span_history_resolver'] == (
      f'resolved {first_history.rsplit("/", 1)[-1]}')
  window = _executor_output(folder, second.stdout, 'SpanWindow')['artifacts']['window'][
      'artifacts'][0]
  assert window['metadata']['spans'] == '2,3'
  linked = sorted(os.listdir(os.path.join(window['uri'], 'Split-train')))
  assert [name[:11] for name in linked] == ['span-000002', 'span-000003']
  # The second run's tables started from the first run's model.
  assert 'Warm start: the tables start from' in (folder / 'jobs' / '2' /
                                                 'workerpool0-0.log').read_text()


@pytest.mark.slow
def test_an_endpoint_deployment_is_recorded_not_made(emulated):
  folder, _, second = emulated
  assert 'the Endpoint deployment is written to' in second.stdout
  assert _results(second.stdout)['Pusher'].endswith(
      'pushed to projects/my-gcp-project/locations/us-central1/endpoints/ranker')
  deployment, = (folder / 'endpoints').iterdir()
  request = json.loads(deployment.read_text())
  assert request['serving_args']['endpoint_name'] == 'ranker'
  assert os.path.exists(os.path.join(request['serving_path'], 'saved_model.pb'))


@pytest.mark.slow
def test_two_replicas_train_in_two_processes_on_disjoint_input(emulated):
  folder, _, _ = emulated
  job = folder / 'jobs' / '2'
  pools = json.loads((job / 'request.json').read_text())['custom_job']['job_spec'][
      'worker_pool_specs']
  assert [p['replica_count'] for p in pools] == [1, 1]
  pipelines = set()
  for replica in ('workerpool0-0', 'workerpool1-0'):
    found = set(re.findall(r'Input pipeline (\d) of 2', (job / f'{replica}.log').read_text()))
    assert len(found) == 1, replica
    pipelines |= found
  # Each worker reads its own part: blocks[i::2] (modules/data/columnar.py).
  assert pipelines == {'0', '1'}


def _broken_spec(emulated, tmp_path, edit):
  folder, _, _ = emulated
  spec = json.loads((folder / 'pipeline.json').read_text())
  edit(spec['pipelineSpec'])
  path = tmp_path / 'broken.json'
  path.write_text(json.dumps(spec))
  _spans_in_the_bucket(tmp_path / 'run')
  return path


@pytest.mark.slow
def test_an_executor_the_image_lacks_fails_naming_the_task(emulated, tmp_path, capsys):
  def outside_the_image(spec):
    # run_console.py sits in the project folder, which imports it; the image has no copy.
    args = spec['deploymentSpec']['executors']['CsvExampleGen_executor']['container']['args']
    args[args.index('--executor_class_path') + 1] = 'run_console.RunProgress'
  path = _broken_spec(emulated, tmp_path, outside_the_image)
  code = run_lib.emulate(str(path), str(tmp_path / 'run'), PROJECT_DIR)
  out = capsys.readouterr().out
  assert code == 1
  assert re.search(r'CsvExampleGen +FAILED', out), out
  assert "cause: ModuleNotFoundError: No module named 'run_console'" in out
  assert 'command: python -m tfx.orchestration.kubeflow.v2.container' in out


@pytest.mark.slow
def test_an_artifact_type_vertex_refuses_stops_the_run_before_any_task(emulated, tmp_path,
                                                                       capsys):
  def unnamespaced(spec):
    artifact = spec['components']['DataValidationGate']['outputDefinitions']['artifacts'][
        'verdict']
    artifact['artifactType'] = {'instanceSchema': 'title: DataVerdict\ntype: object\n'}
  path = _broken_spec(emulated, tmp_path, unnamespaced)
  code = run_lib.emulate(str(path), str(tmp_path / 'run'), PROJECT_DIR)
  out = capsys.readouterr().out
  assert code == 1
  assert "task DataValidationGate: artifact verdict has type 'DataVerdict'" in out
  assert 'MetadataSchema must include a schema title' in out
  assert not (tmp_path / 'run' / 'logs').exists()


def test_the_image_folder_is_what_the_dockerfile_copies(tmp_path):
  project = tmp_path / 'project'
  (project / 'pkg' / '__pycache__').mkdir(parents=True)
  (project / 'pkg' / 'a.py').write_text('')
  (project / 'pkg' / '__pycache__' / 'a.pyc').write_text('')
  (project / 'setup.py').write_text('')
  (project / 'left_out.py').write_text('')
  (project / 'Dockerfile').write_text(
      'FROM base\nWORKDIR /app\nENV A=1 B=2\nCOPY setup.py ./\nCOPY pkg/ pkg/\n'
      'RUN pip install \\\n  -e .\n')
  folder = image_lib.lay_out(str(project), str(tmp_path / 'image'))
  assert folder.workdir == '/app' and folder.env == {'A': '1', 'B': '2'}
  files = sorted(os.path.relpath(os.path.join(d, f), folder.root)
                 for d, _, names in os.walk(folder.root) for f in names)
  assert files == ['app/pkg/a.py', 'app/setup.py']


def test_paths_map_to_the_folder_and_dataflow_to_the_direct_runner(tmp_path):
  folder = image_lib.ImageFolder(str(tmp_path / 'image'), '/pipeline', {})
  places = run_lib.Places(str(tmp_path / 'gcs'), folder)
  text = places.local(json.dumps({'input': '/pipeline/data/sample',
                                  'root': 'gs://b/ranker/pipeline_root',
                                  'image': 'us-docker.pkg.dev/p/ranker/pipeline:1.0'}))
  assert json.loads(text) == {'input': f'{tmp_path}/image/pipeline/data/sample',
                              'root': f'{tmp_path}/gcs/b/ranker/pipeline_root',
                              'image': 'us-docker.pkg.dev/p/ranker/pipeline:1.0'}
  args, dropped = run_lib.direct_runner(['--executor_class_path', 'x', '--runner=DataflowRunner',
                                         '--project=p', '--temp_location=gs://t',
                                         '--direct_num_workers=2'], '/image/setup.py')
  assert args == ['--executor_class_path', 'x', '--runner=DirectRunner',
                  '--setup_file=/image/setup.py', '--direct_num_workers=2']
  assert dropped == ['--project', '--temp_location']


def test_resolver_filters_become_ml_metadata_queries():
  blessing = ('schema_title="tfx.ModelBlessing" AND state=LIVE AND '
              'metadata.blessed.number_value=1')
  assert store_lib.mlmd_filter('r', blessing) == (
      "type = 'tfx.ModelBlessing' AND state = LIVE AND "
      'custom_properties.blessed.double_value = 1')
  with pytest.raises(ValueError, match=r'task r: resolver filter clause .*create_time'):
    store_lib.mlmd_filter('r', 'create_time>"2026-01-01"')


def test_the_newest_matching_artifact_answers_a_resolver(tmp_path):
  store = store_lib.EmulatorStore(str(tmp_path / 'm.sqlite'))
  blessing = {'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}
  for name, blessed in (('old', 1), ('new', 1), ('newest', 0)):
    store.put([{'name': name, 'uri': f'/x/{name}', 'type': blessing,
                'metadata': {'blessed': blessed, 'current_model_id': f'm-{name}'}}])
  found = store.query('r', 'schema_title="tfx.ModelBlessing" AND state=LIVE AND '
                      'metadata.blessed.number_value=1')
  assert [(a['name'], a['metadata']['current_model_id']) for a in found] == [('new', 'm-new')]
  assert store.query('r', 'schema_title="tfx.Model" AND state=LIVE') == []


def test_replicas_get_tf_config_and_cluster_spec_as_vertex_sets_them():
  command = ['python', '-m', 'tfx.scripts.run_executor', '--exec-properties',
             json.dumps({'custom_config': json.dumps({'training': {'tpu': 'local'}})})]
  tpu_pool = {'machine_spec': {'accelerator_type': 'TPU_V5_LITEPOD'}, 'replica_count': 1,
              'container_spec': {'command': command, 'env': [
                  {'name': 'TF_PLUGGABLE_DEVICE_LIBRARY_PATH', 'value': '/lib/libtpu.so'},
                  {'name': 'KEPT', 'value': '1'}]}}
  tpu, = emulated_services.replicas({'worker_pool_specs': [tpu_pool]})
  assert 'TF_PLUGGABLE_DEVICE_LIBRARY_PATH' not in tpu['env'] and tpu['env']['KEPT'] == '1'
  properties = json.loads(tpu['command'][-1])
  assert json.loads(properties['custom_config'])['training']['tpu'] == ''

  cpu_pool = {'machine_spec': {'machine_type': 'n1-standard-4'}, 'replica_count': 1,
              'container_spec': {'command': command}}
  pools = [cpu_pool, {**cpu_pool, 'replica_count': 2}]
  chief, *workers = emulated_services.replicas({'worker_pool_specs': pools})
  assert [r['name'] for r in [chief, *workers]] == ['workerpool0-0', 'workerpool1-0',
                                                    'workerpool1-1']
  tf_config = json.loads(workers[1]['env']['TF_CONFIG'])
  assert tf_config['task'] == {'type': 'worker', 'index': 1}
  assert len(tf_config['cluster']['chief']) == 1 and len(tf_config['cluster']['worker']) == 2
  cluster_spec = json.loads(chief['env']['CLUSTER_SPEC'])
  assert cluster_spec['task'] == {'type': 'workerpool0', 'index': 0}
  assert set(cluster_spec['cluster']) == {'workerpool0', 'workerpool1'}
  assert chief['command'] == command  # a CPU pool runs exactly what was sent


def test_the_root_cause_is_the_first_exception_of_the_last_chain():
  log = ('Traceback (most recent call last):\n  File "x"\n'
         "ModuleNotFoundError: No module named 'run_console'\n\n"
         'The above exception was the direct cause of the following exception:\n\n'
         'Traceback (most recent call last):\n'
         'ImportError: Could not import run_console.RunProgress\n')
  assert run_lib.root_cause(log) == (
      "ModuleNotFoundError: No module named 'run_console' "
      '(raised as ImportError: Could not import run_console.RunProgress)')
  assert run_lib.root_cause('KeyError: 1\nlater\nValueError: b\n') == 'ValueError: b'
  assert run_lib.root_cause('killed\n') == 'killed'


def test_an_importer_records_its_uri_once_unless_told_to_reimport(tmp_path, capsys):
  schema = {'instanceSchema': 'title: tfx.Schema\ntype: object\n'}
  spec = {'pipelineSpec': {
      'pipelineInfo': {'name': 'p'},
      'components': {'schema_importer': {'executorLabel': 'schema_importer_executor',
                                         'outputDefinitions': {'artifacts': {
                                             'result': {'artifactType': schema}}}}},
      'deploymentSpec': {'executors': {'schema_importer_executor': {'importer': {
          'artifactUri': {'constantValue': {'stringValue': 'gs://b/schema'}},
          'typeSchema': schema}}}},
      'root': {'dag': {'tasks': {'schema_importer': {
          'componentRef': {'name': 'schema_importer'},
          'taskInfo': {'name': 'schema_importer'}}}}}},
      'runtimeConfig': {'gcsOutputDirectory': 'gs://b/root'}}
  path = tmp_path / 'spec.json'
  path.write_text(json.dumps(spec))
  for _ in range(2):
    assert run_lib.emulate(str(path), str(tmp_path / 'run'), PROJECT_DIR) == 0
  out = capsys.readouterr().out
  assert f'imported {tmp_path}/run/gcs/b/schema\n' in out
  assert f'imported {tmp_path}/run/gcs/b/schema (recorded before)' in out


def test_the_span_history_resolver_answers_with_the_newest_history(tmp_path):
  """What the window's latest-artifact query gets on Vertex AI: the newest span history (a File) of
  the store, whichever run made it."""
  store = store_lib.EmulatorStore(str(tmp_path / 'm.sqlite'))
  history = {'instanceSchema': 'title: tfx.File\ntype: object\n'}
  for name in ('run-1', 'run-2'):
    store.put([{'name': name, 'uri': f'/x/{name}', 'type': history, 'metadata': {}}])
  found = store.query('latest_span_history_resolver',
                      'schema_title="tfx.File" AND state=LIVE')
  assert [a['name'] for a in found] == ['run-2']
