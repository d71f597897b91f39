"""The SavedModel the Trainer exports: its signatures, and the export itself.

serving_default scores serialized tf.Examples; serve_ids takes raw values per feature;
transform_features gives TFMA the 0/1 label; user_embedding and item_embedding are the
towers; top_k searches the item catalogue (when the Trainer was given one).
"""

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contract.model_inputs import ModelInputs
from contract.options import LossWeights
from contract.names import (BIAS_KEY, EMBEDDING_KEY, IDS_SIGNATURE, ITEM_EMBEDDING_SIGNATURE,
                            ITEM_IDS_KEY, LABEL_KEY, PREDICTION_KEY, SERVING_SIGNATURE,
                            TOP_K_SIGNATURE, TRANSFORM_SIGNATURE, USER_EMBEDDING_SIGNATURE)
from modules.data import catalogue
from modules.model import ranking
from modules.serving import retrieval

class ServingModule(tf.Module):
  """What the pushed SavedModel holds: the transform graph, the trained tables and,
  given the item catalogue, every catalogue item's vector for top-K retrieval.

  Retrieval folds the biases into the vectors: a user is [factors, 1] (and a bias
  apart), an item [factors, bias], so that an item's score for a user is one inner
  product plus the user's bias, which orders nothing:

      logit = dot(user_embedding, item_embedding) + user_bias

  top_k ranks the catalogue by the search vectors (RankingModel.search_vectors): the
  same, unless the model learned a retrieval bias, which then replaces the item bias.
  """

  def __init__(self, model: ranking.RankingModel, tft_output: tft.TFTransformOutput,
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
    self.catalogue_ids = self.catalogue_vectors = self.catalogue_offsets = None
    self.items_sharing_a_row = 0
    if catalogue_path:
      key = model_inputs.side('item')[0].name
      items = tf.io.parse_example(catalogue.read(catalogue_path), self._side_spec['item'])
      rows = self._rows(items)
      self.catalogue_ids = tf.Variable(_dense(items[key]), trainable=False,
                                       name='catalogue_ids')
      vectors, offsets = self.model.search_vectors(rows)
      self.catalogue_vectors = tf.Variable(vectors, trainable=False, name='catalogue_vectors')
      self.catalogue_offsets = tf.Variable(offsets, trainable=False, name='catalogue_offsets')
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
        """The user-side raw values and k -> each user's k best catalogue items (every
        item the data held; none is excluded), best first: of highest probability or,
        when the model was trained with the retrieval loss, most likely picked. Their
        ids ([batch, k]) and probabilities, as serving_default would score each pair."""
        vectors, bias = self._user_vectors(as_raw(values, user_spec, TOP_K_SIGNATURE))
        logits, indices = retrieval.best_items(vectors, bias, self.catalogue_vectors, k,
                                               self.catalogue_offsets)
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
           losses: LossWeights, tft_output: tft.TFTransformOutput, serving_dir: str,
           catalogue_path: Optional[str] = None) -> ServingModule:
  """Rebuilds the model outside any distribution strategy, restores the trained
  tables and saves a SavedModel (with the catalogue's item vectors when given); a
  TPU-distributed model is never saved directly. `losses`: the ones it was trained
  with (the retrieval loss adds a table)."""
  model = ranking.RankingModel(model_inputs, table_sizes, optimizer=None, losses=losses)
  ranking.build(model, model_inputs)
  tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial(
  ).assert_existing_objects_matched()
  module = ServingModule(model, tft_output, model_inputs, catalogue_path)
  tf.saved_model.save(module, serving_dir, signatures=module.signatures())
  return module
