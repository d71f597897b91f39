"""What one user sees, measured on the validation split: in-user AUC and recall@K.

A pooled AUC also rewards telling users apart (who likes more of what they rate), which
the biases alone do well; a user sees their own items in order. So the Tuner can be
scored by either of these instead (`tuning.objective`):

- in-user AUC: the mean over validation users with both labels of the AUC of their own
  rows;
- recall@K: the mean over validation users with a positive row of the share of their
  positive items among their K best catalogue items, the items they were seen with in
  train left out (what `top_k` returns).

Both read whole columnar splits, in transformed rows: users and items are told by the row
of their key's table (each side's first feature), the catalogue is the training data's
distinct items, each with the item-side rows of its first training row.
"""

from typing import Dict, List, Mapping

import numpy as np
import tensorflow as tf

from contract.model_inputs import ModelInputs
from contract.names import LABEL_KEY
from modules.data import columnar
from modules.serving import retrieval

# Users scored per batch when ranking the catalogue.
_USER_BATCH = 1024


def whole_split(split_dir: str) -> Dict[str, tf.Tensor]:
  """Every row of a columnar split, in one batch."""
  rows = columnar.read_manifest(split_dir)['rows']
  return next(iter(columnar.make_dataset(split_dir, rows, shuffle=False, seed=0)))


def rows_by_user(users: np.ndarray) -> List[np.ndarray]:
  """The indices of each user's rows."""
  order = np.argsort(users, kind='stable')
  _, starts = np.unique(users[order], return_index=True)
  return np.split(order, starts[1:])


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """The ROC AUC (ties count half), from the ranks of the scores."""
  positives = labels.astype(bool)
  count = positives.sum()
  if count in (0, len(labels)):
    raise ValueError('the AUC needs both labels')
  order = np.argsort(scores, kind='stable')
  ranks = np.empty(len(scores))
  sorted_scores = scores[order]
  # Tied scores share their mean rank.
  _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
  mean_rank = first + (counts + 1) / 2
  ranks[order] = np.repeat(mean_rank, counts)
  return float((ranks[positives].sum() - count * (count + 1) / 2)
               / (count * (len(labels) - count)))


def in_user_auc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
  """The mean over users with both labels of the AUC of their own rows; NaN without
  such a user."""
  aucs = [auc(labels[rows], scores[rows]) for rows in rows_by_user(users)
          if 0 < labels[rows].sum() < len(rows)]
  return float(np.mean(aucs)) if aucs else float('nan')


class UserMetrics:
  """In-user AUC and recall@K of a model on the validation split, against train."""

  def __init__(self, model_inputs: ModelInputs, train_dir: str, validation_dir: str):
    self._user_features = [f.name for f in model_inputs.side('user')]
    self._item_features = [f.name for f in model_inputs.side('item')]
    user_key, item_key = self._user_features[0], self._item_features[0]
    train = whole_split(train_dir)
    self._validation = whole_split(validation_dir)
    train_items = train[item_key].numpy()
    # The catalogue: each distinct item's first training row.
    self._catalogue_items, first = np.unique(train_items, return_index=True)
    self._catalogue = {name: tf.gather(train[name], first) for name in self._item_features}
    self._seen: Dict[int, set] = {}
    for user, item in zip(train[user_key].numpy().tolist(), train_items.tolist()):
      self._seen.setdefault(user, set()).add(item)
    self._users = self._validation[user_key].numpy()
    self._labels = self._validation[LABEL_KEY].numpy()
    items = self._validation[item_key].numpy()
    positives: Dict[int, set] = {}
    first_row: Dict[int, int] = {}
    for row, (user, item, label) in enumerate(zip(self._users.tolist(), items.tolist(),
                                                  self._labels.tolist())):
      first_row.setdefault(user, row)
      if label:
        positives.setdefault(user, set()).add(item)
    self._recall_users = sorted(positives)
    self._positives = [positives[u] for u in self._recall_users]
    self._user_rows = np.array([first_row[u] for u in self._recall_users], np.int64)

  def in_user_auc(self, model) -> float:
    scores = np.concatenate([
        model(batch).numpy().ravel() for batch in tf.data.Dataset.from_tensor_slices(
            {name: self._validation[name] for name in self._user_features
             + self._item_features}).batch(65_536)])
    return in_user_auc(self._users, self._labels, scores)

  def recall(self, model, at: int) -> float:
    """Recall@`at` of the validation users' positive items in their ranked catalogue."""
    if not self._recall_users:
      return float('nan')
    items, _ = model.search_vectors(self._catalogue)
    known = [self._seen.get(u, set()) for u in self._recall_users]
    depth = tf.constant(at + max(len(k) for k in known))
    ranked = []
    for start in range(0, len(self._recall_users), _USER_BATCH):
      rows = tf.constant(self._user_rows[start:start + _USER_BATCH])
      tower = model.tower('user', {name: tf.gather(self._validation[name], rows)
                                   for name in self._user_features})
      # An item's last unit is its (search) bias, which the folded user's 1 meets.
      _, indices = retrieval.best_items(*retrieval.fold_user(tower), items, depth)
      ranked.extend(self._catalogue_items[indices.numpy()].tolist())
    return retrieval.recall(ranked, self._positives, known, at)


class UserMetricsCallback(tf.keras.callbacks.Callback):
  """Adds `val_in_user_auc` and `val_recall@K` to each epoch's logs."""

  def __init__(self, metrics: UserMetrics, recall_at: int):
    super().__init__()
    self._metrics, self._recall_at = metrics, recall_at

  def on_epoch_end(self, epoch, logs: Mapping = None):
    if logs is not None:
      logs['val_in_user_auc'] = self._metrics.in_user_auc(self.model)
      logs[f'val_recall@{self._recall_at}'] = self._metrics.recall(self.model,
                                                                   self._recall_at)
