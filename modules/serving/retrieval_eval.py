"""How well the exported model retrieves: recall@K on the validation split, in metrics.json.

Each validation user's positive items among top_k's, the items the user was seen with in
train left out, beside the same for the most popular items; with a ScaNN index, the
share of the exact top K it finds.
"""

import logging
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from contract.model_inputs import ModelInputs
from contract.names import LABEL_KEY
from modules.data import columnar
from modules.serving import retrieval
from modules.serving.export import ServingModule

RECALL_AT = (10, 100)
USERS_PER_CHUNK = 1024


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
  items, counts = np.unique(train[item_key].numpy(), return_counts=True)
  popular = items[np.argsort(-counts, kind='stable')].tolist()
  user_features = {f.name: validation[f.name] for f in model_inputs.side('user')}
  shares = {name: [] for at in RECALL_AT
            for name in (f'recall@{at}', f'most_popular_recall@{at}')}
  overlaps = {at: [] for at in RECALL_AT}
  # A chunk of users at a time: each user's list runs past the items they were seen
  # with, so one batch of every user would hold users x (the heaviest user's items)
  # ids, which grows faster than the rows (10 GiB at 5M rows).
  for start in range(0, len(users), USERS_PER_CHUNK):
    chunk = users[start:start + USERS_PER_CHUNK]
    rows = tf.constant([first_row[u] for u in chunk])
    tower = module.model.tower('user', {name: tf.gather(column, rows)
                                        for name, column in user_features.items()})
    depth = max(RECALL_AT) + max(len(seen.get(u, ())) for u in chunk)
    user_vectors, user_bias = retrieval.fold_user(tower)
    _, indices = retrieval.best_items(user_vectors, user_bias, module.catalogue_vectors,
                                      tf.constant(depth), module.catalogue_offsets)
    ranked = module.catalogue_rows[indices.numpy()].tolist()
    wanted = [positives[u] for u in chunk]
    known = [seen.get(u, set()) for u in chunk]
    for at in RECALL_AT:
      shares[f'recall@{at}'] += retrieval.recall_shares(ranked, wanted, known, at)
      shares[f'most_popular_recall@{at}'] += retrieval.recall_shares(
          [popular] * len(chunk), wanted, known, at)
      if index is not None:
        _, found = index.best_items(user_vectors, user_bias, tf.constant(at))
        overlaps[at] += retrieval.overlap_shares(found.numpy(), indices[:, :at].numpy())
  report = {}
  for at in RECALL_AT:
    for name in (f'recall@{at}', f'most_popular_recall@{at}'):
      report[name] = float(np.mean(shares[name]))
    if index is not None:
      report[f'scann_recall_of_exact@{at}'] = float(np.mean(overlaps[at]))
  return report


def catalogue_report(module: ServingModule, model_inputs: ModelInputs,
                     train_dir: str, validation_dir: str,
                     index: Optional[retrieval.ScannIndex] = None) -> Dict[str, Any]:
  """metrics.json's `catalogue`: its items, how many share a row with another, recall@K
  of the validation users' positive items (and of the most popular ones) and, with a
  ScaNN index, its settings."""
  report = {'items': int(module.catalogue_vectors.shape[0]),
            'items_sharing_a_row': module.items_sharing_a_row,
            'validation': retrieval_recall(module, model_inputs, train_dir, validation_dir,
                                           index)}
  if index is not None:
    report['scann_index'] = {'leaves': index.leaves, 'leaves_to_search': index.leaves_to_search,
                             'reorder': index.reorder}
  logging.info('Catalogue: %d items, %d of them sharing a table row with another; '
               'retrieval on validation: %s', report['items'],
               report['items_sharing_a_row'], report['validation'])
  return report
