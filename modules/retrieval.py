"""Exact top-K search: every item's score for each user, the best K kept.

Vectors are the folded ones of the exported model (modules/trainer.py ServingModule):
a user [factors, 1] with its bias apart, an item [factors, bias], so that a score is one
inner product. One matrix product over the whole catalogue: 1,682 MovieLens movies or a
million items cost what bench/serving.py measures.
"""

import os
from typing import Sequence, Set

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top


def fold_user(tower: tf.Tensor):
  """A user tower [factors, bias] -> (the retrieval vector [factors, 1], the bias): the
  1 meets the item's bias, so a score is one inner product plus the user's bias."""
  return tf.concat([tower[:, :-1], tf.ones_like(tower[:, -1:])], axis=1), tower[:, -1]


def best_items(user_vectors: tf.Tensor, user_bias: tf.Tensor, item_vectors: tf.Tensor,
               k: tf.Tensor):
  """(logits [batch, k], item indices [batch, k]) of each user's k best items, best
  first; k beyond the catalogue is the whole catalogue."""
  logits = tf.matmul(user_vectors, item_vectors, transpose_b=True) + user_bias[:, None]
  best = tf.math.top_k(logits, tf.minimum(k, tf.shape(logits)[1]))
  return best.values, best.indices


def recall(ranked: Sequence[Sequence[int]], positives: Sequence[Set[int]],
           seen: Sequence[Set[int]], at: int) -> float:
  """Mean over users of the share of their positive items among the first `at` of
  their ranked items, once the items they were seen with are left out (and repeats:
  items sharing a table row)."""
  shares = []
  for items, wanted, known in zip(ranked, positives, seen):
    kept = []
    for item in items:
      if item not in known and item not in kept:
        kept.append(item)
        if len(kept) == at:
          break
    shares.append(len(wanted.intersection(kept)) / len(wanted))
  return float(np.mean(shares)) if shares else 0.0
