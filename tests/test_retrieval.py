"""Top-K search (exact, and the ScaNN index against it) and recall@K."""

import numpy as np
import pytest
import tensorflow as tf

from contract.options import RetrievalOptions
from modules.serving import retrieval


def test_best_items_are_the_highest_inner_products_plus_the_users_bias():
  users = tf.constant([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
  bias = tf.constant([0.5, -1.0])
  # [factor, factor, item bias]
  items = tf.constant([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [2.0, 2.0, -1.0]])
  logits, indices = retrieval.best_items(users, bias, items, tf.constant(2))
  assert indices.numpy().tolist() == [[2, 0], [2, 1]]
  np.testing.assert_allclose(logits.numpy(), [[3.5, 1.5], [2.0, 1.0]])
  _, everything = retrieval.best_items(users, bias, items, tf.constant(99))
  assert everything.shape == (2, 4)


def test_item_offsets_change_the_logits_not_the_order():
  users = tf.constant([[1.0, 0.0, 1.0]])
  # [factor, factor, search bias]; an offset turns a search score into the logit.
  items = tf.constant([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
  offsets = tf.constant([5.0, 0.0, -4.0])
  logits, indices = retrieval.best_items(users, tf.constant([0.5]), items, tf.constant(3),
                                         offsets)
  assert indices.numpy().tolist() == [[2, 0, 1]]
  np.testing.assert_allclose(logits.numpy(), [[3.5 - 4.0, 1.5 + 5.0, 0.5]])


def test_recall_leaves_out_seen_and_repeated_items():
  ranked = [[5, 5, 1, 2, 3], [7, 8, 9]]
  positives = [{2, 3}, {9, 4}]
  seen = [{1}, set()]
  # User 0: 5, 2 in the first two unseen distinct items: 1 of 2 positives. User 1: 7, 8.
  assert retrieval.recall(ranked, positives, seen, 2) == pytest.approx((0.5 + 0.0) / 2)
  assert retrieval.recall(ranked, positives, seen, 3) == pytest.approx((1.0 + 0.5) / 2)
  assert retrieval.recall([], [], [], 10) == 0.0


def test_scann_leaves_default_to_a_square_root_and_search_at_least_a_thousand_items():
  default = RetrievalOptions(index='scann')
  assert retrieval.scann_leaves(1_000_000, default) == (1000, 100)
  # 1,682 movies: 41 leaves of ~41 items; 1,000 items are 25 of them.
  assert retrieval.scann_leaves(1682, default) == (41, 25)
  assert retrieval.scann_leaves(399, default) == (20, 20)
  assert retrieval.scann_leaves(5, RetrievalOptions(index='scann', num_leaves=50)) == (5, 5)
  assert retrieval.scann_leaves(10_000, RetrievalOptions(
      index='scann', num_leaves=200, leaves_to_search=7)) == (200, 7)


def _clustered_items(rng, items=3000, dim=16, clusters=40):
  centres = rng.normal(0, 1, (clusters, dim))
  vectors = centres[rng.integers(0, clusters, items)] + rng.normal(0, 0.3, (items, dim))
  return tf.constant(vectors, tf.float32)


def test_the_scann_index_finds_the_exact_best_items_with_their_exact_scores(tmp_path):
  rng = np.random.default_rng(3)
  items = _clustered_items(rng)
  ids = tf.constant(np.arange(3000) * 10 + 7, tf.int64)
  users = tf.constant(rng.normal(0, 1, (50, 16)), tf.float32)
  bias = tf.constant(rng.normal(0, 1, 50), tf.float32)
  offsets = tf.constant(rng.normal(0, 1, 3000), tf.float32)
  index = retrieval.ScannIndex(items, ids, RetrievalOptions(index='scann'), offsets)
  logits, found = index.best_items(users, bias, tf.constant(10))
  exact_logits, exact = retrieval.best_items(users, bias, items, tf.constant(10), offsets)
  # (ScaNN trains its clusters anew each build: the share found varies, ~0.9-1 here.)
  assert retrieval.overlap(found.numpy(), exact.numpy()) >= 0.8
  # Every item found is scored exactly: its inner product plus the user's bias and its
  # offset.
  scores = (users.numpy() @ items.numpy().T) + bias.numpy()[:, None] + offsets.numpy()
  np.testing.assert_allclose(logits.numpy(), np.take_along_axis(scores, found.numpy(), 1),
                             rtol=1e-4, atol=1e-4)
  # Saved, it loads (once ScaNN's ops are) and answers with item ids and probabilities.
  index.save(str(tmp_path / 'index'))
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  loaded = tf.saved_model.load(str(tmp_path / 'index'))
  top = loaded.signatures['top_k'](embedding=users, bias=bias, k=tf.constant(10))
  assert top['item_ids'].numpy().tolist() == tf.gather(ids, found).numpy().tolist()
  np.testing.assert_allclose(top['probability'].numpy(), tf.sigmoid(logits).numpy(),
                             rtol=1e-5)


def test_the_scann_index_pads_what_its_searched_leaves_do_not_hold():
  rng = np.random.default_rng(4)
  items = _clustered_items(rng, items=200, clusters=10)
  ids = tf.constant([f'item{i}' for i in range(200)])
  index = retrieval.ScannIndex(items, ids, RetrievalOptions(
      index='scann', num_leaves=10, leaves_to_search=1))
  top = index.signatures()['top_k'](embedding=tf.constant(rng.normal(0, 1, (3, 16)),
                                                          tf.float32),
                                    bias=tf.zeros([3]), k=tf.constant(200))
  missing = top['item_ids'].numpy() == b''
  assert missing.any() and not missing.all(axis=1).any()
  assert (top['probability'].numpy()[missing] == 0).all()
  assert (top['probability'].numpy()[~missing] > 0).all()
