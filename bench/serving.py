"""Serving: latency and throughput of the pushed SavedModel on serialized tf.Examples.

    .venv/bin/python local_runner.py && .venv/bin/python bench/serving.py
    .venv/bin/python bench/serving.py --model outputs/movielens-1m/serving/<timestamp>

`serving_default` (serialized raw tf.Examples: parsing, the transform graph, lookups,
the dot product) is what TF Serving and Vertex AI endpoints call; `serve_ids` (raw id
tensors, no parsing) is measured beside it as the baseline, on the same ids, so the
difference is what parsing and the request format cost. Batches of 1, 100 and 10,000.

Top-K retrieval, k=10, for 1 and 100 users a request: the model's `top_k` (raw user
values in, exact search of its catalogue), and the search alone, exact (one matrix
product and tf.math.top_k) against the ScaNN index the pipeline builds with
`retrieval.index: scann` (modules/serving/retrieval.py ScannIndex, default options), over the
model's catalogue and a synthetic one of 1,000,000 items drawn from a Gaussian with the
mean and covariance of the model's item vectors. The queries are the vectors of users
drawn from the model's own tables; recall is the share of the exact top 10 the index
finds, over 1,000 such users.
"""

import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top
from contract.options import RetrievalOptions  # pylint: disable=g-import-not-at-top
from modules.serving import retrieval  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

DEFAULT_SERVING_DIR = os.path.join(common.PROJECT_DIR, 'outputs', 'movielens-sample', 'serving')
BATCH_SIZES = (1, 100, 10_000)
TOP_K_BATCH_SIZES = (1, 100)
SYNTHETIC_ITEMS = 1_000_000
RECALL_USERS = 1000


def latest_model(serving_dir: str) -> str:
  versions = sorted(glob.glob(os.path.join(serving_dir, '[0-9]*')))
  if not versions:
    raise SystemExit(f'no pushed model under {serving_dir}: run `.venv/bin/python '
                     'local_runner.py` first, or pass --model')
  return versions[-1]


def _examples(users: np.ndarray, items: np.ndarray) -> tf.Tensor:
  return tf.constant([tf.train.Example(features=tf.train.Features(feature={
      'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(u)])),
      'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(i)])),
  })).SerializeToString() for u, i in zip(users, items)])


def _time_calls(call, requests: int) -> list:
  seconds = []
  for _ in range(requests):
    start = time.perf_counter()
    call()
    seconds.append(time.perf_counter() - start)
  return seconds


def _measure(name: str, batch_size: int, call, budget: float) -> dict:
  call()  # traces
  start = time.perf_counter()
  call()
  one = max(time.perf_counter() - start, 1e-4)
  seconds = _time_calls(call, requests=max(5, min(2000, int(budget / one))))
  return {'signature': name, 'batch_size': batch_size, 'requests': len(seconds),
          'p50_ms': 1000 * common.percentile(seconds, 50),
          'p99_ms': 1000 * common.percentile(seconds, 99),
          'examples_per_second': batch_size * len(seconds) / sum(seconds)}


def _user_values(top_k, users: int, rng: np.random.Generator):
  """top_k's user-side inputs for `users` random user ids (any other user feature sent
  as missing)."""
  return {name: (tf.constant(rng.integers(1, 10_000, users), spec.dtype)
                 if spec.dtype.is_integer else
                 tf.fill([users], '' if spec.dtype == tf.string else float('nan')))
          for name, spec in top_k.structured_input_signature[1].items() if name != 'k'}


def _catalogues(model, rng: np.random.Generator, smoke: bool) -> dict:
  """{name: item vectors}: the model's catalogue, and a synthetic one as wide and as
  spread as it is."""
  own = model.catalogue_vectors.numpy()
  items = SYNTHETIC_ITEMS // 100 if smoke else SYNTHETIC_ITEMS
  synthetic = rng.multivariate_normal(own.mean(axis=0), np.cov(own, rowvar=False), items)
  return {f'its catalogue, {len(own):,} items': own,
          f'{items:,} synthetic items': synthetic.astype(np.float32)}


def _retrieval(model, rng: np.random.Generator, smoke: bool, budget: float):
  """Measurements of top-K retrieval (see the module's docstring), and per catalogue
  the index's build time and its recall of the exact top 10."""
  top_k = model.signatures['top_k']
  user_embedding = model.signatures['user_embedding']
  k = tf.constant(10)
  exact_search = tf.function(retrieval.best_items)
  measurements, indexes = [], {}
  for catalogue_name, vectors in _catalogues(model, rng, smoke).items():
    start = time.perf_counter()
    index = retrieval.ScannIndex(vectors, tf.range(len(vectors)), RetrievalOptions(index='scann'))
    build_seconds = time.perf_counter() - start
    scann_search = tf.function(index.best_items)
    catalogue = tf.constant(vectors)
    queries = user_embedding(**_user_values(top_k, RECALL_USERS, rng))
    _, exact = exact_search(queries['embedding'], queries['bias'], catalogue, k)
    _, found = scann_search(queries['embedding'], queries['bias'], k)
    indexes[catalogue_name] = {
        'build_seconds': build_seconds, 'leaves': index.leaves,
        'leaves_to_search': index.leaves_to_search,
        'recall_of_exact@10': retrieval.overlap(found.numpy(), exact.numpy())}
    for batch_size in TOP_K_BATCH_SIZES:
      users = _user_values(top_k, batch_size, rng)
      embedded = user_embedding(**users)
      calls = {f'exact search, k=10 ({catalogue_name})':
                   lambda: exact_search(embedded['embedding'], embedded['bias'], catalogue, k),
               f'scann search, k=10 ({catalogue_name})':
                   lambda: scann_search(embedded['embedding'], embedded['bias'], k)}
      if catalogue_name.startswith('its'):
        calls[f'top_k signature, k=10 ({catalogue_name})'] = lambda: top_k(k=k, **users)
      measurements += [_measure(name, batch_size, call, budget)
                       for name, call in calls.items()]
  return measurements, indexes


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--model', help='a pushed SavedModel (default: the newest under '
                      f'{os.path.relpath(DEFAULT_SERVING_DIR, common.PROJECT_DIR)})')
  parser.add_argument('--seconds', type=float, default=5.0,
                      help='about how long to measure each (signature, batch size)')
  args = parser.parse_args(argv)
  model_dir = args.model or latest_model(DEFAULT_SERVING_DIR)
  budget = 0.3 if args.smoke else args.seconds
  model = tf.saved_model.load(model_dir)
  serve_examples = model.signatures['serving_default']
  serve_ids = model.signatures['serve_ids']

  rng = np.random.default_rng(1)
  results = []
  for batch_size in BATCH_SIZES:
    users = rng.integers(1, 10_000, batch_size)
    items = rng.integers(1, 10_000, batch_size)
    examples = _examples(users, items)
    ids = {'userId': tf.constant(users, tf.int64), 'movieId': tf.constant(items, tf.int64)}
    calls = {'serving_default (tf.Examples)': lambda: serve_examples(examples=examples),
             'serve_ids (id tensors)': lambda: serve_ids(**ids)}
    results += [_measure(name, batch_size, call, budget) for name, call in calls.items()]
  indexes = {}
  if 'top_k' in model.signatures:
    retrieval_results, indexes = _retrieval(model, rng, args.smoke, budget)
    results += retrieval_results
  rows = [(r['signature'], r['batch_size'], r['requests'], f'{r["p50_ms"]:.2f}',
           f'{r["p99_ms"]:.2f}', f'{r["examples_per_second"]:,.0f}') for r in results]
  parse_cost = {
      str(b): next(r['p50_ms'] for r in results if r['batch_size'] == b
                   and r['signature'].startswith('serving_default'))
              / next(r['p50_ms'] for r in results if r['batch_size'] == b
                     and r['signature'].startswith('serve_ids'))
      for b in BATCH_SIZES}
  print(f'model {model_dir}, in process, one request at a time\n')
  print(common.text_table(('signature', 'batch', 'requests', 'p50 ms', 'p99 ms',
                           'examples/s'), rows))
  print()
  print(common.text_table(('batch', 'serving_default p50 / serve_ids p50'),
                          [(b, f'{v:.2f}x') for b, v in parse_cost.items()]))
  if indexes:
    print()
    print(common.text_table(
        ('ScaNN index over', 'leaves', 'searched', 'build s', 'recall of exact top 10'),
        [(name, i['leaves'], i['leaves_to_search'], f'{i["build_seconds"]:.1f}',
          f'{i["recall_of_exact@10"]:.3f}') for name, i in indexes.items()]))
  path = common.write_result(args.results_dir, 'serving', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'model': model_dir, 'measurements': results,
                              'scann_indexes': indexes,
                              'serving_default_over_serve_ids_p50': parse_cost})
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
