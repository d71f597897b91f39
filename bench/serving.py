"""Serving: latency and throughput of the pushed SavedModel on serialized tf.Examples.

    .venv/bin/python local_runner.py && .venv/bin/python bench/serving.py
    .venv/bin/python bench/serving.py --model outputs/movielens-1m/serving/<timestamp>

`serving_default` (serialized raw tf.Examples: parsing, the transform graph, lookups,
the dot product) is what TF Serving and Vertex AI endpoints call; `serve_ids` (raw id
tensors, no parsing) is measured beside it as the baseline, on the same ids, so the
difference is what parsing and the request format cost. Batches of 1, 100 and 10,000.

`top_k` (k=10, users by their user-side values) is measured on the model's own
catalogue, and its search alone (modules/retrieval.py, exact: one matrix product and
tf.math.top_k) over a synthetic catalogue of 1,000,000 random item vectors of the
model's width, for 1 and 100 users a request.
"""

import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top
from modules import retrieval  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

DEFAULT_SERVING_DIR = os.path.join(common.PROJECT_DIR, 'outputs', 'movielens-sample', 'serving')
BATCH_SIZES = (1, 100, 10_000)
TOP_K_BATCH_SIZES = (1, 100)
SYNTHETIC_ITEMS = 1_000_000


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


def _top_k_calls(model, batch_size: int, rng: np.random.Generator, smoke: bool):
  """{name: call} for top_k on the model's catalogue and the exact search over a
  synthetic catalogue, for `batch_size` users (ids only: the user's other features are
  sent as missing)."""
  top_k = model.signatures['top_k']
  user_inputs = top_k.structured_input_signature[1]
  users = {name: (tf.constant(rng.integers(1, 10_000, batch_size), spec.dtype)
                  if spec.dtype.is_integer else
                  tf.fill([batch_size], '' if spec.dtype == tf.string else float('nan')))
           for name, spec in user_inputs.items() if name != 'k'}
  k = tf.constant(10)
  embedded = model.signatures['user_embedding'](**users)
  items = SYNTHETIC_ITEMS // 100 if smoke else SYNTHETIC_ITEMS
  catalogue = tf.constant(rng.normal(0, 0.1, (items, embedded['embedding'].shape[1])),
                          tf.float32)
  search = tf.function(retrieval.best_items)
  return {
      f'top_k, k=10 (its catalogue, {model.catalogue_vectors.shape[0]:,} items)':
          lambda: top_k(k=k, **users),
      f'exact search alone, k=10 ({items:,} synthetic items)':
          lambda: search(embedded['embedding'], embedded['bias'], catalogue, k),
  }


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
  rows = []
  results = []
  for batch_size in BATCH_SIZES:
    users = rng.integers(1, 10_000, batch_size)
    items = rng.integers(1, 10_000, batch_size)
    examples = _examples(users, items)
    ids = {'userId': tf.constant(users, tf.int64), 'movieId': tf.constant(items, tf.int64)}
    calls = {'serving_default (tf.Examples)': lambda: serve_examples(examples=examples),
             'serve_ids (id tensors)': lambda: serve_ids(**ids)}
    if batch_size in TOP_K_BATCH_SIZES and 'top_k' in model.signatures:
      calls.update(_top_k_calls(model, batch_size, rng, args.smoke))
    for name, call in calls.items():
      result = _measure(name, batch_size, call, budget)
      results.append(result)
      rows.append((name, batch_size, result['requests'], f'{result["p50_ms"]:.2f}',
                   f'{result["p99_ms"]:.2f}', f'{result["examples_per_second"]:,.0f}'))
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
  path = common.write_result(args.results_dir, 'serving', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'model': model_dir, 'measurements': results,
                              'serving_default_over_serve_ids_p50': parse_cost})
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
