"""The pipeline on the shipped sample, run for real with LocalDagRunner, checked from ML Metadata."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import anomalies_pb2

import console
from conftest import PROJECT_DIR, SAMPLE_CONFIG
from contract.names import REUSED_EVALUATION_KEY
from inspection import artifact_contents
from inspection import run_store
from modules.data import columnar
from pipeline import config as config_lib
from pipeline import graph
from pipeline import paths
import run_console

FIRST_HALF = ('CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
              'DataValidationGate', 'Transform')
COMPONENTS = FIRST_HALF + ('ColumnarExamplesGen', 'Trainer', 'latest_blessed_model_resolver',
                          'Evaluator', 'Pusher')


@pytest.mark.parametrize('input_glob, expected', [
    ('/data/ml/*.csv.gz', ('/data/ml', '*.csv.gz')),
    ('/data/ml/ratings.csv', ('/data/ml', 'ratings.csv')),
    ('/data/*/part-*.csv', ('/data', '*/part-*.csv')),
    ('gs://bucket/ratings/*.csv', ('gs://bucket/ratings', '*.csv')),
])
def test_input_glob_splits_into_base_and_pattern(input_glob, expected):
  assert paths.split_input_glob(input_glob) == expected


def test_the_factory_wires_the_first_half():
  config = config_lib.load_config(SAMPLE_CONFIG)
  pipeline = graph.create_pipeline(config, pipeline_root='/tmp/unused')
  ids = [c.id for c in pipeline.components]  # topologically sorted
  assert set(ids) == set(COMPONENTS)
  assert ids.index('CsvExampleGen') < ids.index('StatisticsGen') < ids.index(
      'ExampleValidator') < ids.index('DataValidationGate') < ids.index('Transform')
  assert ids.index('ImportSchemaGen') < ids.index('Transform') < ids.index(
      'ColumnarExamplesGen') < ids.index('Trainer')
  assert ids.index('latest_blessed_model_resolver') < ids.index('Evaluator') < ids.index(
      'Pusher')
  transform = next(c for c in pipeline.components if c.id == 'Transform')
  custom_config = transform.exec_properties['custom_config']
  assert '"vocab_size": 2000' in custom_config and '"operator": ">="' in custom_config


def test_tf_example_input_trains_on_transform_output_directly():
  config = config_lib.load_config(SAMPLE_CONFIG, ['training.input_format=tf_example'])
  pipeline = graph.create_pipeline(config, pipeline_root='/tmp/unused')
  components = {c.id: c for c in pipeline.components}
  assert 'ColumnarExamplesGen' not in components
  assert components['Trainer'].inputs['examples'].producer_component_id == 'Transform'
  assert 'transformed_examples' in components['Transform'].outputs
  columnar_pipeline = graph.create_pipeline(config_lib.load_config(SAMPLE_CONFIG),
                                                   pipeline_root='/tmp/unused')
  transform = next(c for c in columnar_pipeline.components if c.id == 'Transform')
  assert 'transformed_examples' not in transform.outputs


@pytest.mark.parametrize('overrides, validation, test, example_gen_splits', [
    ([], 'eval', 'eval', ['train', 'eval']),
    (['dataset.split={train: 8, validation: 1, test: 1}'], 'validation', 'test',
     ['train', 'validation', 'test']),
    (['dataset.split=', 'dataset.split_by_time={column: timestamp, validation: 0.1, '
      'test: 0.1}'], 'validation', 'test', ['train', 'validation', 'test']),
])
def test_the_trainer_validates_and_the_evaluator_judges_on_their_own_splits(
    overrides, validation, test, example_gen_splits):
  config = config_lib.load_config(SAMPLE_CONFIG, overrides)
  pipeline = graph.create_pipeline(config, pipeline_root='/tmp/unused')
  components = {c.id: c for c in pipeline.components}
  output_config = json.loads(components['CsvExampleGen'].exec_properties['output_config'])
  assert [s['name'] for s in output_config['split_config']['splits']] == example_gen_splits
  assert components['ColumnarExamplesGen'].exec_properties['splits'] == f'train,{validation}'
  trainer = components['Trainer'].exec_properties
  assert json.loads(trainer['train_args']) == {'splits': ['train']}
  assert json.loads(trainer['eval_args']) == {'splits': [validation]}
  assert json.loads(components['Evaluator'].exec_properties['example_splits']) == [test]


def test_statistics_read_every_row_unless_a_sample_rate_is_set():
  def statistics_gen(overrides):
    config = config_lib.load_config(SAMPLE_CONFIG, overrides)
    pipeline = graph.create_pipeline(config, pipeline_root='/tmp/unused')
    return next(c for c in pipeline.components if c.id == 'StatisticsGen')

  assert statistics_gen([]).exec_properties['sample_rate'] == 1.0
  assert artifact_contents.statistics_sample_rate(statistics_gen([]).exec_properties) is None
  sampled = statistics_gen(['statistics.sample_rate=0.05']).exec_properties
  # What the report and the run's progress line read back from ML Metadata.
  assert artifact_contents.statistics_sample_rate(sampled) == 0.05
  assert artifact_contents.statistics_sample_rate({}) is None


def test_local_runner_refuses_a_bad_config_before_running_anything(tmp_path):
  config = tmp_path / 'bad.yaml'
  with open(SAMPLE_CONFIG) as f:
    config.write_text(f.read().replace('vocab_size: 1000', 'vocab_size: -1'))
  output_root = tmp_path / 'out'
  result = console.run('--config', str(config), '--output-root', str(output_root))
  assert result.returncode == 2
  assert f'{config}: features.userId.vocab_size: must be positive, got int -1' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not output_root.exists()


def test_local_runner_refuses_input_without_the_configured_columns(tmp_path):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / 'ratings.csv').write_text('user,item,rating,timestamp\n1,2,4.0,3\n')
  config = tmp_path / 'run.yaml'
  with open(SAMPLE_CONFIG) as f:
    text = f.read()
  config.write_text(text.replace('../data/sample/*.csv', str(data_dir / '*.csv')).replace(
      'schema/movielens_ratings.pbtxt', os.path.join(PROJECT_DIR, 'configs', 'schema',
                                                     'movielens_ratings.pbtxt')))
  result = console.run('--config', str(config), '--output-root', str(tmp_path / 'out'))
  assert result.returncode == 2
  assert 'lacks the configured column(s) userId, movieId' in result.stderr
  assert not (tmp_path / 'out').exists()


def _only_execution(record, component):
  executions = record.executions_by_component()[component]
  assert len(executions) == 1, f'{component}: {len(executions)} executions'
  return executions[0]


def _read_examples(uri, split):
  files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*.gz'))
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]


@pytest.mark.slow
def test_one_completed_execution_per_component(sample_run):
  config, record = sample_run
  assert os.path.exists(config.paths.metadata_path)
  executions = record.executions_by_component()
  assert set(executions) == set(COMPONENTS)
  for component in COMPONENTS:
    execution = _only_execution(record, component)
    assert execution.last_known_state == execution.COMPLETE, component


@pytest.mark.slow
def test_examples_are_split_four_to_one(sample_run):
  _, record = sample_run
  examples, = record.outputs_of(_only_execution(record, 'CsvExampleGen').id)['examples']
  assert examples.uri.startswith(sample_run[0].paths.pipeline_root)
  train, evaluation = (len(_read_examples(examples.uri, s)) for s in ('train', 'eval'))
  assert train + evaluation == 6000
  assert 0.75 < train / 6000 < 0.85
  first = _read_examples(examples.uri, 'train')[0].features.feature
  assert first['userId'].int64_list.value and first['rating'].float_list.value


@pytest.mark.slow
def test_the_sample_matches_the_curated_schema(sample_run):
  _, record = sample_run
  outputs = record.outputs_of(_only_execution(record, 'ExampleValidator').id)
  anomalies_uri = outputs['anomalies'][0].uri
  for split in ('train', 'eval'):
    with open(os.path.join(anomalies_uri, f'Split-{split}', 'SchemaDiff.pb'), 'rb') as f:
      anomalies = anomalies_pb2.Anomalies.FromString(f.read())
    assert not anomalies.anomaly_info, f'{split}: {anomalies.anomaly_info}'


def _transformed_rows(record, split):
  """The sample's raw examples of `split` through the run's transform graph, as
  (label, label_value, movieId, userId) tuples."""
  examples, = record.outputs_of(_only_execution(record, 'CsvExampleGen').id)['examples']
  graph, = record.outputs_of(_only_execution(record, 'Transform').id)['transform_graph']
  tft_output = tft.TFTransformOutput(graph.uri)
  files = tf.io.gfile.glob(os.path.join(examples.uri, f'Split-{split}', '*.gz'))
  batches = columnar.read_columns(
      files, tft_output.raw_feature_spec(), chunk_rows=1000,
      transform=lambda raw: tft_output.transform_raw_features(raw, drop_unused_features=True))
  return [row for batch in batches
          for row in zip(*(batch[name].tolist()
                           for name in ('label', 'label_value', 'movieId', 'userId')))]


@pytest.mark.slow
def test_transform_buckets_ids_derives_labels_and_records_the_domains(sample_run):
  config, record = sample_run
  outputs = record.outputs_of(_only_execution(record, 'Transform').id)
  assert {record.artifact_type(a) for a in outputs['transform_graph']} == {'TransformGraph'}
  # Columnar training: Transform writes its graph only, no examples or statistics.
  assert set(outputs) == {'transform_graph'}
  tft_output = tft.TFTransformOutput(outputs['transform_graph'][0].uri)
  schema = {f.name: f for f in tft_output.transformed_metadata.schema.feature}
  for feature in config.model_inputs.features:
    domain = schema[feature.name].int_domain
    assert (domain.min, domain.max) == (0, feature.vocab_size - 1)
  rows = _transformed_rows(record, 'train')
  labels = [label for label, _, _, _ in rows]
  assert set(labels) == {0, 1} and 0.3 < sum(labels) / len(labels) < 0.6
  assert all(0 <= movie < 2000 and 0 <= user < 1000 for _, _, movie, user in rows)
  assert all((value >= 4) == label for label, value, _, _ in rows)


@pytest.mark.slow
def test_the_trainer_reads_every_transformed_row_as_columnar_blocks(sample_run):
  _, record = sample_run
  columnar_examples, = record.outputs_of(_only_execution(record, 'ColumnarExamplesGen').id)[
      'columnar_examples']
  trainer_inputs = record.inputs_of(_only_execution(record, 'Trainer').id)['examples']
  assert [a.id for a in trainer_inputs] == [columnar_examples.id]
  assert columnar_examples.custom_properties['file_format'].string_value == (
      'columnar_int64_blocks')
  for split in ('train', 'eval'):
    split_dir = os.path.join(columnar_examples.uri, f'Split-{split}')
    manifest = columnar.read_manifest(split_dir)
    assert manifest['columns'] == ['label', 'label_value', 'movieId', 'userId']
    assert manifest['floats'] == ['label_value']
    blocks = [tf.io.parse_tensor(tf.io.read_file(columnar.block_path(split_dir, i)),
                                 tf.int64).numpy() for i in range(manifest['blocks'])]
    # The float column holds its float64 values' bits.
    written = sorted(row for block in blocks for row in zip(
        block[0].tolist(), block[1].view(np.float64).tolist(), *block[2:].tolist()))
    assert written == sorted(_transformed_rows(record, split))
    assert manifest['rows'] == len(written)


def _blessed(record):
  blessing, = record.outputs_of(_only_execution(record, 'Evaluator').id)['blessing']
  return blessing.custom_properties['blessed'].int_value == 1


def _pushed(record):
  pushed, = record.outputs_of(_only_execution(record, 'Pusher').id)['pushed_model']
  return pushed


@pytest.mark.slow
def test_the_model_is_evaluated_overall_and_per_movie_and_blessed(sample_run):
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  config, record = sample_run
  evaluation, = record.outputs_of(_only_execution(record, 'Evaluator').id)['evaluation']
  result = tfma.load_eval_result(evaluation.uri)
  metrics = {slice_key: values[''][''] for slice_key, values in result.slicing_metrics}
  overall = metrics[()]
  assert {'auc', 'average_precision', 'calibration', 'example_count', 'mean_label',
          'mean_prediction'} <= set(overall)
  assert overall['auc']['doubleValue'] >= config.evaluation.min_auc
  assert any(key and key[0][0] == 'movieId' for key in metrics)
  assert _blessed(record)


@pytest.mark.slow
def test_the_blessed_model_is_pushed_and_scores_raw_examples(sample_run):
  config, record = sample_run
  pushed = _pushed(record)
  assert pushed.custom_properties['pushed'].int_value == 1
  destination = pushed.custom_properties['pushed_destination'].string_value
  # Timestamped versions under the serving dir, as TF Serving expects.
  assert os.path.dirname(destination) == config.paths.serving_dir
  assert os.path.basename(destination).isdigit()
  model = tf.saved_model.load(destination)
  examples = [tf.train.Example(features=tf.train.Features(feature={
      'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
      'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[movie])),
  })).SerializeToString() for user, movie in ((284, 770), (102, 535), (10**9, 10**9))]
  scores = model.signatures['serving_default'](examples=tf.constant(examples))
  assert scores['probability'].shape == (3,)
  assert all(0.0 < float(p) < 1.0 for p in scores['probability'])
  # The README's top-K call: the catalogue's best movies for user 284.
  top = model.signatures['top_k'](userId=tf.constant([284], tf.int64), k=tf.constant(10))
  assert top['item_ids'].shape == (1, 10)
  assert list(top['probability'].numpy()[0]) == sorted(top['probability'].numpy()[0],
                                                       reverse=True)


@pytest.mark.slow
def test_a_second_run_reuses_cached_components_and_says_so(sample_console, sample_run):
  output_root, first = sample_console
  config, record = sample_run
  second = console.run('--output-root', str(output_root))
  assert second.returncode == 0, second.stderr[-3000:]
  executions = record.executions_by_component()
  for component in FIRST_HALF + ('ColumnarExamplesGen', 'Trainer'):
    assert len(executions[component]) == 2, component
    assert executions[component][-1].last_known_state == executions[component][-1].CACHED
  # The first run blessed a model, so the Evaluator has a new input, the baseline: the
  # same model, blessed on the same examples and thresholds. It is blessed again without
  # an evaluation, its metrics those of the evaluation that blessed it.
  first_evaluation, second_evaluation = executions['Evaluator']
  assert second_evaluation.last_known_state == second_evaluation.COMPLETE
  blessing, = record.outputs_of(second_evaluation.id)['blessing']
  assert blessing.custom_properties['blessed'].int_value == 1
  evaluation, = record.outputs_of(second_evaluation.id)['evaluation']
  earlier, = record.outputs_of(first_evaluation.id)['evaluation']
  assert evaluation.custom_properties[REUSED_EVALUATION_KEY].string_value == earlier.uri

  # What the console says of it: what was cached, which baseline the model met.
  finished = console.finished(second.stdout)
  for component in ('CsvExampleGen', 'StatisticsGen', 'Transform', 'Trainer'):
    assert finished[component][0] == 'cached', second.stdout
  assert finished['Trainer'][1] == console.finished(first.stdout)['Trainer'][1]
  assert re.fullmatch(r'baseline: model #\d+', finished['latest_blessed_model_resolver'][1])
  assert finished['Evaluator'][0] != 'cached'
  assert finished['Evaluator'][1].endswith(
      'blessed: the candidate is the blessed baseline, not evaluated again'), second.stdout
  # The same model blessed again is already what the serving directory serves.
  pushed_to = finished['Pusher'][1]
  assert re.fullmatch(r'not pushed: \S+/serving/\d+ already serves this model', pushed_to), (
      pushed_to)
  assert len(os.listdir(config.paths.serving_dir)) == 1
  assert console.log_path(second.stdout) != console.log_path(first.stdout)


@pytest.mark.slow
def test_other_thresholds_evaluate_the_baseline_again(sample_run, tmp_path):
  """The same model as the blessed baseline, but another min_auc: what it was blessed
  with no longer holds, so it is evaluated (in a copy of the sample run's store)."""
  config, _ = sample_run
  output_root = tmp_path / 'out'
  output_root.mkdir()
  shutil.copy(config.paths.metadata_path, output_root / 'metadata.sqlite')
  rerun = console.run('--output-root', str(output_root), '--set', 'evaluation.min_auc=0.5')
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  finished = console.finished(rerun.stdout)
  assert finished['Trainer'][0] == 'cached'
  assert re.fullmatch(r'AUC \d\.\d{4}, blessed', finished['Evaluator'][1]), rerun.stdout


@pytest.mark.slow
def test_a_model_trained_on_shuffled_labels_is_not_blessed_nor_pushed(shuffled_run):
  config, record = shuffled_run
  assert not _blessed(record)
  assert _pushed(record).custom_properties['pushed'].int_value == 0
  assert not os.path.exists(config.paths.serving_dir) or not os.listdir(
      config.paths.serving_dir)


@pytest.mark.slow
def test_a_time_split_trains_on_the_past_and_judges_on_the_latest_rows(shuffled_run):
  _, record = shuffled_run
  examples, = record.outputs_of(_only_execution(record, 'CsvExampleGen').id)['examples']
  times = {split: [r.features.feature['timestamp'].int64_list.value[0]
                   for r in _read_examples(examples.uri, split)]
           for split in ('train', 'validation', 'test')}
  assert max(times['train']) < min(times['validation'])
  assert max(times['validation']) < min(times['test'])
  # The Trainer reads train and validation, never test.
  columnar_examples, = record.outputs_of(_only_execution(record, 'ColumnarExamplesGen').id)[
      'columnar_examples']
  assert columnar_examples.properties['split_names'].string_value == '["train", "validation"]'
  assert {name: value.int_value for name, value in columnar_examples.custom_properties.items()
          if name.endswith('_rows')} == {'train_rows': len(times['train']),
                                         'validation_rows': len(times['validation'])}
  trainer = _only_execution(record, 'Trainer')
  assert '"validation"' in trainer.custom_properties['eval_args'].string_value
  # The Evaluator scores the test rows only.
  evaluator = _only_execution(record, 'Evaluator')
  assert evaluator.custom_properties['example_splits'].string_value == '["test"]'
  evaluation, = record.outputs_of(evaluator.id)['evaluation']
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  overall = dict(tfma.load_eval_result(evaluation.uri).slicing_metrics)[()]['']['']
  assert overall['example_count']['doubleValue'] == len(times['test'])


@pytest.mark.slow
def test_the_trainer_trains_with_the_tuners_best_values(shuffled_run):
  config, record = shuffled_run
  tuner = _only_execution(record, 'Tuner')
  assert tuner.last_known_state == tuner.COMPLETE
  outputs = record.outputs_of(tuner.id)
  results, = outputs['tuner_results']
  with open(os.path.join(results.uri, 'tuner_results.json')) as f:
    trials = json.load(f)
  assert len(trials) == 2 and {t['learning_rate'] for t in trials} <= {0.05, 0.2}
  best, = outputs['best_hyperparameters']
  trainer = _only_execution(record, 'Trainer')
  assert [a.id for a in record.inputs_of(trainer.id)['hyperparameters']] == [best.id]
  with open(os.path.join(best.uri, 'best_hyperparameters.txt')) as f:
    values = json.load(f)['values']
  assert values['learning_rate'] == trials[0]['learning_rate']
  model_run, = record.outputs_of(trainer.id)['model_run']
  with open(os.path.join(model_run.uri, 'metrics.json')) as f:
    trained_with = json.load(f)['config']['training']
  assert trained_with['learning_rate'] == values['learning_rate'] != (
      config.training.learning_rate)
  # As long as the best trial's best epoch, not the config's 15 epochs.
  assert trained_with['epochs'] == values['epochs'] in (1, 2)
  store = run_store.RunStore(run_store.existing_sqlite_store(config.paths.metadata_path))
  tuner_record, = [e for e in store.run().executions if e.component == 'Tuner']
  assert run_console.headline(store, tuner_record).startswith(
      f'best of 2 trial(s): validation AUC {trials[0]["score"]:.4f} with learning_rate ')


@pytest.mark.slow
def test_a_tab_separated_input_runs_end_to_end(shuffled_run):
  config, record = shuffled_run
  assert config.dataset.delimiter == '\t' and config.paths.input.endswith('*.tsv')
  examples, = record.outputs_of(_only_execution(record, 'CsvExampleGen').id)['examples']
  rows = [row for split in ('train', 'validation', 'test')
          for row in _read_examples(examples.uri, split)]
  assert len(rows) == 6000
  first = rows[0].features.feature
  assert first['userId'].int64_list.value and first['rating'].float_list.value
  pusher = _only_execution(record, 'Pusher')
  assert pusher.last_known_state == pusher.COMPLETE
