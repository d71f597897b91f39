"""Two real worker processes on 127.0.0.1 train the sample's Transform output through the
Trainer's own run_fn under MultiWorkerMirroredStrategy, as Vertex AI runs a job with
several replicas: TF_CONFIG in each process's environment, the same output directories
given to both."""

import collections
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

import trainer_runs
from modules.data import reader
from modules.training import trainer
from pipeline.vertex_emulator.container.emulated_services import free_ports

# Both workers together, start-up and three epochs on two cores included.
DEADLINE_SECONDS = 600
EPOCHS = 3
# Adam's steps are larger per unit of rate: the sample's Adagrad rate makes it diverge.
LEARNING_RATES = {'adagrad': 0.5, 'adam': 0.01}


def _run_two_workers(inputs, tmp_path):
  """Both workers to the end (bounded), with the same outputs dirs; their reports."""
  cluster = {'worker': [f'127.0.0.1:{port}' for port in free_ports(2)]}
  worker_tmp = tmp_path / 'worker_tmp'
  worker_tmp.mkdir()
  envs = [{'TMPDIR': str(worker_tmp),
           'TF_CONFIG': json.dumps({'cluster': cluster,
                                    'task': {'type': 'worker', 'index': index}})}
          for index in range(2)]
  codes = trainer_runs.run([{**inputs, 'report': str(tmp_path / f'worker{i}.json')}
                            for i in range(2)], tmp_path, DEADLINE_SECONDS, envs)
  for index, code in enumerate(codes):
    assert code == 0, trainer_runs.log_of(tmp_path, index)[-5000:]
  reports = [json.loads((tmp_path / f'worker{i}.json').read_text()) for i in range(2)]
  return reports, worker_tmp


def _split_rows(inputs, split):
  spec = tft.TFTransformOutput(inputs['transform_output']).transformed_feature_spec()
  return [(int(b['userId'][0]), int(b['movieId'][0]), int(b['label'][0]))
          for b in reader.input_dataset('columnar', inputs[f'{split}_files'], spec, 1,
                                         shuffle=False, seed=0)]


def _auc_of_export(serving_dir, sample_run):
  """The exported model's AUC on the eval split's raw examples (label: rating >= 4)."""
  _, record = sample_run
  execution = record.executions_by_component()['CsvExampleGen'][0]
  examples_uri = record.outputs_of(execution.id)['examples'][0].uri
  files = tf.io.gfile.glob(os.path.join(examples_uri, 'Split-eval', '*.gz'))
  records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]
  labels = [tf.train.Example.FromString(r).features.feature['rating'].float_list.value[0]
            >= 4.0 for r in records]
  model = tf.saved_model.load(serving_dir)
  scores = model.signatures['serving_default'](examples=tf.constant(records))['probability']
  auc = tf.keras.metrics.AUC()
  auc.update_state(np.array(labels, np.float32), scores)
  return float(auc.result())


@pytest.mark.slow
# The optimizers with slots, which the workers must keep equal (Adagrad's accumulators,
# lazy Adam's moments); SGD has none and shares the rest of the path (1.5 min each).
@pytest.mark.parametrize('optimizer', ['adagrad', 'adam'])
def test_two_workers_share_the_data_end_equal_and_only_the_chief_writes(
    sample_run, tmp_path, optimizer):
  inputs = trainer_runs.trainer_inputs(
      sample_run, tmp_path / 'shared', optimizer=optimizer,
      learning_rate=LEARNING_RATES[optimizer], epochs=EPOCHS)
  reports, worker_tmp = _run_two_workers(inputs, tmp_path)

  # Each worker's input pipeline read its own half; together, every row once.
  assert [r['pipeline'] for r in reports] == [[0, 2], [1, 2]]
  halves = [collections.Counter(map(tuple, r['rows'])) for r in reports]
  assert halves[0] + halves[1] == collections.Counter(_split_rows(inputs, 'train'))
  assert abs(sum(halves[0].values()) - sum(halves[1].values())) <= 1

  # The workers trained one model: their tables are equal.
  assert reports[0]['tables'].keys() == reports[1]['tables'].keys()
  for name, table in reports[0]['tables'].items():
    np.testing.assert_array_equal(table, reports[1]['tables'][name], err_msg=name)

  # Only the chief wrote, where TFX looks; the other worker left nothing behind.
  run_dir, serving_dir = inputs['model_run_dir'], inputs['serving_model_dir']
  assert sorted(os.listdir(run_dir)) == ['checkpoints', 'history.json', 'metrics.json',
                                         'train', 'validation']
  assert os.path.exists(os.path.join(serving_dir, 'saved_model.pb'))
  assert not os.listdir(worker_tmp)

  # Metrics are global values, scaled for the global batch.
  with open(os.path.join(run_dir, 'metrics.json')) as f:
    report = json.load(f)
  assert report['replicas'] == 2 and len(report['history']['loss']) == EPOCHS
  final = report['eval']
  assert 0.0 <= final['auc'] <= 1.0
  # The loss is the global batch's mean cross-entropy plus a small L2 term (a replica's
  # unscaled share would be half of it).
  assert final['label_cross_entropy'] <= final['loss'] <= final['label_cross_entropy'] + 0.05
  assert _auc_of_export(serving_dir, sample_run) == pytest.approx(final['auc'], abs=0.01)

  # And the model is as good as one process's.
  alone = trainer_runs.trainer_inputs(
      sample_run, tmp_path / 'alone', optimizer=optimizer,
      learning_rate=LEARNING_RATES[optimizer], epochs=EPOCHS)
  trainer.run_fn(types.SimpleNamespace(**alone))
  with open(os.path.join(alone['model_run_dir'], 'metrics.json')) as f:
    assert json.load(f)['eval']['auc'] == pytest.approx(final['auc'], abs=0.02)
