"""TFX Trainer's `run_fn`: trains the ranker on Transform's output and exports it for serving.

Everything the run needs comes from `fn_args`: the transformed examples, the
transform graph (whose schema sizes the tables), and `custom_config` (the model
inputs and training options of the run config). The module imports no TFX.
"""

import json
import os
import sys
from typing import Any, Dict, List, Mapping

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_transform as tft

from modules import columnar
from modules import model as model_lib
from modules import strategy as strategy_lib
from contract.model_inputs import ModelInputs, TrainingOptions
from contract.names import (IDS_SIGNATURE, MODEL_INPUTS_KEY, PREDICTION_KEY,
                            SERVING_SIGNATURE, TRAINING_KEY, TRANSFORM_SIGNATURE)

_SHUFFLE_BUFFER = 65_536


def vocab_sizes_from_schema(tft_output: tft.TFTransformOutput,
                            model_inputs: ModelInputs) -> Dict[str, int]:
  """Table sizes as Transform recorded them, so the config is not read twice."""
  schema = {f.name: f for f in tft_output.transformed_metadata.schema.feature}
  sizes = {}
  for feature in model_inputs.features:
    domain = schema[feature.name].int_domain
    if domain.min != 0 or domain.max <= 0:
      raise ValueError(f'transformed feature {feature.name} has no bucket domain '
                       f'(int_domain {domain.min}..{domain.max}); was it hashed by '
                       'modules.preprocessing?')
    sizes[feature.name] = domain.max + 1
  return sizes


def make_dataset(file_patterns: List[str], feature_spec: Mapping[str, Any],
                 batch_size: int, shuffle: bool, seed: int,
                 repeat: bool = False) -> tf.data.Dataset:
  """Batches of transformed features, label included, in the TPU's fixed shapes."""
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'no transformed examples match {file_patterns}')
  dataset = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed)
  dataset = dataset.interleave(
      lambda path: tf.data.TFRecordDataset(path, compression_type='GZIP'),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
  if shuffle:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  # A TPU compiles for one shape: every batch is full.
  dataset = dataset.batch(batch_size, drop_remainder=True)
  dataset = dataset.map(lambda records: tf.io.parse_example(records, feature_spec),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def input_dataset(file_patterns: List[str], feature_spec: Mapping[str, Any],
                  batch_size: int, shuffle: bool, seed: int,
                  repeat: bool = False) -> tf.data.Dataset:
  """The split as training batches: columnar blocks when ColumnarExamplesGen wrote
  them (TFX passes `<split dir>/*`), else the tf.Examples, parsed."""
  split_dirs = {os.path.dirname(pattern) for pattern in file_patterns}
  if len(split_dirs) == 1:
    split_dir, = split_dirs
    if columnar.is_columnar(split_dir):
      return columnar.make_dataset(split_dir, batch_size, shuffle=shuffle, seed=seed,
                                   repeat=repeat)
  return make_dataset(file_patterns, feature_spec, batch_size, shuffle=shuffle, seed=seed,
                      repeat=repeat)


def distribute(strategy: tf.distribute.Strategy, dataset_fn, global_batch_size: int):
  """Splits the global batch across replicas, keeping ids on the host as TPUEmbedding
  requires; under the default strategy this is the same contract on one replica."""
  return strategy.distribute_datasets_from_function(
      lambda context: dataset_fn(context.get_per_replica_batch_size(global_batch_size)),
      options=tf.distribute.InputOptions(experimental_fetch_to_device=False))


class _CheckpointEachEpoch(tf.keras.callbacks.Callback):

  def __init__(self, manager: tf.train.CheckpointManager):
    super().__init__()
    self._manager = manager

  def on_epoch_end(self, epoch, logs=None):
    self._manager.save(checkpoint_number=epoch + 1)


def train(model_inputs: ModelInputs, training: TrainingOptions, vocab_sizes: Mapping[str, int],
          train_files: List[str], eval_files: List[str], feature_spec: Mapping[str, Any],
          model_run_dir: str, strategy: tf.distribute.Strategy):
  """Trains under `strategy`; returns (latest checkpoint path, Keras history dict)."""
  tf.keras.utils.set_random_seed(training.seed)
  with strategy.scope():
    optimizer = model_lib.make_optimizer(training.optimizer, training.learning_rate)
    model = model_lib.RankingModel(model_inputs, vocab_sizes, optimizer,
                                   training.l2_regularization)
    # The same optimizer for the tables and the model: on a TPU the tables are
    # updated by the embedding engine with its settings, elsewhere by Keras.
    model.compile(optimizer=optimizer)

  batch = training.batch_size
  train_data = distribute(strategy, lambda b: input_dataset(
      train_files, feature_spec, b, shuffle=True, seed=training.seed,
      repeat=training.steps is not None), batch)
  eval_data = distribute(strategy, lambda b: input_dataset(
      eval_files, feature_spec, b, shuffle=False, seed=training.seed), batch)

  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(model_run_dir, 'checkpoints'), max_to_keep=3)
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=model_run_dir, update_freq='epoch'),
               _CheckpointEachEpoch(manager)]
  # With `steps`, the training data repeats and one epoch is that many steps.
  epochs, steps_per_epoch = ((1, training.steps) if training.steps is not None
                             else (training.epochs, None))
  history = model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      validation_data=eval_data, callbacks=callbacks, verbose=2)
  return manager.latest_checkpoint, history.history


class ServingModule(tf.Module):
  """What the pushed SavedModel holds: the transform graph and the trained tables."""

  def __init__(self, model: model_lib.RankingModel, tft_output: tft.TFTransformOutput,
               model_inputs: ModelInputs):
    super().__init__()
    self.model = model
    self.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    self._id_spec = {f.name: raw_spec[f.name] for f in model_inputs.features}
    self._raw_spec = {**self._id_spec,
                      model_inputs.label.column: raw_spec[model_inputs.label.column]}

  def _score_raw(self, raw_ids):
    transformed = self.tft_layer(raw_ids)
    return {PREDICTION_KEY: tf.reshape(
        self.model({name: transformed[name] for name in self._id_spec}), [-1])}

  def signatures(self) -> Dict[str, Any]:
    examples_spec = tf.TensorSpec([None], tf.string, name='examples')

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
      """Serialized tf.Examples of raw ids -> probability of a positive label."""
      return self._score_raw(tf.io.parse_example(examples, self._id_spec))

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
      """Raw tf.Examples, label included -> transformed features (for TFMA)."""
      return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

    @tf.function(input_signature=[{
        name: tf.TensorSpec([None], spec.dtype, name=name)
        for name, spec in self._id_spec.items()}])
    def serve_ids(ids):
      """Raw id tensors, one [batch] vector per feature -> probability."""
      return self._score_raw({name: tf.reshape(ids[name], [-1, *spec.shape])
                              for name, spec in self._id_spec.items()})

    return {SERVING_SIGNATURE: serve_examples, TRANSFORM_SIGNATURE: transform_features,
            IDS_SIGNATURE: serve_ids}


def export(checkpoint_path: str, model_inputs: ModelInputs, vocab_sizes: Mapping[str, int],
           tft_output: tft.TFTransformOutput, serving_dir: str) -> None:
  """Rebuilds the model outside any distribution strategy, restores the trained
  tables and saves a SavedModel; a TPU-distributed model is never saved directly."""
  model = model_lib.RankingModel(model_inputs, vocab_sizes, optimizer=None)
  model({f.name: tf.zeros([1], tf.int64) for f in model_inputs.features})
  tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial(
  ).assert_existing_objects_matched()
  module = ServingModule(model, tft_output, model_inputs)
  tf.saved_model.save(module, serving_dir, signatures=module.signatures())


def _final_metrics(history: Mapping[str, List[float]]) -> Dict[str, float]:
  return {name[len('val_'):]: values[-1] for name, values in history.items()
          if name.startswith('val_')}


def run_fn(fn_args) -> None:
  """TFX Trainer entry point (GenericExecutor)."""
  model_inputs = ModelInputs.from_dict(fn_args.custom_config[MODEL_INPUTS_KEY])
  training = TrainingOptions.from_dict(fn_args.custom_config[TRAINING_KEY])
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  vocab_sizes = vocab_sizes_from_schema(tft_output, model_inputs)
  feature_spec = tft_output.transformed_feature_spec()

  strategy = strategy_lib.create(training.tpu)
  checkpoint_path, history = train(
      model_inputs, training, vocab_sizes, fn_args.train_files, fn_args.eval_files,
      feature_spec, fn_args.model_run_dir, strategy)
  export(checkpoint_path, model_inputs, vocab_sizes, tft_output, fn_args.serving_model_dir)

  report = {
      'history': history,
      'eval': _final_metrics(history),
      'vocab_sizes': vocab_sizes,
      'replicas': strategy.num_replicas_in_sync,
      'config': {MODEL_INPUTS_KEY: model_inputs.to_dict(), TRAINING_KEY: training.to_dict()},
      'command': sys.argv,
  }
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, default=float)
