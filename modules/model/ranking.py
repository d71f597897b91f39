"""The ranker: table rows -> TPUEmbedding tables -> dot product + biases -> sigmoid.

One `tfrs.layers.embedding.TPUEmbedding` holds the tables (one per feature, or one
shared by the features naming it). Each tower is the sum of its features' embeddings
(a multi-valued feature's rows first combined into one by its table's combiner), and
the last unit of each tower is its bias:

    p = sigmoid(dot(user[:, :-1], item[:, :-1]) + user[:, -1] + item[:, -1])

Summing keeps the last layer a dot product ("late binding": item vectors can be
computed once, user vectors per request), lets every user feature meet every item
feature, and gives a user without history the sum of what their side features learnt.

With the retrieval loss, each item also has a retrieval bias (a one-unit table on the
item key): how often users pick the item, kept apart from the item bias, which says how
they rate it once picked. How often an item is picked says little of how its raters
rate it: one bias for both cost 0.017 validation AUC and 0.028 in-user AUC at the same
recall (bench/README.md, "Losses, side by side").

On a TPU the embedding API places the tables (which one TFRS picks depends on the chip);
elsewhere they are ordinary variables, and checkpoints are interchangeable between the
two.
"""

import math
from typing import Dict, Mapping, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tensorflow.python.ops import resource_variable_ops  # pylint: disable=g-direct-tensorflow-import

from contract.model_inputs import ModelInputs
from contract.names import LABEL_KEY, LABEL_VALUE_KEY
from contract.options import LossWeights

# Tables start at this scale over sqrt(embedding_dim).
INITIAL_SCALE = 0.05


# The retrieval bias's table is the item key's table name and this; its lookup, the
# item key's name and this.
RETRIEVAL_BIAS_SUFFIX = '_retrieval_bias'


def feature_configs(model_inputs: ModelInputs, table_sizes: Mapping[str, int],
                    retrieval_bias: bool = False
                    ) -> Dict[str, tf.tpu.experimental.embedding.FeatureConfig]:
  """A table per table name, sized from the transformed schema (`table_sizes`), and a
  feature config per feature looking it up; with `retrieval_bias`, one more one-unit
  table looked up by the item key."""
  configs = {}
  if retrieval_bias:
    key = model_inputs.side('item')[0]
    configs[key.name + RETRIEVAL_BIAS_SUFFIX] = tf.tpu.experimental.embedding.FeatureConfig(
        table=tf.tpu.experimental.embedding.TableConfig(
            vocabulary_size=table_sizes[key.table_name], dim=1,
            initializer=tf.keras.initializers.Zeros(), combiner='sum',
            name=f'{key.table_name}{RETRIEVAL_BIAS_SUFFIX}_table'),
        name=key.name + RETRIEVAL_BIAS_SUFFIX)
  for table_name, features in model_inputs.tables().items():
    first = features[0]
    table = tf.tpu.experimental.embedding.TableConfig(
        vocabulary_size=table_sizes[table_name],
        dim=first.embedding_dim,
        # Small: a row no training example looked up (a new user's hash bucket, an id
        # Transform never saw) stays near zero and adds little to a score; at unit scale
        # it added noise as large as a trained row's signal, which cost test AUC most on
        # the time split, whose test rows are mostly new users' (bench/README.md,
        # "How we got here": the starting scale).
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
                            if feature.multi_valued else ids)
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


class RankingModel(tfrs.Model):
  """Scores (user, item) pairs with the probability of a positive label."""

  def __init__(self, model_inputs: ModelInputs, table_sizes: Mapping[str, int],
               optimizer: Optional[tf.keras.optimizers.legacy.Optimizer],
               l2_regularization: float = 0.0, losses: LossWeights = LossWeights(),
               item_counts: Optional[np.ndarray] = None):
    """`item_counts`: the training rows of each row of the item key's table, which
    the retrieval loss corrects its scores by (needed to train with that loss; an
    export, `optimizer=None`, builds the tables only)."""
    super().__init__()
    self._user_features = [f.name for f in model_inputs.side('user')]
    self._item_features = [f.name for f in model_inputs.side('item')]
    self._item_key = self._item_features[0]
    self._l2_regularization = l2_regularization
    # Floats, not the options object: Keras would track it as a layer attribute.
    self._label_weight = losses.label
    self._label_value_weight = losses.label_value
    self._retrieval_weight = losses.retrieval
    if losses.label_value:
      # label value ~ slope * logit + intercept: the 0/1 head's own score, stretched.
      self._value_slope = self.add_weight(
          name='value_slope', shape=[], initializer=tf.keras.initializers.Ones())
      self._value_intercept = self.add_weight(
          name='value_intercept', shape=[],
          initializer=tf.keras.initializers.Constant(model_inputs.label.threshold))
    if losses.retrieval and optimizer is not None and item_counts is None:
      raise ValueError('the retrieval loss needs the training rows of each item')
    if item_counts is not None:
      # log of how often in-batch sampling draws each item as a negative; +1: an item
      # the counting pass missed is still rare, not impossible.
      self._item_log_frequency = tf.constant(np.log1p(item_counts), tf.float32)
    self._retrieval_bias = self._item_key + RETRIEVAL_BIAS_SUFFIX
    self._feature_configs = feature_configs(model_inputs, table_sizes,
                                            retrieval_bias=bool(losses.retrieval))
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
    """{feature: [batch, dim]}: each feature's row (multi-valued: rows combined), and
    the items' retrieval bias when the model has one."""
    ids = {name: features[name] for name in self._user_features + self._item_features}
    if self._retrieval_weight:
      ids[self._retrieval_bias] = features[self._item_key]
    return self.embedding(ids)

  def _towers(self, embeddings: Mapping[str, tf.Tensor]):
    user = tf.add_n([embeddings[name] for name in self._user_features])
    item = tf.add_n([embeddings[name] for name in self._item_features])
    return user, item

  @staticmethod
  def _logits(user: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
    return (tf.reduce_sum(user[:, :-1] * item[:, :-1], axis=1, keepdims=True)
            + user[:, -1:] + item[:, -1:])

  def _lookup(self, ids: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Some of the tables' rows (off a TPU, where any subset may be looked up)."""
    return self.embedding(ids, serving_config={name: self._feature_configs[name]
                                               for name in ids})

  def tower(self, side: str, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch, dim] one tower from its own side's features alone (off a TPU: for the
    exported model, where a user is embedded without any item and the other way round)."""
    names = self._user_features if side == 'user' else self._item_features
    embeddings = self._lookup({name: features[name] for name in names})
    return tf.add_n([embeddings[name] for name in names])

  def search_vectors(self, item_features: Mapping[str, tf.Tensor]):
    """(vectors [items, dim], offsets [items]) of items for top-K search, off a TPU.

    A folded user [factors, 1] (modules/serving/retrieval.py fold_user) times an item's
    vector is the score search ranks by: the item tower, its bias replaced by the
    retrieval bias when the model has one. Plus the item's offset and the user's bias,
    it is the item's logit (the offset is 0 without a retrieval bias).
    """
    item = self.tower('item', item_features)
    if not self._retrieval_weight:
      return item, tf.zeros_like(item[:, -1])
    bias = self._lookup({self._retrieval_bias: item_features[self._item_key]})[
        self._retrieval_bias][:, 0]
    return tf.concat([item[:, :-1], bias[:, None]], axis=1), item[:, -1] - bias

  def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch] ids per feature -> [batch, 1] probabilities."""
    return tf.sigmoid(self._logits(*self._towers(self._embeddings(features))))

  def compute_loss(self, features, training: bool = False) -> tf.Tensor:
    """This replica's share of the global batch's mean weighted loss (plus L2): the
    replicas' shares add up to the mean over the global batch."""
    labels = tf.cast(tf.reshape(features[LABEL_KEY], [-1, 1]), tf.float32)
    embeddings = self._embeddings(features)
    user, item = self._towers(embeddings)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    global_batch = tf.cast(tf.shape(labels)[0] * replicas, tf.float32)
    logits = self._logits(user, item)
    # Always computed: the task keeps the metrics (AUC...) of the probability.
    loss = self._label_weight * self.task(labels=labels, predictions=tf.sigmoid(logits))
    if self._label_value_weight:
      loss += self._label_value_weight * self._label_value_loss(
          tf.reshape(features[LABEL_VALUE_KEY], [-1, 1]), logits)
    if self._retrieval_weight:
      loss += self._retrieval_weight * self._retrieval_loss(
          user, item, embeddings[self._retrieval_bias],
          tf.reshape(features[self._item_key], [-1]))
    if self._l2_regularization:
      # On the looked-up rows only: a step touches the batch's rows, never the table.
      loss += self._l2_regularization * tf.add_n(
          [tf.reduce_sum(tf.square(e)) for e in embeddings.values()])
    return loss / global_batch

  def _label_value_loss(self, values: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Summed squared error of the label values predicted from the logits (a row
    without a value adds nothing)."""
    predicted = self._value_slope * logits + self._value_intercept
    error = tf.where(tf.math.is_finite(values), values - predicted, 0.0)
    return tf.reduce_sum(tf.square(error))

  def _retrieval_loss(self, user: tf.Tensor, item: tf.Tensor, retrieval_bias: tf.Tensor,
                      item_ids: tf.Tensor) -> tf.Tensor:
    """Summed softmax cross-entropy of each row's item among the batch's items.

    Every row counts, whatever its label: a rated item is one the user picked, which is
    what retrieval predicts (on positive rows only, recall@10 was 0.13, on every row
    0.20; bench/README.md). Scores are top_k's (user factors . item factors + retrieval
    bias). The batch draws items by their frequency, so a popular item is a negative
    more often than the catalogue holds it; subtracting each item's log frequency (the
    "logQ" correction of sampled softmax) makes the scores estimate the full-catalogue
    softmax instead of one that punishes popularity. The same item on another row of
    the batch is no negative.
    """
    scores = (tf.matmul(user[:, :-1], item[:, :-1], transpose_b=True)
              + tf.transpose(retrieval_bias)
              - tf.gather(self._item_log_frequency, item_ids)[None, :])
    rows = tf.shape(scores)[0]
    duplicate = tf.logical_and(tf.equal(item_ids[:, None], item_ids[None, :]),
                               tf.logical_not(tf.eye(rows, dtype=tf.bool)))
    scores = tf.where(duplicate, tf.constant(-1e9, scores.dtype), scores)
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.range(rows), logits=scores))

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
