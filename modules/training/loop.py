"""The training loop: the compiled model, its input, checkpoints, resume and history.

Resuming fits a preempted Vertex replica, which restarts inside the same execution and
output folders: Keras' BackupAndRestore keeps the backup in a folder every restart of
the run finds again, and the per-epoch history is a file, so a resumed run's history
still covers every epoch.
"""

import json
import logging
import os
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from contract.model_inputs import ModelInputs
from contract.options import TrainingOptions
from modules.data import reader
from modules.model import optimizers
from modules.model import ranking
from modules.model import warm_start
from modules.training import distribution

class _CheckpointEachEpoch(tf.keras.callbacks.Callback):
  """The checkpoints the export restores (the backup for resuming is Keras' own)."""

  def __init__(self, manager: tf.train.CheckpointManager):
    super().__init__()
    self._manager = manager

  def on_epoch_end(self, epoch, logs=None):
    self._manager.save(checkpoint_number=epoch + 1)


class EpochHistory(tf.keras.callbacks.Callback):
  """Each epoch's logs in a JSON file, so that a resumed run's history (Keras' History
  holds only the epochs since the restart) still covers the whole run."""

  def __init__(self, path: str):
    super().__init__()
    self.path = path
    self.epochs: List[Dict[str, float]] = []
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        self.epochs = json.load(f)

  def on_epoch_end(self, epoch, logs=None):
    # Epochs from this one on were not finished before a restart (or this is a new run).
    self.epochs = [e for e in self.epochs if e['epoch'] < epoch]
    self.epochs.append({'epoch': epoch, **{k: float(v) for k, v in (logs or {}).items()}})
    with tf.io.gfile.GFile(self.path + '.tmp', 'w') as f:
      json.dump(self.epochs, f)
    tf.io.gfile.rename(self.path + '.tmp', self.path, overwrite=True)

  def history(self) -> Dict[str, List[float]]:
    """{metric: [value per epoch]}, as Keras' History.history."""
    names = [k for k in self.epochs[0] if k != 'epoch'] if self.epochs else []
    return {name: [e[name] for e in self.epochs] for name in names}


def item_counts(model_inputs: ModelInputs, training: TrainingOptions,
                table_sizes: Mapping[str, int], train_files: List[str],
                feature_spec: Mapping[str, Any]) -> Optional[np.ndarray]:
  """The training rows of each item (row of the item key's table), which the
  retrieval loss needs; None without that loss."""
  if not training.losses.retrieval:
    return None
  key = model_inputs.side('item')[0]
  return reader.row_counts(training.input_format, train_files, feature_spec, key.name,
                           table_sizes[key.table_name])


def make_model(model_inputs: ModelInputs, training: TrainingOptions,
               table_sizes: Mapping[str, int], strategy: tf.distribute.Strategy,
               counts: Optional[np.ndarray] = None):
  """The compiled ranker and its optimizer; call inside `strategy.scope()`. `counts`:
  item_counts(), for the retrieval loss."""
  optimizer = optimizers.make_optimizer(training.optimizer, training.learning_rate)
  model = ranking.RankingModel(model_inputs, table_sizes, optimizer,
                               training.l2_regularization, training.losses, counts)
  # The same optimizer for the tables and the model: on a TPU the tables are
  # updated by the embedding engine with its settings, elsewhere by Keras.
  model.compile(optimizer=optimizer, steps_per_execution=training.steps_per_execution)
  if not isinstance(strategy, tf.distribute.TPUStrategy):
    # Built here rather than in the first step, inside the scope that keeps string
    # variables out of collectives (on a TPU the layer is built by the TPU API).
    ranking.build(model, model_inputs)
  return model, optimizer


def train(model_inputs: ModelInputs, training: TrainingOptions, table_sizes: Mapping[str, int],
          train_files: List[str], eval_files: List[str], feature_spec: Mapping[str, Any],
          write_dir: str, backup_dir: str, strategy: tf.distribute.Strategy,
          base_model: Optional[str] = None):
  """Trains under `strategy`, writing checkpoints and logs under `write_dir`; returns
  (the trained model, its latest checkpoint's path, history of every epoch).

  `backup_dir` is the same for every worker and every restart of this run: training
  resumes from the backup there (Keras keeps the other workers' writes apart) and
  removes it when training ends. `base_model`, a SavedModel this project exported,
  starts the tables when their shapes fit (a backup still wins: it is newer).
  """
  tf.keras.utils.set_random_seed(training.seed)
  counts = item_counts(model_inputs, training, table_sizes, train_files, feature_spec)
  with strategy.scope():
    model, optimizer = make_model(model_inputs, training, table_sizes, strategy, counts)
    if base_model:
      reason = warm_start.why_not_warm(warm_start.saved_table_shapes(base_model),
                                      model_inputs, table_sizes)
      if reason is None:
        logging.info('Warm start: the tables start from %s', base_model)
        warm_start.warm_start(model, base_model)
      else:
        logging.warning('Starting cold, not from %s: %s', base_model, reason)

  batch, input_format = training.batch_size, training.input_format
  train_data, pipelines = distribution.distribute(strategy, lambda b, i, n: reader.input_dataset(
      input_format, train_files, feature_spec, b, shuffle=True, seed=training.seed,
      repeat=True, pipeline_id=i, num_pipelines=n), batch)
  eval_data, _ = distribution.distribute(strategy, lambda b, i, n: reader.input_dataset(
      input_format, eval_files, feature_spec, b, shuffle=False, seed=training.seed,
      pipeline_id=i, num_pipelines=n), batch)

  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(write_dir, 'checkpoints'), max_to_keep=3)
  history = EpochHistory(os.path.join(write_dir, 'history.json'))
  # Order matters: an epoch is recorded in the history once its backup exists.
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=write_dir, update_freq='epoch'),
               tf.keras.callbacks.BackupAndRestore(
                   backup_dir, save_freq=training.checkpoint_every_steps or 'epoch'),
               _CheckpointEachEpoch(manager),
               history]
  # The training data repeats: an epoch is a pass over each pipeline's part, or, with
  # `steps`, one epoch of that many steps.
  epochs, steps_per_epoch = ((1, training.steps) if training.steps is not None else
                             (training.epochs, reader.steps_per_pass(
                                 input_format, train_files, pipelines, batch, 'train')))
  model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
            validation_data=eval_data,
            validation_steps=reader.steps_per_pass(input_format, eval_files, pipelines,
                                                   batch, 'eval'),
            callbacks=callbacks, verbose=2)
  return model, manager.latest_checkpoint, history.history()
