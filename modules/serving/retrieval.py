"""Top-K search of the catalogue: exact (every item scored) and approximate (ScaNN).

Vectors are the folded ones of the exported model (modules/serving/export.py
ServingModule): a user [factors, 1] with its bias apart, an item [factors, bias]
(RankingModel.search_vectors: the retrieval bias when the model learned one), so that
the score search ranks by is one inner product; an item's offset and the user's bias
turn it into the item's logit. The exact search is one matrix product over the whole
catalogue; the ScaNN index scores a few of its clusters. bench/serving.py measures both over 1,682
MovieLens movies and a million items.
"""

import math
from typing import List, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from contract.options import RetrievalOptions
from contract.names import (BIAS_KEY, EMBEDDING_KEY, ITEM_IDS_KEY,
                            PREDICTION_KEY, TOP_K_SIGNATURE)

# ScaNN's default leaves_to_search covers at least this many items on average: below a
# few thousand items, searching a tenth of them would miss many of the best.
MIN_ITEMS_SEARCHED = 1000


def fold_user(tower: tf.Tensor):
  """A user tower [factors, bias] -> (the retrieval vector [factors, 1], the bias): the
  1 meets the item's bias, so a score is one inner product plus the user's bias."""
  return tf.concat([tower[:, :-1], tf.ones_like(tower[:, -1:])], axis=1), tower[:, -1]


def best_items(user_vectors: tf.Tensor, user_bias: tf.Tensor, item_vectors: tf.Tensor,
               k: tf.Tensor, item_offsets: Optional[tf.Tensor] = None):
  """(logits [batch, k], item indices [batch, k]) of each user's k best items by their
  search score, best first; k beyond the catalogue is the whole catalogue."""
  scores = tf.matmul(user_vectors, item_vectors, transpose_b=True)
  best = tf.math.top_k(scores, tf.minimum(k, tf.shape(scores)[1]))
  return _logits(best.values, best.indices, user_bias, item_offsets), best.indices


def _logits(scores: tf.Tensor, indices: tf.Tensor, user_bias: tf.Tensor,
            item_offsets: Optional[tf.Tensor]) -> tf.Tensor:
  """The found items' logits from their search scores [batch, k]."""
  logits = scores + user_bias[:, None]
  if item_offsets is None:
    return logits
  return logits + tf.gather(item_offsets, tf.maximum(indices, 0))


def scann_leaves(items: int, options: RetrievalOptions) -> Tuple[int, int]:
  """(leaves, leaves searched per query) of a ScaNN index over `items` vectors."""
  leaves = min(options.num_leaves or max(1, round(math.sqrt(items))), items)
  searched = options.leaves_to_search or math.ceil(
      leaves * max(0.1, MIN_ITEMS_SEARCHED / items))
  return leaves, min(searched, leaves)


def _scann_ops():
  # Imported only for an index: it loads ScaNN's TensorFlow ops into the process.
  from scann.scann_ops.py import scann_ops
  return scann_ops


class ScannIndex(tf.Module):
  """An approximate top-K index of the catalogue's item vectors (ScaNN), saved as a
  SavedModel of its own, so that the model stays loadable where ScaNN's TensorFlow ops
  are not (TF Serving, TFMA); loading the index needs `import scann` first.

  Its top_k takes what the model's user_embedding returns and k, and returns what the
  model's top_k does. The candidates are rescored exactly (plus their offsets), so a
  returned item's probability is serving_default's; a user whose searched leaves hold
  fewer than k items gets fewer, the rest padded with id -1 (or '') and probability 0.
  """

  def __init__(self, item_vectors: tf.Tensor, item_ids: tf.Tensor,
               options: RetrievalOptions, item_offsets: Optional[tf.Tensor] = None):
    super().__init__()
    vectors = np.asarray(item_vectors, np.float32)
    self.leaves, self.leaves_to_search = scann_leaves(len(vectors), options)
    self.reorder = options.reorder
    searcher = _scann_ops().builder(vectors, options.reorder, 'dot_product').tree(
        num_leaves=self.leaves, num_leaves_to_search=self.leaves_to_search,
        training_sample_size=len(vectors)).score_ah(
            2, anisotropic_quantization_threshold=0.2).reorder(options.reorder).build()
    self._searcher_state = searcher.serialize_to_module()
    self.item_ids = tf.Variable(item_ids, trainable=False, name='item_ids')
    self.item_offsets = tf.Variable(
        tf.zeros([len(vectors)]) if item_offsets is None else item_offsets,
        trainable=False, name='item_offsets')
    self._no_id = tf.constant('' if self.item_ids.dtype == tf.string else -1,
                              self.item_ids.dtype)

  def best_items(self, user_vectors: tf.Tensor, user_bias: tf.Tensor, k: tf.Tensor):
    """As best_items (module function): (logits, item indices) of each user's k best
    items found, best first; a missing one's index is -1 and logit -inf."""
    searcher = _scann_ops().searcher_from_module(self._searcher_state)
    found = searcher.search_batched_parallel(
        user_vectors, final_num_neighbors=k,
        pre_reorder_num_neighbors=tf.maximum(k, self.reorder))
    # ScaNN pads a short answer with item 0 at a NaN distance.
    missing = tf.math.is_nan(found.distances)
    logits = tf.where(missing, -np.inf, _logits(found.distances, found.indices, user_bias,
                                                self.item_offsets))
    return logits, tf.where(missing, -1, found.indices)

  def signatures(self):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name=EMBEDDING_KEY),
                                  tf.TensorSpec([None], tf.float32, name=BIAS_KEY),
                                  tf.TensorSpec([], tf.int32, name='k')])
    def top_k(embedding, bias, k):
      """user_embedding's outputs and k -> the k items found of highest probability."""
      logits, indices = self.best_items(embedding, bias, k)
      return {ITEM_IDS_KEY: tf.where(indices < 0, self._no_id,
                                     tf.gather(self.item_ids, tf.maximum(indices, 0))),
              PREDICTION_KEY: tf.sigmoid(logits)}

    return {TOP_K_SIGNATURE: top_k}

  def save(self, path: str) -> None:
    tf.saved_model.save(self, path, signatures=self.signatures(),
                        options=tf.saved_model.SaveOptions(namespace_whitelist=['Scann']))


def overlap_shares(approximate: np.ndarray, exact: np.ndarray) -> List[float]:
  """Each row's share of its exact top items that the approximate search found too
  (recall@K against brute force, K the rows' width)."""
  return [len(set(a) & set(e)) / len(e) for a, e in zip(approximate.tolist(),
                                                       exact.tolist())]


def overlap(approximate: np.ndarray, exact: np.ndarray) -> float:
  """The mean of overlap_shares."""
  return float(np.mean(overlap_shares(approximate, exact)))


def recall_shares(ranked: Sequence[Sequence[int]], positives: Sequence[Set[int]],
                  seen: Sequence[Set[int]], at: int) -> List[float]:
  """Each user's share of their positive items among the first `at` of their ranked
  items, once the items they were seen with are left out (and repeats: items sharing a
  table row)."""
  shares = []
  for items, wanted, known in zip(ranked, positives, seen):
    kept = []
    for item in items:
      if item not in known and item not in kept:
        kept.append(item)
        if len(kept) == at:
          break
    shares.append(len(wanted.intersection(kept)) / len(wanted))
  return shares


def recall(ranked: Sequence[Sequence[int]], positives: Sequence[Set[int]],
           seen: Sequence[Set[int]], at: int) -> float:
  """Recall@`at`: the mean over users of recall_shares."""
  shares = recall_shares(ranked, positives, seen, at)
  return float(np.mean(shares)) if shares else 0.0
