"""The exact top-K search and recall@K, on numbers worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from modules import retrieval


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


def test_recall_leaves_out_seen_and_repeated_items():
  ranked = [[5, 5, 1, 2, 3], [7, 8, 9]]
  positives = [{2, 3}, {9, 4}]
  seen = [{1}, set()]
  # User 0: 5, 2 in the first two unseen distinct items: 1 of 2 positives. User 1: 7, 8.
  assert retrieval.recall(ranked, positives, seen, 2) == pytest.approx((0.5 + 0.0) / 2)
  assert retrieval.recall(ranked, positives, seen, 3) == pytest.approx((1.0 + 0.5) / 2)
  assert retrieval.recall([], [], [], 10) == 0.0
