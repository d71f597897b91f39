"""Embedding scale: step time and peak memory as the tables grow, for each optimizer.

    .venv/bin/python bench/embedding_scale.py                # 100K, 1M, 5M, 25M rows
    .venv/bin/python bench/embedding_scale.py --vocab 100000 5000000 --optimizers adam
    .venv/bin/python bench/embedding_scale.py --smoke

The project's model (modules.model.ranking.RankingModel, dim 16) with a user table of each
size and an item table a fifth of it (the seed's 25M x 5M shape), batch 8192 of
Zipf-distributed ids held in memory, so only the step is timed. Each (optimizer, size)
runs in its own process: peak memory is that process's, and a large table does not
linger into the next. A step touches 8192 rows per table; if its cost grows with the
table, the optimizer updates rows the batch never saw. `keras_adam`, Keras' own (dense)
Adam, is measured as the reference the project's lazy `adam` replaces; the configs do
not offer it.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

from contract.options import OPTIMIZER_SLOTS  # pylint: disable=g-import-not-at-top

DIM = 16
BATCH = 8192
DEFAULT_VOCABS = (100_000, 1_000_000, 5_000_000, 25_000_000)
KERAS_ADAM = 'keras_adam'


def measure(optimizer_name: str, user_vocab: int, steps: int) -> dict:
  """In this process: build the model, time `steps` steps; returns the figures."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from modules.model import optimizers  # pylint: disable=g-import-not-at-top
  from modules.model import ranking  # pylint: disable=g-import-not-at-top
  from contract.model_inputs import Feature, LabelSpec, ModelInputs  # pylint: disable=g-import-not-at-top
  from contract.names import LABEL_KEY  # pylint: disable=g-import-not-at-top

  item_vocab = max(user_vocab // 5, 1)
  inputs = ModelInputs(
      features=(Feature(name='userId', column_type='int', vocab_size=user_vocab,
                        embedding_dim=DIM, belongs_to='user'),
                Feature(name='movieId', column_type='int', vocab_size=item_vocab,
                        embedding_dim=DIM, belongs_to='item')),
      label=LabelSpec(column='rating', operator='>=', threshold=4.0))
  rng = np.random.default_rng(1)
  batch = {
      # Zipf-like: a few ids are hot, most of the table is cold, as with real ids.
      'userId': (rng.zipf(1.2, BATCH) % user_vocab).astype(np.int64),
      'movieId': (rng.zipf(1.2, BATCH) % item_vocab).astype(np.int64),
      LABEL_KEY: rng.integers(0, 2, BATCH).astype(np.int64),
  }
  tf.keras.utils.set_random_seed(1)
  started = time.perf_counter()
  optimizer = (tf.keras.optimizers.legacy.Adam(0.1) if optimizer_name == KERAS_ADAM
               else optimizers.make_optimizer(optimizer_name, 0.1))
  model = ranking.RankingModel(inputs, {'userId': user_vocab, 'movieId': item_vocab},
                                 optimizer)
  model.compile(optimizer=optimizer)
  data = tf.data.Dataset.from_tensors(batch).repeat()
  model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # builds, traces, warms up
  build_seconds = time.perf_counter() - started
  step_seconds = []
  iterator = iter(data)
  train_step = model.make_train_function()
  for _ in range(steps):
    start = time.perf_counter()
    logs = train_step(iterator)
    tf.nest.map_structure(lambda t: t.numpy(), logs)  # waits for the step to finish
    step_seconds.append(time.perf_counter() - start)
  return {'optimizer': optimizer_name, 'user_vocab': user_vocab, 'item_vocab': item_vocab,
          'table_mib': (user_vocab + item_vocab) * DIM * 4 / 2**20,
          'build_seconds': build_seconds,
          'step_ms_median': 1000 * common.median(step_seconds),
          'step_ms': [1000 * s for s in step_seconds],
          'peak_rss_mib': common.peak_rss_mib()}


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--vocab', type=int, nargs='+', default=list(DEFAULT_VOCABS),
                      help='user table sizes (the item table is a fifth)')
  parser.add_argument('--optimizers', nargs='+', default=[*OPTIMIZER_SLOTS, KERAS_ADAM],
                      choices=[*OPTIMIZER_SLOTS, KERAS_ADAM])
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--child', nargs=2, metavar=('OPTIMIZER', 'VOCAB'),
                      help=argparse.SUPPRESS)  # one measurement, in this process
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(measure(args.child[0], int(args.child[1]), args.steps)))
    return 0
  vocabs, steps = ((1_000, 10_000), 3) if args.smoke else (args.vocab, args.steps)

  results = []
  for optimizer in args.optimizers:
    for vocab in vocabs:
      child = subprocess.run(
          [sys.executable, os.path.abspath(__file__), '--child', optimizer, str(vocab),
           '--steps', str(steps)],
          capture_output=True, text=True, check=False)
      if child.returncode != 0:
        print(child.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f'{optimizer} at {vocab:,} rows failed')
      results.append(json.loads(child.stdout.strip().splitlines()[-1]))
      print(f'  {optimizer:8s} {vocab:>12,}: {results[-1]["step_ms_median"]:9.1f} ms/step',
            file=sys.stderr)

  growth = {}
  for optimizer in args.optimizers:
    mine = [r for r in results if r['optimizer'] == optimizer]
    growth[optimizer] = mine[-1]['step_ms_median'] / mine[0]['step_ms_median']
  print(f'batch {BATCH}, dim {DIM}, median of {steps} steps\n')
  print(common.text_table(
      ('optimizer', 'user rows', 'item rows', 'tables MiB', 'ms/step', 'peak RSS MiB',
       'build s'),
      [(r['optimizer'], f'{r["user_vocab"]:,}', f'{r["item_vocab"]:,}',
        f'{r["table_mib"]:,.0f}', f'{r["step_ms_median"]:.1f}', f'{r["peak_rss_mib"]:,.0f}',
        f'{r["build_seconds"]:.1f}') for r in results]))
  print()
  print(common.text_table(
      ('optimizer', f'step at {vocabs[-1]:,} / at {vocabs[0]:,}'),
      [(name, f'{value:.1f}x') for name, value in growth.items()]))
  path = common.write_result(args.results_dir, 'embedding_scale', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'batch_size': BATCH, 'dim': DIM, 'steps': steps,
                              'measurements': results, 'growth': growth})
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
