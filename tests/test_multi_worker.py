"""Two real worker processes on 127.0.0.1 train the sample's Transform output through the
Trainer's own run_fn under MultiWorkerMirroredStrategy, as Vertex AI runs a job with
several replicas: TF_CONFIG in each process's environment, the same output directories
given to both."""

import collections
import json
import os
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from conftest import PROJECT_DIR
from contract.names import MODEL_INPUTS_KEY, TRAINING_KEY
from modules import trainer

WORKER = os.path.join(PROJECT_DIR, 'tests', 'multi_worker_trainer.py')
# Both workers together, start-up and three epochs on two cores included.
DEADLINE_SECONDS = 600
EPOCHS = 3
# Adam's steps are larger per unit of rate: the sample's Adagrad rate makes it diverge.
LEARNING_RATES = {'adagrad': 0.5, 'adam': 0.01, 'sgd': 0.5}


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _trainer_inputs(sample_run, optimizer, out_dir):
  """What the sample run's Trainer was given, with this test's optimizer and length."""
  config, record = sample_run
  [execution] = record.executions_by_component()['Trainer']
  inputs = record.inputs_of(execution.id)
  examples = inputs['examples'][0].uri
  training = config.training.model_copy(update={
      'optimizer': optimizer, 'learning_rate': LEARNING_RATES[optimizer], 'epochs': EPOCHS})
  return {
      'custom_config': {MODEL_INPUTS_KEY: config.model_inputs.to_dict(),
                        TRAINING_KEY: training.to_dict()},
      'transform_output': inputs['transform_graph'][0].uri,
      'train_files': [os.path.join(examples, 'Split-train', '*')],
      'eval_files': [os.path.join(examples, 'Split-eval', '*')],
      'model_run_dir': str(out_dir / 'model_run'),
      'serving_model_dir': str(out_dir / 'serving'),
  }


def _run_two_workers(inputs, tmp_path):
  """Starts both workers, waits for both (bounded), kills what is left; their reports."""
  ports = _free_ports(2)
  cluster = {'worker': [f'127.0.0.1:{port}' for port in ports]}
  worker_tmp = tmp_path / 'worker_tmp'
  worker_tmp.mkdir()
  processes, logs = [], []
  try:
    for index in range(2):
      log = open(tmp_path / f'worker{index}.log', 'w')  # pylint: disable=consider-using-with
      logs.append(log)
      env = {**os.environ, 'TMPDIR': str(worker_tmp),
             'TF_CONFIG': json.dumps({'cluster': cluster,
                                      'task': {'type': 'worker', 'index': index}})}
      args = {**inputs, 'report': str(tmp_path / f'worker{index}.json')}
      processes.append(subprocess.Popen([sys.executable, WORKER, json.dumps(args)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + DEADLINE_SECONDS
    for process in processes:
      process.wait(timeout=max(1, deadline - time.monotonic()))
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
    for log in logs:
      log.close()
  for index, process in enumerate(processes):
    assert process.returncode == 0, (tmp_path / f'worker{index}.log').read_text()[-5000:]
  reports = [json.loads((tmp_path / f'worker{i}.json').read_text()) for i in range(2)]
  return reports, worker_tmp


def _split_rows(inputs, split):
  spec = tft.TFTransformOutput(inputs['transform_output']).transformed_feature_spec()
  return [(int(b['userId'][0]), int(b['movieId'][0]), int(b['label'][0]))
          for b in trainer.input_dataset(inputs[f'{split}_files'], spec, 1, shuffle=False,
                                         seed=0)]


def _auc_of_export(serving_dir, sample_run):
  """The exported model's AUC on the eval split's raw examples (label: rating >= 4)."""
  _, record = sample_run
  [execution] = record.executions_by_component()['CsvExampleGen']
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
@pytest.mark.parametrize('optimizer', ['adagrad', 'adam', 'sgd'])
def test_two_workers_share_the_data_end_equal_and_only_the_chief_writes(
    sample_run, tmp_path, optimizer):
  inputs = _trainer_inputs(sample_run, optimizer, tmp_path / 'shared')
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
  assert sorted(os.listdir(run_dir)) == ['checkpoints', 'metrics.json', 'train',
                                         'validation']
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
  alone = _trainer_inputs(sample_run, optimizer, tmp_path / 'alone')
  trainer.run_fn(types.SimpleNamespace(**alone))
  with open(os.path.join(alone['model_run_dir'], 'metrics.json')) as f:
    assert json.load(f)['eval']['auc'] == pytest.approx(final['auc'], abs=0.02)
