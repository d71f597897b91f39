"""Validation gates: data that breaks the schema stops the run before Transform, a line per
anomaly, exit 1, and the inspection tool says why; `on_anomalies: warn` lets it go on."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from conftest import PROJECT_DIR
from contract.model_inputs import LabelSpec
from mlmd import RunRecord
from pipeline.components.validation_gate import anomalies as anomalies_lib
from pipeline.components.validation_gate import component as validation_gate

LOCAL_RUNNER = os.path.join(PROJECT_DIR, 'local_runner.py')


def _split_artifact(artifact, root, files):
  """`artifact` at `root` with a file per split: {split: (file name, proto)}."""
  artifact.uri = str(root)
  artifact.split_names = artifact_utils.encode_split_names(sorted(files))
  for split, (name, proto) in files.items():
    os.makedirs(root / f'Split-{split}', exist_ok=True)
    (root / f'Split-{split}' / name).write_bytes(proto.SerializeToString())
  return artifact


def _gate(tmp_path, found, counts, on_anomalies, **parameters):
  """Runs the gate's executor on anomalies {split: {feature: text}} and statistics with
  {split: examples} (or {split: DatasetFeatureStatistics}); returns its verdict."""
  anomalies = {}
  for split, by_feature in found.items():
    proto = anomalies_pb2.Anomalies()
    for feature, text in by_feature.items():
      proto.anomaly_info[feature].short_description = text
    anomalies[split] = ('SchemaDiff.pb', proto)
  statistics = {split: ('FeatureStats.pb', statistics_pb2.DatasetFeatureStatisticsList(
      datasets=[count if isinstance(count, statistics_pb2.DatasetFeatureStatistics)
                else statistics_pb2.DatasetFeatureStatistics(num_examples=count)]))
                for split, count in counts.items()}
  verdict = validation_gate.DataVerdict()
  verdict.uri = str(tmp_path / 'verdict')
  executor = validation_gate.DataValidationGate.EXECUTOR_SPEC.executor_class()
  executor.Do({'anomalies': [_split_artifact(standard_artifacts.ExampleAnomalies(),
                                             tmp_path / 'anomalies', anomalies)],
               'statistics': [_split_artifact(standard_artifacts.ExampleStatistics(),
                                              tmp_path / 'statistics', statistics)]},
              {'verdict': [verdict]}, {'on_anomalies': on_anomalies, **parameters})
  return verdict


def test_clean_data_passes_the_gate(tmp_path):
  verdict = _gate(tmp_path, {'train': {}, 'eval': {}}, {'train': 80, 'eval': 20}, 'fail')
  assert verdict.get_int_custom_property('anomalies') == 0


def test_anomalies_stop_the_run_with_a_line_each(tmp_path):
  with pytest.raises(anomalies_lib.DataAnomaliesError) as raised:
    _gate(tmp_path, {'train': {'rating': 'Out-of-range values', 'userId': 'Missing'},
                     'eval': {}}, {'train': 80, 'eval': 20}, 'fail')
  assert raised.value.lines == ['train.rating: Out-of-range values', 'train.userId: Missing']
  assert str(raised.value) == (
      '2 data anomalies: the run stops before Transform (fix the data or the schema; '
      'validation.on_anomalies: warn continues anyway)')


def test_an_empty_split_is_an_anomaly_though_tfdv_reports_none(tmp_path):
  # TFDV validates nothing of a split without examples; the gate counts them itself.
  with pytest.raises(anomalies_lib.DataAnomaliesError) as raised:
    _gate(tmp_path, {'train': {}, 'eval': {}}, {'train': 0, 'eval': 0}, 'fail')
  assert raised.value.lines == [
      f'{split}.<dataset>: no examples (an input with no data rows, or a split that '
      'received none)' for split in ('eval', 'train')]


def test_warn_lets_the_run_go_on_and_records_how_many(tmp_path):
  verdict = _gate(tmp_path, {'train': {'rating': 'Out-of-range values'}, 'eval': {}},
                  {'train': 80, 'eval': 20}, 'warn')
  assert verdict.get_int_custom_property('anomalies') == 1
  assert verdict.get_string_custom_property('on_anomalies') == 'warn'


def _run_on(input_glob, output_root):
  """local_runner.py on the sample config with another input, as a person runs it."""
  return subprocess.run(
      [sys.executable, LOCAL_RUNNER, '--output-root', str(output_root),
       '--set', f'paths.input={input_glob}'], cwd=PROJECT_DIR, capture_output=True,
      text=True, timeout=600, check=False)


def test_a_run_on_data_that_breaks_the_schema_stops_before_transform(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  shutil.copy(os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv'), data)
  with open(data / 'ratings.csv', 'a') as f:
    # The schema's ratings are 0.5 to 5.0.
    f.write('7,12,9.0,1500000000,F,30,writer,1990,Drama\n')
  output_root = tmp_path / 'out'
  result = _run_on(f'{data}/*.csv', output_root)
  assert result.returncode == 1, result.stderr
  first, *details = result.stderr.splitlines()
  assert re.match(r'local_runner\.py: DataValidationGate failed after \d+\.\ds: '
                  r'DataAnomaliesError: 1 data anomaly: the run stops before Transform ',
                  first), first
  assert len(details) == 1 and re.match(r'  (train|eval)\.rating: ', details[0]), details

  store = str(output_root / 'metadata.sqlite')
  components = RunRecord(store, 'movielens-sample').executions_by_component()
  assert 'DataValidationGate' in components and 'Transform' not in components
  inspected = subprocess.run([sys.executable, '-m', 'inspection', 'runs', '--store', store],
                             cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
                             check=True)
  assert ('stopped by DataValidationGate: the data broke the schema '
          '(validation.on_anomalies: fail)') in inspected.stdout
  assert details[0] in inspected.stdout


def test_a_trained_split_smaller_than_a_batch_stops_the_run_whatever_on_anomalies_says(
    tmp_path):
  with pytest.raises(anomalies_lib.TooFewRowsError) as raised:
    _gate(tmp_path, {'train': {}, 'eval': {}, 'test': {}}, {'train': 2, 'eval': 1, 'test': 0},
          'warn', trained_splits='train,eval', batch_size=64)
  assert str(raised.value) == (
      'too few rows to train on: train 2, eval 1, where each split the Trainer reads needs '
      'one batch of 64 rows; lower the batch size (training.batch_size, '
      'tuning.batch_size) or give the data more rows')
  (tmp_path / 'enough').mkdir()
  verdict = _gate(tmp_path / 'enough', {'train': {}, 'eval': {}}, {'train': 64, 'eval': 64},
                  'fail', trained_splits='train,eval', batch_size=64)
  assert verdict.get_int_custom_property('anomalies') == 0


def _rating_statistics(low, high):
  statistics = statistics_pb2.DatasetFeatureStatistics(num_examples=100)
  feature = statistics.features.add()
  feature.path.step.append('rating')
  feature.num_stats.min, feature.num_stats.max = low, high
  return statistics


@pytest.mark.parametrize('operator, threshold, low, high, every_row', [
    ('>=', 4, 0.5, 3.5, 'negative'), ('>=', 4, 4, 5, 'positive'), ('>=', 4, 1, 5, None),
    ('>', 4, 1, 4, 'negative'), ('<=', 2, 0.5, 2, 'positive'), ('<', 2, 2, 5, 'negative'),
    ('==', 5, 1, 4, 'negative'), ('==', 5, 5, 5, 'positive'), ('!=', 5, 1, 4, 'positive'),
    ('!=', 5, 1, 5, None),
])
def test_a_label_of_one_class_is_an_anomaly(tmp_path, operator, threshold, low, high,
                                            every_row):
  counts = {'train': _rating_statistics(low, high), 'eval': 20}
  label = LabelSpec(column='rating', operator=operator, threshold=threshold).model_dump_json()
  if every_row is None:
    _gate(tmp_path, {'train': {}, 'eval': {}}, counts, 'fail', label=label)
    return
  with pytest.raises(anomalies_lib.DataAnomaliesError) as raised:
    _gate(tmp_path, {'train': {}, 'eval': {}}, counts, 'fail', label=label)
  assert raised.value.lines == [
      f'train.rating: the label (rating {operator} {threshold}) is {every_row} in every '
      f'row (rating from {low:g} to {high:g}): a model cannot learn from one class']


@pytest.mark.slow
@pytest.mark.parametrize('rows, message, inspected', [
    (lambda rows: rows[:1], r'DataValidationGate failed after \d+\.\ds: TooFewRowsError: '
     r'too few rows to train on: train 0, eval 1, ',
     'stopped by DataValidationGate: too few rows to train on: train 0, eval 1, '),
    (lambda rows: [r for r in rows if float(r.split(',')[2]) < 4],
     r'DataValidationGate failed after \d+\.\ds: DataAnomaliesError: 2 data anomalies: ',
     '  train.rating: the label (rating >= 4) is negative in every row'),
])
def test_too_little_to_train_on_stops_the_run_before_transform(tmp_path, rows, message,
                                                               inspected):
  """One row (the train split empty, written as such) and a label of one class: each a
  line from the gate, exit 1, nothing trained or pushed; the inspection tool says why."""
  with open(os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')) as f:
    header, *lines = f.read().splitlines()
  data = tmp_path / 'ratings.csv'
  data.write_text('\n'.join([header] + rows(lines)) + '\n')
  output_root = tmp_path / 'out'
  result = _run_on(str(data), output_root)
  assert result.returncode == 1, result.stderr
  assert re.match(r'local_runner\.py: ' + message, result.stderr.splitlines()[0]), result.stderr
  components = RunRecord(str(output_root / 'metadata.sqlite'),
                         'movielens-sample').executions_by_component()
  assert 'Transform' not in components and not (output_root / 'serving').exists()
  runs = subprocess.run([sys.executable, '-m', 'inspection', 'runs', '--store',
                         str(output_root / 'metadata.sqlite')], cwd=PROJECT_DIR,
                        capture_output=True, text=True, timeout=300, check=True)
  assert inspected in runs.stdout, runs.stdout
