"""TFX Trainer's `run_fn`: trains the ranker on Transform's output and exports it for serving.

Everything the run needs comes from `fn_args`: the transformed examples, the
transform graph (whose schema sizes the tables), and `custom_config` (the model
inputs, training and retrieval options of the run config). The module imports no TFX.
"""

import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_transform as tft

from modules import catalogue
from modules import columnar
from modules import model as model_lib
from modules import retrieval
from modules import strategy as strategy_lib
from contract.model_inputs import (ModelInputs, RetrievalOptions, TrainingOptions,
                                   with_hyperparameters)
from contract.names import (BIAS_KEY, EMBEDDING_KEY, IDS_SIGNATURE, ITEM_EMBEDDING_SIGNATURE,
                            ITEM_IDS_KEY, LABEL_KEY, MODEL_INPUTS_KEY, PREDICTION_KEY,
                            RETRIEVAL_KEY, SCANN_INDEX_DIR, SERVING_SIGNATURE,
                            TOP_K_SIGNATURE, TRAINING_KEY, TRANSFORM_SIGNATURE,
                            USER_EMBEDDING_SIGNATURE)

_SHUFFLE_BUFFER = 65_536


def table_sizes_from_schema(tft_output: tft.TFTransformOutput,
                            model_inputs: ModelInputs) -> Dict[str, int]:
  """{table: rows} as Transform recorded them (each feature's int_domain), so the config
  is not read twice: a vocabulary's size is only known once Transform has run."""
  schema = {f.name: f for f in tft_output.transformed_metadata.schema.feature}
  sizes: Dict[str, int] = {}
  for table, features in model_inputs.tables().items():
    for feature in features:
      domain = schema[feature.name].int_domain
      if domain.min != 0 or domain.max <= 0:
        raise ValueError(f'transformed feature {feature.name} has no row domain '
                         f'(int_domain {domain.min}..{domain.max}); was it made by '
                         'modules.preprocessing?')
      if sizes.setdefault(table, domain.max + 1) != domain.max + 1:
        raise ValueError(f'features sharing table {table} were given different row '
                         f'counts by Transform ({sizes[table]} and {domain.max + 1})')
  return sizes


def _example_files(file_patterns: List[str]) -> List[str]:
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'no transformed examples match {file_patterns}')
  return files


def _records(path) -> tf.data.Dataset:
  return tf.data.TFRecordDataset(path, compression_type='GZIP')


def _count_records(path) -> int:
  return int(_records(path).reduce(0, lambda count, _: count + 1))


def make_dataset(file_patterns: List[str], feature_spec: Mapping[str, Any],
                 batch_size: int, shuffle: bool, seed: int, repeat: bool = False,
                 pipeline_id: int = 0, num_pipelines: int = 1) -> tf.data.Dataset:
  """Batches of transformed features, label included, in the TPU's fixed shapes.

  Input pipeline `pipeline_id` of `num_pipelines` reads every `num_pipelines`-th file,
  or every `num_pipelines`-th record (in file order) when there are fewer files than
  pipelines; `repeat` repeats whole shuffled passes over that part.
  """
  files = _example_files(file_patterns)
  if len(files) >= num_pipelines:
    part = files[pipeline_id::num_pipelines]
    dataset = tf.data.Dataset.from_tensor_slices(part)
    if shuffle:
      dataset = dataset.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(_records, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=not shuffle)
  else:
    # Record-level parts need one order that every pipeline agrees on.
    dataset = _records(files).shard(num_pipelines, pipeline_id)
  if shuffle:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  # A TPU compiles for one shape: every batch is full.
  dataset = dataset.batch(batch_size, drop_remainder=True)
  dataset = dataset.map(lambda records: tf.io.parse_example(records, feature_spec),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def _columnar_dir(file_patterns: List[str]) -> Optional[str]:
  """The split directory when ColumnarExamplesGen wrote it (TFX passes `<dir>/*`)."""
  split_dirs = {os.path.dirname(pattern) for pattern in file_patterns}
  if len(split_dirs) == 1:
    split_dir, = split_dirs
    if columnar.is_columnar(split_dir):
      return split_dir
  return None


def input_dataset(file_patterns: List[str], feature_spec: Mapping[str, Any],
                  batch_size: int, shuffle: bool, seed: int, repeat: bool = False,
                  pipeline_id: int = 0, num_pipelines: int = 1) -> tf.data.Dataset:
  """This input pipeline's part of the split as training batches: columnar blocks when
  ColumnarExamplesGen wrote them, else the tf.Examples, parsed."""
  split_dir = _columnar_dir(file_patterns)
  if split_dir is not None:
    return columnar.make_dataset(split_dir, batch_size, shuffle=shuffle, seed=seed,
                                 repeat=repeat, pipeline_id=pipeline_id,
                                 num_pipelines=num_pipelines)
  return make_dataset(file_patterns, feature_spec, batch_size, shuffle=shuffle, seed=seed,
                      repeat=repeat, pipeline_id=pipeline_id, num_pipelines=num_pipelines)


def part_rows(file_patterns: List[str], num_pipelines: int) -> List[int]:
  """Rows each input pipeline reads of the split: from the columnar manifest, or by
  counting the tf.Examples (one pass over the split)."""
  split_dir = _columnar_dir(file_patterns)
  if split_dir is not None:
    return columnar.part_rows(columnar.read_manifest(split_dir), num_pipelines)
  files = _example_files(file_patterns)
  if len(files) >= num_pipelines:
    counts = [_count_records(f) for f in files]
    return [sum(counts[i::num_pipelines]) for i in range(num_pipelines)]
  total = _count_records(files)
  return [len(range(i, total, num_pipelines)) for i in range(num_pipelines)]


def distribute(strategy: tf.distribute.Strategy, dataset_fn, global_batch_size: int):
  """(distributed dataset, number of input pipelines): one input pipeline per worker,
  each given its pipeline id and per-replica batch size. Ids stay on the host, as
  TPUEmbedding requires; under the default strategy it is the same contract on one
  replica."""
  contexts = []

  def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
    contexts.append(context)
    return dataset_fn(context.get_per_replica_batch_size(global_batch_size),
                      context.input_pipeline_id, context.num_input_pipelines)

  dataset = strategy.distribute_datasets_from_function(
      make, options=tf.distribute.InputOptions(experimental_fetch_to_device=False))
  return dataset, contexts[0].num_input_pipelines


def steps_per_pass(file_patterns: List[str], num_pipelines: int, global_batch_size: int,
                   split: str) -> int:
  """Steps that every input pipeline can feed in one pass over its part of the split:
  workers step together, so the smallest part decides."""
  rows = min(part_rows(file_patterns, num_pipelines))
  steps = rows // (global_batch_size // num_pipelines)
  if steps == 0:
    raise ValueError(
        f'the {split} split has {rows} rows per input pipeline ({num_pipelines} '
        f'pipelines), fewer than one batch of {global_batch_size // num_pipelines}: '
        'lower training.batch_size or give the split more rows')
  return steps


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's outputs: the chief, or worker 0 of a cluster
  without one, or the only process."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type or resolver.task_type == 'chief':
    return True
  has_chief = 'chief' in resolver.cluster_spec().as_dict()
  return resolver.task_type == 'worker' and resolver.task_id == 0 and not has_chief


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


def make_model(model_inputs: ModelInputs, training: TrainingOptions,
               table_sizes: Mapping[str, int], strategy: tf.distribute.Strategy):
  """The compiled ranker and its optimizer; call inside `strategy.scope()`."""
  optimizer = model_lib.make_optimizer(training.optimizer, training.learning_rate)
  model = model_lib.RankingModel(model_inputs, table_sizes, optimizer,
                                 training.l2_regularization)
  # The same optimizer for the tables and the model: on a TPU the tables are
  # updated by the embedding engine with its settings, elsewhere by Keras.
  model.compile(optimizer=optimizer, steps_per_execution=training.steps_per_execution)
  if not isinstance(strategy, tf.distribute.TPUStrategy):
    # Built here rather than in the first step, inside the scope that keeps string
    # variables out of collectives (on a TPU the layer is built by the TPU API).
    model_lib.build(model, model_inputs)
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
  with strategy.scope():
    model, optimizer = make_model(model_inputs, training, table_sizes, strategy)
    if base_model:
      reason = model_lib.why_not_warm(model_lib.saved_table_shapes(base_model),
                                      model_inputs, table_sizes)
      if reason is None:
        logging.info('Warm start: the tables start from %s', base_model)
        model_lib.warm_start(model, base_model)
      else:
        logging.warning('Starting cold, not from %s: %s', base_model, reason)

  batch = training.batch_size
  train_data, pipelines = distribute(strategy, lambda b, i, n: input_dataset(
      train_files, feature_spec, b, shuffle=True, seed=training.seed, repeat=True,
      pipeline_id=i, num_pipelines=n), batch)
  eval_data, _ = distribute(strategy, lambda b, i, n: input_dataset(
      eval_files, feature_spec, b, shuffle=False, seed=training.seed, pipeline_id=i,
      num_pipelines=n), batch)

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
                             (training.epochs, steps_per_pass(train_files, pipelines, batch,
                                                              'train')))
  model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
            validation_data=eval_data,
            validation_steps=steps_per_pass(eval_files, pipelines, batch, 'eval'),
            callbacks=callbacks, verbose=2)
  return model, manager.latest_checkpoint, history.history()


class ServingModule(tf.Module):
  """What the pushed SavedModel holds: the transform graph, the trained tables and,
  given the item catalogue, every catalogue item's vector for top-K retrieval.

  Retrieval folds the biases into the vectors: a user is [factors, 1] (and a bias
  apart), an item [factors, bias], so that an item's score for a user is one inner
  product plus the user's bias, which orders nothing:

      logit = dot(user_embedding, item_embedding) + user_bias
  """

  def __init__(self, model: model_lib.RankingModel, tft_output: tft.TFTransformOutput,
               model_inputs: ModelInputs, catalogue_path: Optional[str] = None):
    super().__init__()
    self.model = model
    self.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    # A column the raw schema makes optional (no fixed shape) may be left out of a
    # request: it is then missing, and gets its feature's OOV (or missing-value) row.
    self._feature_spec = {f.name: raw_spec[f.name] for f in model_inputs.features}
    self._side_spec = {side: {f.name: raw_spec[f.name] for f in model_inputs.side(side)}
                       for side in ('user', 'item')}
    self._raw_spec = {**self._feature_spec,
                      model_inputs.label.column: raw_spec[model_inputs.label.column]}
    self.catalogue_ids = self.catalogue_vectors = None
    self.items_sharing_a_row = 0
    if catalogue_path:
      key = model_inputs.side('item')[0].name
      items = tf.io.parse_example(catalogue.read(catalogue_path), self._side_spec['item'])
      rows = self._rows(items)
      self.catalogue_ids = tf.Variable(_dense(items[key]), trainable=False,
                                       name='catalogue_ids')
      # The item's last unit is its bias, which the user's 1 multiplies: already folded.
      self.catalogue_vectors = tf.Variable(self.model.tower('item', rows), trainable=False,
                                           name='catalogue_vectors')
      # Each catalogue item's row of the item key's table, for recall by rows; items
      # whose key shares a row with another's cannot be told apart (hash collisions).
      self.catalogue_rows = rows[key].numpy()
      _, rows, counts = np.unique(self.catalogue_rows, return_inverse=True,
                                  return_counts=True)
      self.items_sharing_a_row = int((counts[rows] > 1).sum())

  def _rows(self, raw_features) -> Dict[str, Any]:
    """Raw features (any subset of the model's) -> their table rows."""
    transformed = self.tft_layer(raw_features)
    return {name: (tf.RaggedTensor.from_sparse(transformed[name])
                   if isinstance(transformed[name], tf.sparse.SparseTensor)
                   else transformed[name])
            for name in raw_features if name in self._feature_spec}

  def _score_raw(self, raw_features):
    return {PREDICTION_KEY: tf.reshape(self.model(self._rows(raw_features)), [-1])}

  def _user_vectors(self, raw_user):
    return retrieval.fold_user(self.model.tower('user', self._rows(raw_user)))

  def _item_vectors(self, raw_item) -> tf.Tensor:
    # The item's last unit is its bias, which the user's 1 multiplies: already folded.
    return self.model.tower('item', self._rows(raw_item))

  def signatures(self) -> Dict[str, Any]:
    examples_spec = tf.TensorSpec([None], tf.string, name='examples')

    def values_spec(spec):
      return {name: tf.TensorSpec([None], s.dtype, name=name) for name, s in spec.items()}

    def as_raw(values, spec, signature):
      with tf.control_dependencies(_same_lengths(values, list(spec), signature)):
        return {name: _as_raw(values[name], s) for name, s in spec.items()}

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
      """Serialized tf.Examples of raw features -> probability of a positive label."""
      return self._score_raw(tf.io.parse_example(examples, self._feature_spec))

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
      """Raw tf.Examples, label included -> the 0/1 label, for TFMA.

      Only the label: TFMA slices on a transformed feature before a raw one of the same
      name, so returning the hashed ids would slice on hash buckets (two ids sharing one
      reported as a single slice) instead of on the ids as the data holds them.
      """
      transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
      return {LABEL_KEY: transformed[LABEL_KEY]}

    @tf.function(input_signature=[values_spec(self._feature_spec)])
    def serve_ids(values):
      """Raw values, one [batch] vector per feature (a multi_hot feature's as its
      delimited string) -> probability. An optional column's missing value is '' (a
      string column) or NaN (a float column)."""
      return self._score_raw(as_raw(values, self._feature_spec, IDS_SIGNATURE))

    user_spec, item_spec = self._side_spec['user'], self._side_spec['item']

    @tf.function(input_signature=[values_spec(user_spec)])
    def user_embedding(values):
      """The user-side raw values (as serve_ids takes them) -> the user's vector, its
      last unit 1, and the user's bias."""
      vectors, bias = self._user_vectors(as_raw(values, user_spec, USER_EMBEDDING_SIGNATURE))
      return {EMBEDDING_KEY: vectors, BIAS_KEY: bias}

    @tf.function(input_signature=[values_spec(item_spec)])
    def item_embedding(values):
      """The item-side raw values -> the item's vector, its last unit the item's bias."""
      return {EMBEDDING_KEY: self._item_vectors(
          as_raw(values, item_spec, ITEM_EMBEDDING_SIGNATURE))}

    signatures = {SERVING_SIGNATURE: serve_examples, TRANSFORM_SIGNATURE: transform_features,
                  IDS_SIGNATURE: serve_ids, USER_EMBEDDING_SIGNATURE: user_embedding,
                  ITEM_EMBEDDING_SIGNATURE: item_embedding}
    if self.catalogue_vectors is not None:

      @tf.function(input_signature=[values_spec(user_spec),
                                    tf.TensorSpec([], tf.int32, name='k')])
      def top_k(values, k):
        """The user-side raw values and k -> the k catalogue items of highest
        probability for each user (every item the data held; none is excluded), best
        first: their ids ([batch, k]) and probabilities, as serving_default would score
        each pair."""
        vectors, bias = self._user_vectors(as_raw(values, user_spec, TOP_K_SIGNATURE))
        logits, indices = retrieval.best_items(vectors, bias, self.catalogue_vectors, k)
        return {ITEM_IDS_KEY: tf.gather(self.catalogue_ids, indices),
                PREDICTION_KEY: tf.sigmoid(logits)}

      signatures[TOP_K_SIGNATURE] = top_k
    return signatures


def _dense(values) -> tf.Tensor:
  """[batch] values of a parsed column (dense [batch, 1] or sparse)."""
  if isinstance(values, tf.sparse.SparseTensor):
    values = tf.sparse.to_dense(values)
  return tf.reshape(values, [-1])


def _as_raw(values: tf.Tensor, spec) -> Any:
  """A [batch] vector of one column as parse_example would give it under `spec`: dense
  [batch, *shape], or for an optional column sparse, without the missing values."""
  if isinstance(spec, tf.io.FixedLenFeature):
    return tf.reshape(values, [-1, *spec.shape])
  if values.dtype == tf.string:
    present = tf.not_equal(values, '')
  elif values.dtype.is_floating:
    present = tf.logical_not(tf.math.is_nan(values))
  else:
    present = tf.ones_like(values, tf.bool)
  rows = tf.where(present)[:, 0]
  return tf.SparseTensor(tf.stack([rows, tf.zeros_like(rows)], axis=1),
                         tf.boolean_mask(values, present),
                         tf.stack([tf.size(values, out_type=tf.int64), 1]))


def _same_lengths(values: Mapping[str, tf.Tensor], names: List[str],
                  signature: str) -> List[tf.Operation]:
  """Checks that every feature has as many values as the first of `names`: row i of the
  request is the i-th value of each. (Unchecked, 1 movie id against 3 user ids would
  broadcast into 3 scores nobody asked for.)"""
  first, *others = names
  rows = tf.size(values[first])
  return [tf.debugging.Assert(tf.equal(tf.size(values[name]), rows), [tf.strings.format(
      f'{signature}: {first} has {{}} values and {name} has {{}}; send one value of every '
      'feature per row', (rows, tf.size(values[name])))]) for name in others]


def export(checkpoint_path: str, model_inputs: ModelInputs, table_sizes: Mapping[str, int],
           tft_output: tft.TFTransformOutput, serving_dir: str,
           catalogue_path: Optional[str] = None) -> ServingModule:
  """Rebuilds the model outside any distribution strategy, restores the trained
  tables and saves a SavedModel (with the catalogue's item vectors when given); a
  TPU-distributed model is never saved directly."""
  model = model_lib.RankingModel(model_inputs, table_sizes, optimizer=None)
  model_lib.build(model, model_inputs)
  tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial(
  ).assert_existing_objects_matched()
  module = ServingModule(model, tft_output, model_inputs, catalogue_path)
  tf.saved_model.save(module, serving_dir, signatures=module.signatures())
  return module


def _final_metrics(history: Mapping[str, List[float]]) -> Dict[str, float]:
  return {name[len('val_'):]: values[-1] for name, values in history.items()
          if name.startswith('val_')}


def tuned_values(hyperparameters: Mapping[str, Any]) -> Dict[str, Any]:
  """The values of a KerasTuner HyperParameters config (as the Tuner writes it)."""
  return dict(hyperparameters.get('values', {}))


def run_fn(fn_args) -> model_lib.RankingModel:
  """TFX Trainer entry point (GenericExecutor); every worker of a cluster runs it.

  Returns the trained model (TFX ignores it; the multi-worker test compares workers).
  """
  model_inputs = ModelInputs.from_dict(fn_args.custom_config[MODEL_INPUTS_KEY])
  training = TrainingOptions.from_dict(fn_args.custom_config[TRAINING_KEY])
  retrieval_options = RetrievalOptions.from_dict(fn_args.custom_config.get(RETRIEVAL_KEY, {}))
  if getattr(fn_args, 'hyperparameters', None):
    # The Tuner's best values replace the config's.
    best = tuned_values(fn_args.hyperparameters)
    logging.info('Training with the Tuner\'s best hyperparameters: %s', best)
    model_inputs, training = with_hyperparameters(model_inputs, training, best)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  table_sizes = table_sizes_from_schema(tft_output, model_inputs)
  feature_spec = tft_output.transformed_feature_spec()

  strategy = strategy_lib.create(training.tpu)
  chief = is_chief(strategy)
  # Every worker saves (saving a distributed variable takes part in collectives), but
  # only the chief where TFX looks; the others in a directory removed afterwards.
  write_dir = fn_args.model_run_dir if chief else tempfile.mkdtemp(prefix='ranker-worker-')
  backup_dir = os.path.join(fn_args.model_run_dir, 'backup')
  try:
    model, checkpoint_path, history = train(
        model_inputs, training, table_sizes, fn_args.train_files, fn_args.eval_files,
        feature_spec, write_dir, backup_dir, strategy,
        base_model=getattr(fn_args, 'base_model', None))
  finally:
    if not chief:
      shutil.rmtree(write_dir, ignore_errors=True)
  if chief:
    split_dir = _columnar_dir(fn_args.train_files)
    catalogue_path = catalogue.find(split_dir) if split_dir else None
    module = export(checkpoint_path, model_inputs, table_sizes, tft_output,
                    fn_args.serving_model_dir, catalogue_path)
    index = None
    if retrieval_options.index == 'scann' and module.catalogue_vectors is not None:
      index = retrieval.ScannIndex(module.catalogue_vectors, module.catalogue_ids,
                                   retrieval_options)
      index.save(os.path.join(fn_args.serving_model_dir, SCANN_INDEX_DIR))
    _write_report(fn_args.model_run_dir, history, table_sizes, strategy, model_inputs,
                  training, _catalogue_report(module, model_inputs, fn_args.train_files,
                                              fn_args.eval_files, index))
  # A worker that exits while the chief still exports is reported as failed by the
  # cluster's coordination service: everyone leaves together.
  _barrier(strategy)
  if chief and tf.io.gfile.exists(backup_dir):
    # Training has ended: nothing to resume. Keras empties the backup, not its folder.
    tf.io.gfile.rmtree(backup_dir)
  return model


def _barrier(strategy: tf.distribute.Strategy) -> None:
  if strategy.num_replicas_in_sync > 1:
    strategy.reduce(tf.distribute.ReduceOp.SUM,
                    strategy.run(lambda: tf.constant(1.0)), axis=None)


RECALL_AT = (10, 100)


def _whole_split(split_dir: str) -> Dict[str, Any]:
  """Every row of a columnar split, in one batch."""
  rows = columnar.read_manifest(split_dir)['rows']
  return next(iter(columnar.make_dataset(split_dir, rows, shuffle=False, seed=0)))


def retrieval_recall(module: ServingModule, model_inputs: ModelInputs, train_dir: str,
                     validation_dir: str, index: Optional[retrieval.ScannIndex] = None
                     ) -> Dict[str, float]:
  """Recall@10 and @100 of each validation user's positive items among top_k's, with
  the items the user was seen with in train left out, and the same for the items with
  the most training rows. Users and items are told by the row of their key's table (the
  first feature of each side; transformed rows hold nothing else), so two users or items
  sharing a row count as one. With a ScaNN index, also the share of the exact top 10
  and 100 items it finds for these users."""
  user_key, item_key = (model_inputs.side(s)[0].name for s in ('user', 'item'))
  train, validation = _whole_split(train_dir), _whole_split(validation_dir)
  seen: Dict[int, set] = {}
  for user, item in zip(train[user_key].numpy().tolist(), train[item_key].numpy().tolist()):
    seen.setdefault(user, set()).add(item)
  positives: Dict[int, set] = {}
  first_row: Dict[int, int] = {}
  for row, (user, item, label) in enumerate(zip(*(
      validation[name].numpy().tolist() for name in (user_key, item_key, LABEL_KEY)))):
    first_row.setdefault(user, row)
    if label:
      positives.setdefault(user, set()).add(item)
  users = sorted(positives)
  if not users:
    return {}
  rows = tf.constant([first_row[u] for u in users])
  tower = module.model.tower('user', {f.name: tf.gather(validation[f.name], rows)
                                      for f in model_inputs.side('user')})
  depth = max(RECALL_AT) + max(len(seen.get(u, ())) for u in users)
  user_vectors, user_bias = retrieval.fold_user(tower)
  _, indices = retrieval.best_items(user_vectors, user_bias, module.catalogue_vectors,
                                    tf.constant(depth))
  ranked = module.catalogue_rows[indices.numpy()].tolist()
  items, counts = np.unique(train[item_key].numpy(), return_counts=True)
  popular = items[np.argsort(-counts, kind='stable')].tolist()
  wanted = [positives[u] for u in users]
  known = [seen.get(u, set()) for u in users]
  report = {}
  for at in RECALL_AT:
    report[f'recall@{at}'] = retrieval.recall(ranked, wanted, known, at)
    report[f'most_popular_recall@{at}'] = retrieval.recall([popular] * len(users), wanted,
                                                            known, at)
    if index is not None:
      _, found = index.best_items(user_vectors, user_bias, tf.constant(at))
      report[f'scann_recall_of_exact@{at}'] = retrieval.overlap(found.numpy(),
                                                                indices[:, :at].numpy())
  return report


def _catalogue_report(module: ServingModule, model_inputs: ModelInputs,
                      train_files: List[str], eval_files: List[str],
                      index: Optional[retrieval.ScannIndex] = None
                      ) -> Optional[Dict[str, Any]]:
  if module.catalogue_vectors is None:
    return None
  report = {'items': int(module.catalogue_vectors.shape[0]),
            'items_sharing_a_row': module.items_sharing_a_row,
            'validation': retrieval_recall(module, model_inputs, _columnar_dir(train_files),
                                           _columnar_dir(eval_files), index)}
  if index is not None:
    report['scann_index'] = {'leaves': index.leaves, 'leaves_to_search': index.leaves_to_search,
                             'reorder': index.reorder}
  logging.info('Catalogue: %d items, %d of them sharing a table row with another; '
               'retrieval on validation: %s', report['items'],
               report['items_sharing_a_row'], report['validation'])
  return report


def _write_report(model_run_dir: str, history: Mapping[str, List[float]],
                  table_sizes: Mapping[str, int], strategy: tf.distribute.Strategy,
                  model_inputs: ModelInputs, training: TrainingOptions,
                  catalogue_report: Optional[Dict[str, int]] = None) -> None:
  """metrics.json: the history per epoch, the final eval metrics and the config."""
  report = {
      'history': history,
      'eval': _final_metrics(history),
      'table_sizes': table_sizes,
      'replicas': strategy.num_replicas_in_sync,
      # Retrieval's item catalogue: its items, how many share a row with another, and
      # recall@K of the validation users' positive items (and of the most popular, and
      # with a ScaNN index the share of the exact top K it finds).
      'catalogue': catalogue_report,
      'config': {MODEL_INPUTS_KEY: model_inputs.to_dict(), TRAINING_KEY: training.to_dict()},
      'command': sys.argv,
  }
  with tf.io.gfile.GFile(os.path.join(model_run_dir, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, default=float)
