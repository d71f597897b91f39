"""The ranker: table rows -> TPUEmbedding tables -> dot product + biases -> sigmoid.

One `tfrs.layers.embedding.TPUEmbedding` holds the tables (one per feature, or one
shared by the features naming it). Each tower is the sum of its features' embeddings
(a multi-valued feature's rows first combined into one by its table's combiner), and
the last unit of each tower is its bias:

    p = sigmoid(dot(user[:, :-1], item[:, :-1]) + user[:, -1] + item[:, -1])

Summing keeps the last layer a dot product ("late binding": item vectors can be
computed once, user vectors per request), lets every user feature meet every item
feature, and gives a user without history the sum of what their side features learnt.

On a TPU the tables are sharded across cores by the embedding engine; elsewhere they
are ordinary variables, and checkpoints are interchangeable between the two.
"""

import math
import os
from typing import Dict, List, Mapping, Optional

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_recommenders as tfrs
from tensorflow.core.protobuf import trackable_object_graph_pb2  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.ops import resource_variable_ops  # pylint: disable=g-direct-tensorflow-import

from modules import lazy_adam
from contract.model_inputs import ModelInputs
from contract.names import LABEL_KEY

# TPUEmbedding keeps optimizer slots in the layout of these (legacy) Keras optimizers.
_OPTIMIZERS = {
    'adagrad': tf.keras.optimizers.legacy.Adagrad,
    'adam': lazy_adam.Adam,
    'sgd': tf.keras.optimizers.legacy.SGD,
}


# Tables start at this scale over sqrt(embedding_dim).
INITIAL_SCALE = 0.05


def make_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.legacy.Optimizer:
  return _OPTIMIZERS[name](learning_rate=learning_rate)


def feature_configs(model_inputs: ModelInputs, table_sizes: Mapping[str, int]
                    ) -> Dict[str, tf.tpu.experimental.embedding.FeatureConfig]:
  """A table per table name, sized from the transformed schema (`table_sizes`), and a
  feature config per feature looking it up."""
  configs = {}
  for table_name, features in model_inputs.tables().items():
    first = features[0]
    table = tf.tpu.experimental.embedding.TableConfig(
        vocabulary_size=table_sizes[table_name],
        dim=first.embedding_dim,
        # Small: a row no training example looked up (a new user's hash bucket, an id
        # Transform never saw) stays near zero and adds little to a score; at unit scale
        # it added noise as large as a trained row's signal. ML-100K test AUC, tuned
        # (bench/README.md 4a): time split (86% of test rows from new users) 0.7037 ->
        # 0.7094 ids only, 0.6874 -> 0.6963 with side features; random split 0.7729 ->
        # 0.7700 ids only.
        initializer=tf.keras.initializers.TruncatedNormal(
            mean=0.0, stddev=INITIAL_SCALE / math.sqrt(first.embedding_dim)),
        # How a multi-valued row's embeddings become one (one value: its own).
        combiner=first.combiner,
        name=f'{table_name}_table')
    for feature in features:
      configs[feature.name] = tf.tpu.experimental.embedding.FeatureConfig(
          table=table, name=feature.name)
  return configs


def example_inputs(model_inputs: ModelInputs, rows: int = 1) -> Dict[str, tf.Tensor]:
  """Inputs of the model's shapes (row 0 of every table): [rows] ids, or a ragged
  [rows, None] for multi-valued features."""
  inputs = {}
  for feature in model_inputs.features:
    ids = tf.zeros([rows], tf.int64)
    inputs[feature.name] = (tf.RaggedTensor.from_row_lengths(ids, tf.ones([rows], tf.int64))
                            if feature.kind == 'multi_hot' else ids)
  return inputs


def _local_string_variable(next_creator, **kwargs):
  """Creates tf.string variables outside the distribution strategy.

  Upstream cause: TF 2.16's TPUEmbeddingForServing (the tables off-TPU) creates an
  empty tf.string variable for SparseCore layouts, and MultiWorkerMirroredStrategy
  broadcasts every variable's initial value with collectives, which cannot send strings
  (`CollectiveBcastSend ... T of string`). The variable is deleted again once the layer
  is built, so a plain local variable is all it needs.
  """
  if kwargs.get('dtype') is not None and tf.as_dtype(kwargs['dtype']) == tf.string:
    # ResourceVariable's constructor bypasses the variable creator stack (tf.Variable
    # would come back here); the strategy never sees it.
    return resource_variable_ops.ResourceVariable(
        initial_value=kwargs['initial_value'], trainable=False, name=kwargs.get('name'),
        dtype=tf.string)
  return next_creator(**kwargs)


def build(model: 'RankingModel', model_inputs: ModelInputs) -> None:
  """Creates the model's variables with one call, under any strategy but a TPU's.

  Inside the strategy's scope the string-variable creator below must come first, so it
  is entered here, innermost.
  """
  with tf.variable_creator_scope(_local_string_variable):
    model(example_inputs(model_inputs))


def saved_table_shapes(saved_model_dir: str) -> Dict[str, List[int]]:
  """{table: [rows, dim]} of the tables in a SavedModel this project exported, read
  from its checkpoint's object graph (nothing is loaded)."""
  reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, 'variables', 'variables'))
  graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
      reader.get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH'))
  node = 0
  for name in ('model', 'embedding', '_tpu_embedding'):
    node = next((c.node_id for c in graph.nodes[node].children if c.local_name == name),
                None)
    if node is None:
      return {}
  shapes = reader.get_variable_to_shape_map()
  tables = {}
  for child in graph.nodes[node].children:
    if child.local_name.endswith('_table'):
      key = next(a.checkpoint_key for a in graph.nodes[child.node_id].attributes
                 if a.name == 'VARIABLE_VALUE')
      tables[child.local_name[:-len('_table')]] = shapes[key]
  return tables


def why_not_warm(saved_shapes: Mapping[str, List[int]], model_inputs: ModelInputs,
                 table_sizes: Mapping[str, int]) -> Optional[str]:
  """Why tables of these shapes cannot start this model's, or None when they can."""
  for table, features in model_inputs.tables().items():
    wanted = [table_sizes[table], features[0].embedding_dim]
    if table not in saved_shapes:
      return f'the base model has no {table} table'
    if list(saved_shapes[table]) != wanted:
      have = ' x '.join(map(str, saved_shapes[table]))
      return f'its {table} table is {have}, this run\'s is {wanted[0]} x {wanted[1]}'
  return None


def warm_start(model: 'RankingModel', saved_model_dir: str) -> None:
  """Starts the model's tables from a SavedModel's (their optimizer slots start fresh).
  Restoring is deferred to variable creation when the model is not built yet."""
  tf.train.Checkpoint(model=model).restore(
      os.path.join(saved_model_dir, 'variables', 'variables')).expect_partial()


class RankingModel(tfrs.Model):
  """Scores (user, item) pairs with the probability of a positive label."""

  def __init__(self, model_inputs: ModelInputs, table_sizes: Mapping[str, int],
               optimizer: Optional[tf.keras.optimizers.legacy.Optimizer],
               l2_regularization: float = 0.0):
    super().__init__()
    self._user_features = [f.name for f in model_inputs.side('user')]
    self._item_features = [f.name for f in model_inputs.side('item')]
    self._l2_regularization = l2_regularization
    self._feature_configs = feature_configs(model_inputs, table_sizes)
    # optimizer=None builds the tables without slots, for export.
    self.embedding = tfrs.layers.embedding.TPUEmbedding(
        feature_config=self._feature_configs, optimizer=optimizer)
    # Summed here, divided by the global batch in compute_loss: replicas' gradients are
    # summed, so each replica's loss must be its share of the global mean.
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(reduction=tf.keras.losses.Reduction.SUM),
        metrics=[
            tf.keras.metrics.AUC(name='auc'),
            tf.keras.metrics.AUC(curve='PR', name='pr_auc'),
            tf.keras.metrics.BinaryAccuracy(name='binary_accuracy'),
            tf.keras.metrics.BinaryCrossentropy(name='label_cross_entropy'),
        ],
        prediction_metrics=[tf.keras.metrics.Mean(name='prediction_mean')],
        label_metrics=[tf.keras.metrics.Mean(name='label_mean')])
    # Keras metrics already hold global values on every replica; the default ('sum'
    # off TPUs) would add them up once per replica. The losses are summed in train_step.
    self.distribute_reduction_method = 'first'
    # A Keras metric, so that Keras resets it each epoch and sums it across replicas.
    self._mean_loss = tf.keras.metrics.Mean(name='loss')

  def _embeddings(self, features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """{feature: [batch, dim]}: each feature's row (multi-valued: rows combined)."""
    return self.embedding({name: features[name]
                           for name in self._user_features + self._item_features})

  def _towers(self, embeddings: Mapping[str, tf.Tensor]):
    user = tf.add_n([embeddings[name] for name in self._user_features])
    item = tf.add_n([embeddings[name] for name in self._item_features])
    return user, item

  @staticmethod
  def _probability(user: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
    logits = (tf.reduce_sum(user[:, :-1] * item[:, :-1], axis=1, keepdims=True)
              + user[:, -1:] + item[:, -1:])
    return tf.sigmoid(logits)

  def tower(self, side: str, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch, dim] one tower from its own side's features alone (off a TPU: for the
    exported model, where a user is embedded without any item and the other way round)."""
    names = self._user_features if side == 'user' else self._item_features
    embeddings = self.embedding(
        {name: features[name] for name in names},
        serving_config={name: self._feature_configs[name] for name in names})
    return tf.add_n([embeddings[name] for name in names])

  def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch] ids per feature -> [batch, 1] probabilities."""
    return self._probability(*self._towers(self._embeddings(features)))

  def compute_loss(self, features, training: bool = False) -> tf.Tensor:
    """This replica's share of the global batch's mean binary cross-entropy (plus L2):
    the replicas' shares add up to the mean over the global batch."""
    labels = tf.cast(tf.reshape(features[LABEL_KEY], [-1, 1]), tf.float32)
    embeddings = self._embeddings(features)
    user, item = self._towers(embeddings)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    global_batch = tf.cast(tf.shape(labels)[0] * replicas, tf.float32)
    loss = self.task(labels=labels, predictions=self._probability(user, item))
    if self._l2_regularization:
      # On the looked-up rows only: a step touches the batch's rows, never the table.
      loss += self._l2_regularization * tf.add_n(
          [tf.reduce_sum(tf.square(e)) for e in embeddings.values()])
    return loss / global_batch

  def _with_mean_loss(self, logs):
    """The loss as the mean over the epoch's global batches (Keras' own `loss` is
    that; tfrs reports the last batch's share on one replica). The L2 term is part of
    the loss, so tfrs' separate regularization entries are always zero: dropped."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    # This replica's share times the replicas is its batch's mean loss.
    self._mean_loss.update_state(logs['loss'] * replicas)
    logs = {k: v for k, v in logs.items() if k not in ('regularization_loss', 'total_loss')}
    logs['loss'] = self._mean_loss.result()
    return logs

  def train_step(self, inputs):
    return self._with_mean_loss(super().train_step(inputs))

  def test_step(self, inputs):
    return self._with_mean_loss(super().test_step(inputs))
