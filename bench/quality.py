"""Quality: the project's model versus tuned peers, judged on a test split nobody tuned on.

    .venv/bin/python bench/quality.py       # MovieLens 100K and latest-small, random and time splits
    .venv/bin/python bench/quality.py --datasets ml-100k-features   # side features vs ids only
    .venv/bin/python bench/quality.py --datasets ml-100k --splits time --tune-trials 0
    .venv/bin/python bench/quality.py --config configs/x.yaml --output-root DIR --no-run
    .venv/bin/python bench/quality.py --datasets ml-100k --splits random --tune-trials 0 \
        --variant ret03 --set training.losses.retrieval=0.3     # a config choice, side by side

For each dataset and split the pipeline runs on three splits: `random` hashes rows
8:1:1 into train, validation and test; `time` puts the latest 10% of ratings in test and
the 10% before them in validation. With `--tune-trials` (default 6) the pipeline's
Tuner chooses the model's learning rate, L2, embedding dim and epoch count on
validation (each trial up to `--tune-epochs` epochs, scored by its best epoch), and the
Trainer trains with its choice.
The peers (scikit-surprise) fit on the same train rows: SVD tuned by a grid on the same
validation rows, SVD++ and BaselineOnly (user and item biases) with their defaults.
Every method is judged by the same AUC (scikit-learn) of `rating >= 4` on the test rows;
the project model through its `serving_default` signature (the raw tf.Examples), with
the Evaluator's (TFMA) AUC on the same rows beside it; also on the test rows of cold
users (fewer than 5 training ratings). Beside the pooled AUC, the in-user AUC: the mean
over test users of the AUC of their own rows, how well a user's items are put in order.
Retrieval: recall@10 and @100 of each test user's positive items in the model's `top_k`
(the catalogue, items the user rated in train left out) against the most-rated training
items and implicit-feedback ALS (every training rating a pick; its grid chosen by
validation recall@10). Pooled AUC, in-user AUC and recall carry 95% intervals over test
users drawn again; the validation split's in-user AUC and recall are recorded too, the
figures a choice may be made on. `ml-100k-features` is ML-100K with its side
columns (configs/movielens_100k_features.yaml), run a second time with the ids alone on
the same rows; there a logistic regression on one-hot values fits the same label twice,
on the ids alone and with the side columns, and what the side columns add to each
model's test AUC is given with its 95% interval over users drawn again. MovieLens files
come from ../shared/data, converted on first use.
With `--config ... --no-run`, an existing run is read and judged on its own splits.
"""

import itertools
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top

from inspection import artifact_contents  # pylint: disable=g-import-not-at-top
from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top

CONFIGS = os.path.join(common.PROJECT_DIR, 'configs')
# name -> (config, the raw MovieLens file under ../shared/data it is converted from).
DATASETS = {
    'ml-100k': (os.path.join(CONFIGS, 'movielens_100k.yaml'), os.path.join('ml-100k', 'u.data')),
    'latest-small': (os.path.join(CONFIGS, 'movielens_latest_small.yaml'),
                     os.path.join('ml-latest-small', 'ratings.csv')),
    # Converted with --side-columns; also run ids-only on the same rows (IDS_ONLY_OF).
    'ml-100k-features': (os.path.join(CONFIGS, 'movielens_100k_features.yaml'),
                         os.path.join('ml-100k', 'u.data')),
}
# A features dataset -> the ids-only config it extends: run again on the features
# dataset's input, columns and schema (so every split holds the same rows), its
# features only the ids.
IDS_ONLY_OF = {'ml-100k-features': os.path.join(CONFIGS, 'movielens_100k.yaml')}
IDS_ONLY = 'project model, ids only'
# Test rows whose user has fewer training ratings than this are a cold user's.
COLD_USER_RATINGS = 5
SPLITS = {
    # `eval: null` drops the dataset config's eval (configs merge key by key).
    'random': {'split': {'train': 8, 'eval': None, 'validation': 1, 'test': 1}},
    'time': {'split': None,
             'split_by_time': {'column': 'timestamp', 'validation': 0.1, 'test': 0.1}},
}
# The Tuner's search, around the shipped MovieLens options. Trials run up to 50 epochs:
# at 30 (and L2 0.01/0.03/0.1) most searches' best trial was best at its last epoch;
# at 50, ML-100K random tests 0.786 against 0.770 (bench/README.md 4).
TUNING = {'learning_rate': [0.5, 1.0, 2.0], 'l2_regularization': [0.0001, 0.001, 0.01],
          'embedding_dim': [16, 32, 64]}
# SVD's grid (scikit-surprise's names), each point fitted on train, scored on validation.
SVD_GRID = {'n_factors': [20, 50, 100], 'reg_all': [0.02, 0.05, 0.1],
            'lr_all': [0.005, 0.01]}
SMOKE_SVD_GRID = {'n_factors': [10], 'reg_all': [0.02, 0.1], 'lr_all': [0.005]}
MODEL = 'project model'
ALS = 'implicit ALS (tuned on validation)'
LOGISTIC_IDS = 'logistic regression, ids'
LOGISTIC_SIDE = 'logistic regression, ids + side columns'


def _ensure_input(config: config_lib.RunConfig, raw_name: str) -> None:
  try:
    config_lib.check_inputs_exist(config)
    return
  except config_lib.ConfigError:
    pass
  raw = os.path.join(common.SHARED_DATA_DIR, raw_name)
  if not os.path.exists(raw):
    raise SystemExit(f'{config.paths.input} matches nothing and there is no {raw_name} '
                     f'under {common.SHARED_DATA_DIR}: download it with data/movielens.py')
  from data import movielens  # pylint: disable=g-import-not-at-top
  movielens.convert(raw, config.paths.input.replace('*', 'ratings'),
                    side_columns=len(config.dataset.columns) > 4)


# user ids, item ids, ratings, and the serialized raw tf.Examples (every column).
Rows = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rows(examples_uri: str, split: str) -> Rows:
  """One split of CsvExampleGen's output."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*.gz')))
  spec = {'userId': tf.io.FixedLenFeature([], tf.int64),
          'movieId': tf.io.FixedLenFeature([], tf.int64),
          'rating': tf.io.FixedLenFeature([], tf.float32)}
  users, items, ratings, records = [], [], [], []
  for batch in tf.data.TFRecordDataset(files, compression_type='GZIP').batch(65_536):
    parsed = tf.io.parse_example(batch, spec)
    users.append(parsed['userId'].numpy())
    items.append(parsed['movieId'].numpy())
    ratings.append(parsed['rating'].numpy())
    records.append(batch.numpy())
  return (np.concatenate(users), np.concatenate(items), np.concatenate(ratings),
          np.concatenate(records))


def _surprise_scores(algorithm, train: Rows, *scored: Rows) -> List[np.ndarray]:
  """Fits on train; the predicted ratings of each of `scored`."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import surprise  # pylint: disable=g-import-not-at-top
  frame = pd.DataFrame({'user': train[0], 'item': train[1], 'rating': train[2]})
  data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(0.5, 5.0)))
  algorithm.fit(data.build_full_trainset())
  return [np.array([algorithm.predict(u, i).est for u, i in zip(rows[0], rows[1])])
          for rows in scored]


def _model_scores(model_dir: str, *scored: Rows) -> List[np.ndarray]:
  """The SavedModel's probabilities of the raw tf.Examples (`serving_default`: every
  feature it has, side columns included)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  serve = tf.saved_model.load(model_dir).signatures['serving_default']
  return [np.concatenate([serve(examples=tf.constant(rows[3][i:i + 8192]))[
      'probability'].numpy().ravel() for i in range(0, len(rows[3]), 8192)])
          for rows in scored]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  return float(roc_auc_score(labels, scores)) if np.ptp(scores) > 0 else 0.5


def _tuned_svd(train: Rows, validation: Rows, test: Rows, labels: Tuple[np.ndarray, np.ndarray],
               grid: Dict[str, List[Any]]) -> Tuple[Dict[str, Any], float, np.ndarray]:
  """SVD with the grid point of best validation AUC: (its parameters, that AUC, its
  test scores)."""
  import surprise  # pylint: disable=g-import-not-at-top
  best = None
  for values in itertools.product(*grid.values()):
    params = dict(zip(grid, values))
    on_validation, on_test = _surprise_scores(surprise.SVD(random_state=1, **params),
                                              train, validation, test)
    auc = _auc(labels[0], on_validation)
    if best is None or auc > best[1]:
      best = (params, auc, on_test)
  return best


RECALL_AT = (10, 100)


def _raw_values(config: config_lib.RunConfig, records: np.ndarray,
                names: List[str]) -> Dict[str, np.ndarray]:
  """The raw values of these columns of serialized examples, one a row ('' or NaN for
  a missing optional value), as top_k takes them."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  types = {'int': tf.int64, 'float': tf.float32, 'string': tf.string}
  spec = {name: tf.io.VarLenFeature(types[config.dataset.columns[name]]) for name in names}
  parsed = tf.io.parse_example(tf.constant(records), spec)
  return {name: tf.sparse.to_dense(tf.sparse.reset_shape(values, [len(records), 1]),
                                   default_value={tf.string: '', tf.float32: float('nan')}
                                   .get(values.dtype, 0)).numpy()[:, 0]
          for name, values in parsed.items()}


# Implicit-feedback ALS (every training rating a pick, confidence 1 + alpha x picks),
# the grid each point of which is fitted on train and scored by validation recall@10.
ALS_GRID = {'factors': [64], 'regularization': [0.1, 1.0, 10.0], 'alpha': [1.0, 10.0, 40.0]}
SMOKE_ALS_GRID = {'factors': [16], 'regularization': [1.0], 'alpha': [10.0]}
ALS_ITERATIONS = 15


def _als_half_step(picks, fixed: np.ndarray, regularization: float, alpha: float
                   ) -> np.ndarray:
  """One side's vectors given the other's (Hu, Koren and Volinsky 2008): for each row
  of `picks` (CSR counts), the least squares fit of preference 1 on its picks and 0
  elsewhere, weighted by confidence 1 + alpha x count."""
  gram = fixed.T @ fixed
  eye = regularization * np.eye(fixed.shape[1])
  solved = np.zeros((picks.shape[0], fixed.shape[1]))
  for row in range(picks.shape[0]):
    span = slice(picks.indptr[row], picks.indptr[row + 1])
    vectors, confidence = fixed[picks.indices[span]], 1 + alpha * picks.data[span]
    solved[row] = np.linalg.solve(gram + (vectors.T * (confidence - 1)) @ vectors + eye,
                                  vectors.T @ confidence)
  return solved


def _implicit_als(train: Rows, factors: int, regularization: float, alpha: float):
  """(user id -> row, item ids, user vectors, item vectors) of ALS on the training picks."""
  from scipy import sparse  # pylint: disable=g-import-not-at-top
  user_ids, user_rows = np.unique(train[0], return_inverse=True)
  item_ids, item_rows = np.unique(train[1], return_inverse=True)
  picks = sparse.csr_matrix((np.ones(len(user_rows)), (user_rows, item_rows)),
                            shape=(len(user_ids), len(item_ids)))
  picks.sum_duplicates()
  draws = np.random.default_rng(1)
  users = draws.normal(0, 0.01, (len(user_ids), factors))
  items = draws.normal(0, 0.01, (len(item_ids), factors))
  by_item = picks.T.tocsr()
  for _ in range(ALS_ITERATIONS):
    users = _als_half_step(picks, items, regularization, alpha)
    items = _als_half_step(by_item, users, regularization, alpha)
  return dict(zip(user_ids.tolist(), range(len(user_ids)))), item_ids, users, items


def _als_ranked(fitted, users: List[int], depth: int) -> List[List[int]]:
  """Each user's `depth` best items by ALS (a user without training picks: none)."""
  rows, item_ids, user_vectors, item_vectors = fitted
  ranked = []
  for user in users:
    if user not in rows:
      ranked.append([])
      continue
    scores = item_vectors @ user_vectors[rows[user]]
    best = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
    ranked.append(item_ids[best[np.argsort(-scores[best], kind='stable')]].tolist())
  return ranked


class _Retrieval:
  """Each user's positive items of one split (rated >= threshold) and what they rated in
  train, for recall@K of ranked lists (items rated in train left out)."""

  def __init__(self, train: Rows, scored: Rows, threshold: float):
    self.seen: Dict[int, set] = {}
    for user, item in zip(train[0].tolist(), train[1].tolist()):
      self.seen.setdefault(user, set()).add(item)
    positives: Dict[int, set] = {}
    self.first_row: Dict[int, int] = {}
    for row, (user, item, rating) in enumerate(zip(*(c.tolist() for c in scored[:3]))):
      self.first_row.setdefault(user, row)
      if rating >= threshold:
        positives.setdefault(user, set()).add(item)
    self.users = sorted(positives)
    self.wanted = [positives[u] for u in self.users]
    self.known = [self.seen.get(u, set()) for u in self.users]
    self.depth = max(RECALL_AT) + max((len(k) for k in self.known), default=0)

  def shares(self, ranked: List[List[int]]) -> Dict[int, np.ndarray]:
    """{K: each user's recall@K}."""
    from modules.serving import retrieval  # pylint: disable=g-import-not-at-top
    return {at: np.array(retrieval.recall_shares(ranked, self.wanted, self.known, at))
            for at in RECALL_AT}


def _model_ranked(model_dir: str, config: config_lib.RunConfig, scored: Rows,
                  split: _Retrieval) -> List[List[int]]:
  """Each user's items by the SavedModel's top_k, from the user's side columns."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = _raw_values(config, scored[3][[split.first_row[u] for u in split.users]],
                       [f.name for f in config.model_inputs.side('user')])
  top_k = tf.saved_model.load(model_dir).signatures['top_k']
  return np.concatenate([top_k(k=tf.constant(split.depth, tf.int32), **{
      name: tf.constant(v[i:i + 256]) for name, v in values.items()})['item_ids'].numpy()
                         for i in range(0, len(split.users), 256)]).tolist()


def _recall(model_dir: str, config: config_lib.RunConfig, train: Rows, validation: Rows,
            test: Rows, threshold: float, smoke: bool) -> Dict[str, Any]:
  """Recall@K of each test user's positive items among the model's top_k, the most-rated
  training items, and implicit ALS (its grid point chosen by validation recall@10):
  {'test': {method: {K: per-user shares}}, 'validation': the same, 'als_params': ...}."""
  items, counts = np.unique(train[1], return_counts=True)
  popular = items[np.argsort(-counts, kind='stable')].tolist()
  splits = {'validation': (validation, _Retrieval(train, validation, threshold)),
            'test': (test, _Retrieval(train, test, threshold))}
  best = None
  grid = SMOKE_ALS_GRID if smoke else ALS_GRID
  for values in itertools.product(*grid.values()):
    params = dict(zip(grid, values))
    fitted = _implicit_als(train, **params)
    _, on_validation = splits['validation']
    shares = on_validation.shares(_als_ranked(fitted, on_validation.users,
                                              on_validation.depth))
    if best is None or shares[10].mean() > best[1]:
      best = (params, shares[10].mean(), fitted)
  report: Dict[str, Any] = {'als_params': best[0]}
  for name, (rows, split) in splits.items():
    report[name] = {
        MODEL: split.shares(_model_ranked(model_dir, config, rows, split)),
        'most popular': split.shares([popular] * len(split.users)),
        ALS: split.shares(_als_ranked(best[2], split.users, split.depth))}
  return report


def _cold_rows(train: Rows, test: Rows) -> np.ndarray:
  """Which test rows are a cold user's (fewer than COLD_USER_RATINGS training ratings)."""
  users, counts = np.unique(train[0], return_counts=True)
  ratings = dict(zip(users.tolist(), counts.tolist()))
  return np.array([ratings.get(u, 0) < COLD_USER_RATINGS for u in test[0].tolist()], bool)


def _user_aucs(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """The AUC of each user's own rows (users with both labels)."""
  return np.array([_auc(labels[rows], scores[rows]) for rows in _rows_by_user(users).values()
                   if 0 < labels[rows].sum() < len(rows)])


def _in_user_auc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray
                 ) -> Optional[float]:
  """The mean over users of the AUC of their own rows (users with both labels): how
  well one user's items are put in order, which is what a ranker shows them. A pooled
  AUC also rewards telling users apart by how many items they like."""
  aucs = _user_aucs(users, labels, scores)
  return float(np.mean(aucs)) if len(aucs) else None


def _mean_interval(values: np.ndarray) -> List[float]:
  """95% interval of a mean over users, the users drawn again with replacement."""
  if not len(values):
    return [float('nan'), float('nan')]
  draws = np.random.default_rng(1).integers(len(values), size=(BOOTSTRAP_DRAWS, len(values)))
  return [float(v) for v in np.percentile(values[draws].mean(axis=1), [2.5, 97.5])]


def _pooled_interval(users: np.ndarray, labels: np.ndarray, scores: np.ndarray
                     ) -> List[float]:
  """95% interval of the pooled AUC, the test users (all their rows) drawn again."""
  aucs = [_auc(labels[rows], scores[rows]) for rows in _users_drawn_again(users, labels)]
  return [float(v) for v in np.percentile(aucs, [2.5, 97.5])]


def _users_drawn_again(users: np.ndarray, labels: np.ndarray) -> Iterator[np.ndarray]:
  """The rows of BOOTSTRAP_DRAWS draws of the users with replacement (each user with
  all their rows), the draws holding both labels."""
  by_user = list(_rows_by_user(users).values())
  draws = np.random.default_rng(1)
  for _ in range(BOOTSTRAP_DRAWS):
    rows = np.concatenate([by_user[i] for i in draws.integers(len(by_user),
                                                              size=len(by_user))])
    if 0 < labels[rows].sum() < len(rows):
      yield rows


def _rows_by_user(users: np.ndarray) -> Dict[int, np.ndarray]:
  """{user: the indices of their rows}."""
  order = np.argsort(users, kind='stable')
  keys, starts = np.unique(users[order], return_index=True)
  return dict(zip(keys.tolist(), np.split(order, starts[1:])))


# Users resampled (with replacement) for the interval of a difference of AUCs.
BOOTSTRAP_DRAWS = 500


def _gain(users: np.ndarray, labels: np.ndarray, scores: np.ndarray,
          baseline: np.ndarray) -> Dict[str, float]:
  """AUC(scores) - AUC(baseline) on the same rows, with its 95% interval over users
  drawn again with replacement: the test rows are the ratings of a few hundred users
  (ML-100K's time split: 98 new users), so which users they are moves an AUC more
  than many differences between two models."""
  gains = [_auc(labels[rows], scores[rows]) - _auc(labels[rows], baseline[rows])
           for rows in _users_drawn_again(users, labels)]
  low, high = np.percentile(gains, [2.5, 97.5])
  return {'gain': _auc(labels, scores) - _auc(labels, baseline),
          'low': float(low), 'high': float(high)}


# Logistic regression's inverse L2 strengths, chosen on validation AUC.
LOGISTIC_C = (0.1, 0.3, 1.0)


def _column_tokens(config: config_lib.RunConfig, rows: Rows, names: List[str]
                   ) -> Dict[str, List[List[str]]]:
  """{column: each row's values as `column=value` tokens} (a multi_hot column's every
  value its own token; a missing value, its column's empty token)."""
  values = _raw_values(config, rows[3], names)
  delimiters = {f.name: f.delimiter for f in config.model_inputs.features
                if f.kind == 'multi_hot'}
  columns = {}
  for name in names:
    column = values[name].tolist()
    if name in delimiters:
      columns[name] = [[f'{name}={v}' for v in value.decode().split(delimiters[name])]
                       for value in column]
    else:
      columns[name] = [[f'{name}={v.decode() if isinstance(v, bytes) else v}']
                       for v in column]
  return columns


def _row_tokens(columns: Dict[str, List[List[str]]], names: List[str]) -> List[List[str]]:
  """Each row's tokens of these columns, together."""
  return [sum(row, []) for row in zip(*(columns[name] for name in names))]


def _logistic_scores(train: List[List[str]], validation: List[List[str]],
                     test: List[List[str]], labels: Tuple[np.ndarray, np.ndarray, np.ndarray]
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """Logistic regression on one-hot tokens (a linear model: a weight per value), the
  L2 chosen on validation AUC: (validation scores, test scores)."""
  from scipy import sparse  # pylint: disable=g-import-not-at-top
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  vocabulary: Dict[str, int] = {}
  for row in train:
    for token in row:
      vocabulary.setdefault(token, len(vocabulary))

  def one_hot(token_rows):
    columns = [[vocabulary[t] for t in row if t in vocabulary] for row in token_rows]
    indptr = np.cumsum([0] + [len(c) for c in columns])
    return sparse.csr_matrix((np.ones(indptr[-1]), np.concatenate(columns).astype(int),
                              indptr), shape=(len(token_rows), len(vocabulary)))

  matrices = [one_hot(rows) for rows in (train, validation, test)]
  best = None
  for c in LOGISTIC_C:
    fitted = LogisticRegression(C=c, max_iter=3000).fit(matrices[0], labels[0])
    scores = [fitted.decision_function(m) for m in matrices[1:]]
    auc = _auc(labels[1], scores[0])
    if best is None or auc > best[0]:
      best = (auc, scores)
  return best[1]


def evaluate(config: config_lib.RunConfig, store, pipeline_run, smoke: bool,
             ids_only_run=None) -> Dict[str, Any]:
  """Every method's AUC on the test rows (and validation rows) of one pipeline run, also
  on the test rows of cold users; `ids_only_run` (store, run): the ids-only model run
  on the same rows, scored beside it."""
  import surprise  # pylint: disable=g-import-not-at-top
  label = config.dataset.label.spec
  if label.column != 'rating' or label.operator != '>=':
    raise SystemExit(f'{config.source}: the peers predict ratings; the label must be '
                     'rating >= threshold')
  examples = store.output(pipeline_run, 'CsvExampleGen', 'examples')
  train, validation, test = (_rows(examples.uri, split) for split in (
      'train', config.dataset.validation_split, config.dataset.test_split))
  labels = (validation[2] >= label.threshold, test[2] >= label.threshold)

  model = store.output(pipeline_run, 'Trainer', 'model')
  scores = {MODEL: _model_scores(os.path.join(model.uri, 'Format-Serving'), validation, test)}
  if ids_only_run is not None:
    ids_store, ids_run = ids_only_run
    ids_examples = ids_store.output(ids_run, 'CsvExampleGen', 'examples')
    if not np.array_equal(np.sort(_rows(ids_examples.uri, config.dataset.test_split)[3]),
                          np.sort(test[3])):
      raise SystemExit('the ids-only run\'s test rows differ from the features run\'s')
    ids_model = ids_store.output(ids_run, 'Trainer', 'model')
    scores[IDS_ONLY] = _model_scores(os.path.join(ids_model.uri, 'Format-Serving'),
                                     validation, test)
  svd_params, _, svd_test = _tuned_svd(train, validation, test, labels,
                                       SMOKE_SVD_GRID if smoke else SVD_GRID)
  scores['surprise SVD (tuned on validation)'] = [None, svd_test]
  for name, algorithm in (('surprise SVD (defaults)', surprise.SVD(random_state=1)),
                          ('surprise SVD++ (defaults)', surprise.SVDpp(random_state=1)),
                          ('surprise BaselineOnly (biases)', surprise.BaselineOnly(
                              verbose=False))):
    scores[name] = _surprise_scores(algorithm, train, validation, test)
  ids = [config.model_inputs.side(side)[0].name for side in ('user', 'item')]
  side_columns = [f.name for f in config.model_inputs.features if f.name not in ids]
  if side_columns:
    # What the side columns are worth to a linear model fitting the same label.
    train_labels = train[2] >= label.threshold
    tokens = [_column_tokens(config, rows, ids + side_columns)
              for rows in (train, validation, test)]
    for name, columns in ((LOGISTIC_IDS, ids), (LOGISTIC_SIDE, ids + side_columns)):
      scores[name] = _logistic_scores(*(_row_tokens(split, columns) for split in tokens),
                                      (train_labels, *labels))
  scores['global mean (no signal)'] = [np.zeros(len(labels[0])), np.zeros(len(labels[1]))]

  recall = _recall(os.path.join(model.uri, 'Format-Serving'), config, train, validation,
                   test, label.threshold, smoke)
  retrieval, retrieval_interval, validation_retrieval = {}, {}, {}
  for method, by_at in recall['test'].items():
    for at, shares in by_at.items():
      retrieval[f'{method} recall@{at}'] = float(shares.mean())
      retrieval_interval[f'{method} recall@{at}'] = _mean_interval(shares)
      validation_retrieval[f'{method} recall@{at}'] = float(
          recall['validation'][method][at].mean())
  evaluation = store.output(pipeline_run, 'Evaluator', 'evaluation')
  best_hyperparameters = store.output(pipeline_run, 'Tuner', 'best_hyperparameters')
  tuned = None
  if best_hyperparameters is not None:
    import json  # pylint: disable=g-import-not-at-top
    with open(os.path.join(best_hyperparameters.uri, 'best_hyperparameters.txt')) as f:
      tuned = json.load(f)['values']
  test_auc = {name: _auc(labels[1], s[1]) for name, s in scores.items()}
  cold = _cold_rows(train, test)
  cold_auc = ({name: _auc(labels[1][cold], s[1][cold]) for name, s in scores.items()}
              if len(set(labels[1][cold].tolist())) == 2 else None)
  users = test[0]
  in_user_auc = {name: _in_user_auc(users, labels[1], s[1]) for name, s in scores.items()}
  in_user_interval = {name: _mean_interval(_user_aucs(users, labels[1], s[1]))
                      for name, s in scores.items()}
  pooled_interval = {name: _pooled_interval(users, labels[1], s[1])
                     for name, s in scores.items()}
  cold_in_user_auc = {name: _in_user_auc(users[cold], labels[1][cold], s[1][cold])
                      for name, s in scores.items()} if cold_auc else None
  # What the side columns add, each model against itself on the ids alone.
  pairs = [(MODEL, IDS_ONLY), (LOGISTIC_SIDE, LOGISTIC_IDS)]
  side_gain = {f'{with_side} - {alone}': {
      'test': _gain(users, labels[1], scores[with_side][1], scores[alone][1]),
      'cold users': _gain(users[cold], labels[1][cold], scores[with_side][1][cold],
                          scores[alone][1][cold]) if cold_auc else None}
               for with_side, alone in pairs if with_side in scores and alone in scores}
  peers = [name for name in test_auc
           if name not in (MODEL, IDS_ONLY, 'global mean (no signal)')]
  best_peer = max(peers, key=test_auc.get)
  return {
      'pipeline': config.pipeline_name,
      'train_rows': int(len(train[0])), 'validation_rows': int(len(validation[0])),
      'test_rows': int(len(test[0])), 'positive_share': float(labels[1].mean()),
      'test_auc': test_auc,
      'test_auc_interval': pooled_interval,
      'retrieval': retrieval,
      'retrieval_interval': retrieval_interval,
      'als_params': recall['als_params'],
      'test_users': int(len(np.unique(users))),
      'in_user_test_auc': in_user_auc,
      'in_user_test_auc_interval': in_user_interval,
      'cold_user_test_rows': int(cold.sum()),
      'cold_users': int(len(np.unique(users[cold]))),
      'cold_user_test_auc': cold_auc,
      'cold_user_in_user_auc': cold_in_user_auc,
      'side_feature_gain': side_gain,
      'validation_auc': {name: _auc(labels[0], s[0]) for name, s in scores.items()
                         if s[0] is not None},
      'validation_in_user_auc': {name: _in_user_auc(validation[0], labels[0], s[0])
                                 for name, s in scores.items() if s[0] is not None},
      'validation_retrieval': validation_retrieval,
      'tfma_auc': artifact_contents.evaluation(evaluation.uri)['slices'][0]['metrics'].get(
          'auc'),
      'svd_tuned_params': svd_params,
      'model_tuned_values': tuned,
      'best_peer': best_peer,
      'model_minus_best_peer': test_auc[MODEL] - test_auc[best_peer],
  }


def _overrides(split: str, tune_trials: int, tune_epochs: int, settings: List[str]
               ) -> Dict[str, Any]:
  """The split's and the search's keys, then `--set` settings on top."""
  from pipeline.config import files  # pylint: disable=g-import-not-at-top
  overrides: Dict[str, Any] = {'dataset': dict(SPLITS[split])}
  if tune_trials:
    overrides['tuning'] = {'max_trials': tune_trials, 'epochs': tune_epochs, **TUNING}
  return files.apply_overrides(overrides, settings, '--set')


def _shown(auc) -> str:
  return '' if auc is None else f'{auc:.4f}'


def _with_interval(value, interval) -> str:
  return '' if value is None else f'{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]'


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--datasets', nargs='+', choices=list(DATASETS), default=list(DATASETS))
  parser.add_argument('--splits', nargs='+', choices=list(SPLITS), default=list(SPLITS))
  parser.add_argument('--tune-trials', type=int, default=6,
                      help='Tuner trials for the project model (0: the config\'s options)')
  parser.add_argument('--tune-epochs', type=int, default=50,
                      help='the most epochs a trial trains (its best epoch counts)')
  parser.add_argument('--name', default='quality',
                      help='the results file: <results-dir>/<name>.json')
  parser.add_argument('--config', help='judge an existing run of this config instead '
                      '(with --output-root and --no-run)')
  parser.add_argument('--output-root', help='the existing run\'s output root')
  parser.add_argument('--no-run', action='store_true',
                      help='read the latest run under --output-root instead of running')
  parser.add_argument('--variant', default='',
                      help='a name for the --set settings: runs go to their own folders')
  config_lib.add_override_argument(parser)
  args = parser.parse_args(argv)
  from inspection import run_store  # pylint: disable=g-import-not-at-top

  results = []
  if args.config:
    if not (args.no_run and args.output_root):
      parser.error('--config needs --output-root and --no-run')
    config = config_lib.load_config(args.config)
    store = run_store.RunStore(run_store.existing_sqlite_store(
        os.path.join(args.output_root, 'metadata.sqlite')), config.pipeline_name)
    results.append({'dataset': config.pipeline_name, 'split': 'as configured',
                    **evaluate(config, store, store.run(), args.smoke)})
  else:
    for dataset, split in itertools.product(args.datasets, args.splits):
      config_path, raw_name = DATASETS[dataset]
      _ensure_input(config_lib.load_config(config_path), raw_name)
      output_root = os.path.join(common.WORK_DIR, 'quality', '-'.join(
          filter(None, (dataset, split, args.variant))))
      overrides = _overrides(split, args.tune_trials, args.tune_epochs, args.overrides)
      outcome = common.run_pipeline(config_path, output_root, overrides)
      config = config_lib.load_config(os.path.join(output_root, 'bench_config.yaml'))
      ids_only_run = None
      if dataset in IDS_ONLY_OF:
        # The same input, columns and schema: the same serialized rows, the same splits.
        same_rows = {'dataset': {**overrides['dataset'],
                                 'columns': dict(config.dataset.columns)},
                     'paths': {'input': config.paths.input,
                               'schema': config.paths.schema_file}}
        ids_outcome = common.run_pipeline(
            IDS_ONLY_OF[dataset], output_root + '-ids-only', {**overrides, **same_rows})
        ids_only_run = (ids_outcome['store'], ids_outcome['run'])
      results.append({'dataset': dataset, 'split': split, 'pipeline_seconds':
                      outcome['wall_seconds'],
                      **evaluate(config, outcome['store'], outcome['run'], args.smoke,
                                 ids_only_run)})

  methods = list(dict.fromkeys(m for r in results for m in r['test_auc']))
  print(common.text_table(
      ['dataset', 'split', 'test rows'] + methods + ['TFMA AUC', 'model - best peer'],
      [[r['dataset'], r['split'], f'{r["test_rows"]:,}']
       + [_shown(r['test_auc'].get(m)) for m in methods]
       + [f'{r["tfma_auc"]:.4f}', f'{r["model_minus_best_peer"]:+.4f}'] for r in results]))
  print(f'\nCold users (fewer than {COLD_USER_RATINGS} training ratings), test AUC:')
  print(common.text_table(
      ['dataset', 'split', 'cold test rows'] + methods,
      [[r['dataset'], r['split'], f'{r["cold_user_test_rows"]:,}']
       + [_shown((r['cold_user_test_auc'] or {}).get(m)) for m in methods] for r in results]))
  print('\nTest AUC pooled and in-user (the mean over test users of the AUC of their own '
        f'rows), each with its 95% interval over users ({BOOTSTRAP_DRAWS} draws); cold '
        'users\' in-user AUC:')
  print(common.text_table(
      ['dataset', 'split', 'users', 'method', 'pooled AUC', 'in-user AUC',
       f'cold users ({"/".join(str(r["cold_users"]) for r in results)})'],
      [[r['dataset'], r['split'], f'{r["test_users"]:,}', m,
        _with_interval(r['test_auc'][m], r['test_auc_interval'][m]),
        _with_interval(r['in_user_test_auc'][m], r['in_user_test_auc_interval'][m]),
        _shown((r['cold_user_in_user_auc'] or {}).get(m))]
       for r in results for m in methods if m in r['in_user_test_auc']]))
  gains = [(r, pair, rows) for r in results for pair, by_rows in r['side_feature_gain'].items()
           for rows in by_rows.items() if rows[1] is not None]
  if gains:
    print(f'\nWhat the side columns add to test AUC, with its 95% interval over users '
          f'({BOOTSTRAP_DRAWS} draws):')
    print(common.text_table(
        ['dataset', 'split', 'models', 'rows', 'gain', '95% interval'],
        [[r['dataset'], r['split'], pair, name, f'{g["gain"]:+.4f}',
          f'{g["low"]:+.4f} to {g["high"]:+.4f}'] for r, pair, (name, g) in gains]))
  print(f'\nRetrieval: recall of each test user\'s positive items in the top K (items '
        'rated in train left out):')
  print(common.text_table(
      ['dataset', 'split', 'method'] + [f'recall@{at}' for at in RECALL_AT],
      [[r['dataset'], r['split'], m] + [
          _with_interval(r['retrieval'][f'{m} recall@{at}'],
                         r['retrieval_interval'][f'{m} recall@{at}']) for at in RECALL_AT]
       for r in results for m in (MODEL, 'most popular', ALS)]))
  for r in results:
    print(f'{r["dataset"]} {r["split"]}: SVD tuned {r["svd_tuned_params"]}; ALS tuned '
          f'{r["als_params"]}; model tuned {r["model_tuned_values"]}')
  path = common.write_result(args.results_dir, args.name, args.smoke,
                             [os.path.basename(sys.executable), *sys.argv], results)
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
