"""A Trainer killed mid-run (SIGKILL, as a preempted machine dies) and started again with
the same output directories, as Vertex AI restarts a replica inside the same execution,
trains only what was left and exports a working model."""

import json
import os
import re

import pytest
import tensorflow as tf

import trainer_runs

EPOCHS = 3
DEADLINE_SECONDS = 300


def _epochs_started(log: str):
  return [int(n) for n in re.findall(r'^Epoch (\d+)/\d+$', log, re.MULTILINE)]


@pytest.mark.slow
def test_a_killed_trainer_resumes_after_its_last_epoch_and_exports(sample_run, tmp_path):
  inputs = trainer_runs.trainer_inputs(sample_run, tmp_path / 'out', epochs=EPOCHS)
  first_logs, second_logs = tmp_path / 'first', tmp_path / 'second'
  first_logs.mkdir()
  second_logs.mkdir()

  code, = trainer_runs.run([{**inputs, 'kill_after_epoch': 1}], first_logs,
                           DEADLINE_SECONDS)
  assert code == -9, trainer_runs.log_of(first_logs)[-3000:]
  assert _epochs_started(trainer_runs.log_of(first_logs)) == [1]
  assert not os.path.exists(os.path.join(inputs['serving_model_dir'], 'saved_model.pb'))

  code, = trainer_runs.run([inputs], second_logs, DEADLINE_SECONDS)
  log = trainer_runs.log_of(second_logs)
  assert code == 0, log[-3000:]
  # Epoch 1 was not trained again.
  assert _epochs_started(log) == [2, 3]

  run_dir = inputs['model_run_dir']
  with open(os.path.join(run_dir, 'metrics.json')) as f:
    history = json.load(f)['history']
  assert len(history['loss']) == len(history['val_auc']) == EPOCHS
  # The backup is gone once training has ended; the export's checkpoints stay.
  assert not os.path.exists(os.path.join(run_dir, 'backup'))
  assert tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoints')).endswith('-3')

  model = tf.saved_model.load(inputs['serving_model_dir'])
  scores = model.signatures['serve_ids'](userId=tf.constant([1, 2], tf.int64),
                                         movieId=tf.constant([10, 20], tf.int64))
  assert all(0.0 < p < 1.0 for p in scores['probability'].numpy())
