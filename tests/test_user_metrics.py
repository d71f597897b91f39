"""What a user sees, on validation (modules/training/user_metrics.py): the AUC of their
own rows and recall@K of their ranked catalogue, checked against plain computations."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from contract.model_inputs import Feature, LabelSpec, ModelInputs
from modules.data import columnar
from modules.model import ranking
from modules.training import user_metrics


def test_auc_matches_scikit_learn_with_ties():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 500)
  scores = rng.integers(0, 20, 500).astype(float)  # many ties
  assert user_metrics.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
  with pytest.raises(ValueError, match='both labels'):
    user_metrics.auc(np.ones(3), np.arange(3.0))


def test_in_user_auc_is_the_mean_of_each_users_own_auc():
  users = np.array([1, 1, 1, 2, 2, 3, 3])
  labels = np.array([1, 0, 0, 0, 1, 1, 1])  # user 3 has one label only: left out
  scores = np.array([0.9, 0.1, 0.95, 0.2, 0.3, 0.0, 0.5])
  # User 1: the positive beats one of two negatives; user 2: ordered right.
  assert user_metrics.in_user_auc(users, labels, scores) == pytest.approx((0.5 + 1.0) / 2)


def _write(split_dir, rows):
  columns = sorted(rows)
  columnar.write_split([rows], columns, str(split_dir), block_rows=64, seed=0)
  return str(split_dir)


@pytest.mark.parametrize('at', [1, 3])
def test_recall_ranks_the_catalogue_as_top_k_without_the_users_training_items(tmp_path, at):
  rng = np.random.default_rng(1)
  features = tuple(Feature(name=name, column_type='int', kind='hash', vocab_size=20,
                           embedding_dim=4, belongs_to=side)
                   for name, side in (('userId', 'user'), ('movieId', 'item')))
  model_inputs = ModelInputs(features=features,
                             label=LabelSpec(column='rating', operator='>=', threshold=4))
  train = {'userId': rng.integers(0, 6, 100), 'movieId': rng.integers(0, 12, 100),
           'label': rng.integers(0, 2, 100)}
  validation = {'userId': rng.integers(0, 8, 40), 'movieId': rng.integers(0, 15, 40),
                'label': rng.integers(0, 2, 40)}
  metrics = user_metrics.UserMetrics(model_inputs, _write(tmp_path / 'train', train),
                                     _write(tmp_path / 'validation', validation))
  model = ranking.RankingModel(model_inputs, {'userId': 20, 'movieId': 20}, optimizer=None)
  ranking.build(model, model_inputs)
  tables = {v.name.split('/')[-1][:-len('_table:0')]: v.numpy()
            for v in model.embedding.variables if v.name.endswith('_table:0')}

  catalogue = np.unique(train['movieId'])  # validation-only items cannot be retrieved
  shares = []
  for user in np.unique(validation['userId'][validation['label'] == 1]):
    u, items = tables['userId'][user], tables['movieId'][catalogue]
    scores = items[:, :-1] @ u[:-1] + items[:, -1]
    seen = set(train['movieId'][train['userId'] == user].tolist())
    ranked = [i for i in catalogue[np.argsort(-scores, kind='stable')] if i not in seen][:at]
    wanted = set(validation['movieId'][(validation['userId'] == user)
                                       & (validation['label'] == 1)].tolist())
    shares.append(len(wanted & set(ranked)) / len(wanted))
  assert metrics.recall(model, at) == pytest.approx(np.mean(shares))

  scores = model({name: tf.constant(validation[name]) for name in ('userId', 'movieId')})
  assert metrics.in_user_auc(model) == pytest.approx(user_metrics.in_user_auc(
      validation['userId'], validation['label'], scores.numpy().ravel()))
