"""The ranker: hashed ids -> TPUEmbedding tables -> dot product + biases -> sigmoid.

One `tfrs.layers.embedding.TPUEmbedding` holds a table per id feature. The user-side
embeddings are concatenated, so are the item-side ones, and the last unit of each
side is that side's bias:

    p = sigmoid(dot(user[:, :-1], item[:, :-1]) + user[:, -1] + item[:, -1])

On a TPU the tables are sharded across cores by the embedding engine; elsewhere they
are ordinary variables, and checkpoints are interchangeable between the two.
"""

import math
import os
from typing import Dict, Mapping, Optional

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_recommenders as tfrs

from modules import lazy_adam
from contract.model_inputs import ModelInputs
from contract.names import LABEL_KEY

# TPUEmbedding keeps optimizer slots in the layout of these (legacy) Keras optimizers.
_OPTIMIZERS = {
    'adagrad': tf.keras.optimizers.legacy.Adagrad,
    'adam': lazy_adam.Adam,
    'sgd': tf.keras.optimizers.legacy.SGD,
}


def make_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.legacy.Optimizer:
  return _OPTIMIZERS[name](learning_rate=learning_rate)


def feature_configs(model_inputs: ModelInputs, vocab_sizes: Mapping[str, int]
                    ) -> Dict[str, tf.tpu.experimental.embedding.FeatureConfig]:
  """One table per feature, sized from the transformed schema (`vocab_sizes`)."""
  configs = {}
  for feature in model_inputs.features:
    table = tf.tpu.experimental.embedding.TableConfig(
        vocabulary_size=vocab_sizes[feature.name],
        dim=feature.embedding_dim,
        # Unit-variance dot products at the start, whatever the dimension.
        initializer=tf.keras.initializers.TruncatedNormal(
            mean=0.0, stddev=1.0 / math.sqrt(feature.embedding_dim)),
        name=f'{feature.name}_table')
    configs[feature.name] = tf.tpu.experimental.embedding.FeatureConfig(
        table=table, name=feature.name)
  return configs


class RankingModel(tfrs.Model):
  """Scores (user, item) pairs with the probability of a positive label."""

  def __init__(self, model_inputs: ModelInputs, vocab_sizes: Mapping[str, int],
               optimizer: Optional[tf.keras.optimizers.legacy.Optimizer],
               l2_regularization: float = 0.0):
    super().__init__()
    self._user_features = [f.name for f in model_inputs.side('user')]
    self._item_features = [f.name for f in model_inputs.side('item')]
    self._l2_regularization = l2_regularization
    # optimizer=None builds the tables without slots, for export.
    self.embedding = tfrs.layers.embedding.TPUEmbedding(
        feature_config=feature_configs(model_inputs, vocab_sizes), optimizer=optimizer)
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[
            tf.keras.metrics.AUC(name='auc'),
            tf.keras.metrics.AUC(curve='PR', name='pr_auc'),
            tf.keras.metrics.BinaryAccuracy(name='binary_accuracy'),
            tf.keras.metrics.BinaryCrossentropy(name='label_cross_entropy'),
        ],
        prediction_metrics=[tf.keras.metrics.Mean(name='prediction_mean')],
        label_metrics=[tf.keras.metrics.Mean(name='label_mean')])

  def _sides(self, features: Mapping[str, tf.Tensor]):
    embeddings = self.embedding({name: features[name]
                                 for name in self._user_features + self._item_features})
    user = tf.concat([embeddings[name] for name in self._user_features], axis=1)
    item = tf.concat([embeddings[name] for name in self._item_features], axis=1)
    return user, item

  @staticmethod
  def _probability(user: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
    logits = (tf.reduce_sum(user[:, :-1] * item[:, :-1], axis=1, keepdims=True)
              + user[:, -1:] + item[:, -1:])
    return tf.sigmoid(logits)

  def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[batch] ids per feature -> [batch, 1] probabilities."""
    return self._probability(*self._sides(features))

  def compute_loss(self, features, training: bool = False) -> tf.Tensor:
    """Binary cross-entropy of one batch of transformed features, label included."""
    labels = tf.cast(tf.reshape(features[LABEL_KEY], [-1, 1]), tf.float32)
    user, item = self._sides(features)
    loss = self.task(labels=labels, predictions=self._probability(user, item))
    if self._l2_regularization:
      # On the looked-up rows only: a step touches the batch's rows, never the table.
      loss += self._l2_regularization * (
          tf.reduce_mean(tf.reduce_sum(tf.square(user), axis=1))
          + tf.reduce_mean(tf.reduce_sum(tf.square(item), axis=1)))
    return loss
