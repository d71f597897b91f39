"""StatisticsGen: the project's batch-reading executor against TFX's own, side by side.

    .venv/bin/python bench/statistics_gen.py              # 1M generated rows (~3 min)
    .venv/bin/python bench/statistics_gen.py --rows 5000000 --rounds 1
    .venv/bin/python bench/statistics_gen.py --smoke

Both executors read the same Examples (a generated MovieLens-25M-shaped CSV through the
project's CsvExampleGen, a 4:1 hash split) with Beam's in-memory DirectRunner, in this
process, one after the other per round. Reported: seconds and rows per second of each,
their ratio, and whether the statistics are the same: every field of every feature
equal, except the mean and standard deviation, which may differ in their last digits
(their sums are added in another order) and are held to a relative 1e-9.
"""

import os
import shutil
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top
import example_gen  # pylint: disable=g-import-not-at-top

# pylint: disable=g-import-not-at-top,g-bad-import-order
from tfx.components.statistics_gen import executor as tfx_statistics_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from inspection import artifact_contents
from pipeline.components.csv_example_gen import executor as csv_example_gen_executor
from pipeline.components import statistics_gen
# pylint: enable=g-import-not-at-top,g-bad-import-order

SPLITS = ('train', 'eval')


def _run(executor_class, examples_uri: str, output: str, properties) -> float:
  """Seconds for one executor to write the statistics of every split."""
  shutil.rmtree(output, ignore_errors=True)
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = output
  executor = executor_class(executor_class.Context(
      beam_pipeline_args=example_gen.BEAM_ARGS, tmp_dir=output + '-tmp'))
  start = time.perf_counter()
  executor.Do({'examples': [examples]}, {'statistics': [statistics]}, properties)
  return time.perf_counter() - start


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--rows', type=int, default=1_000_000)
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args(argv)
  rows = 3_000 if args.smoke else args.rows
  input_dir = os.path.join(common.WORK_DIR, f'statistics-gen-{rows}')
  common.generated_ratings(os.path.join(input_dir, 'ratings.csv'), rows,
                           users=max(300, rows * 6_502 // 1_000_000),
                           items=max(300, rows * 2_362 // 1_000_000))
  work = os.path.join(common.WORK_DIR, 'statistics-gen-out')
  examples_uri = os.path.join(work, 'examples')
  example_gen._run(csv_example_gen_executor.Executor, input_dir, examples_uri,  # pylint: disable=protected-access
                   with_columns=True)
  project_executor = statistics_gen.StatisticsGen.EXECUTOR_SPEC.executor_class
  runs = {
      'tfx': (tfx_statistics_executor.Executor, {}),
      'project': (project_executor, {'sample_rate': 1.0, 'code_fingerprint': 'bench'}),
  }
  seconds = {name: [] for name in runs}
  for _ in range(1 if args.smoke else args.rounds):
    for name, (executor_class, properties) in runs.items():
      seconds[name].append(_run(executor_class, examples_uri, os.path.join(work, name),
                                properties))
  found = artifact_contents.statistics_differences(os.path.join(work, 'tfx'), os.path.join(work, 'project'))
  medians = {name: common.median(values) for name, values in seconds.items()}
  ratio = medians['tfx'] / medians['project']
  print(f'{rows:,} rows, median of {len(seconds["tfx"])} round(s)\n')
  print(common.text_table(
      ('executor', 'seconds', 'rows/s'),
      [(name, f'{medians[name]:.1f}', f'{rows / medians[name]:,.0f}') for name in seconds]))
  print(f'\nproject / tfx rows per second: {ratio:.1f}x')
  print('statistics: ' + ('the same' if not found else
                          f'{len(found)} difference(s):\n  ' + '\n  '.join(found[:20])))
  path = common.write_result(args.results_dir, 'statistics_gen', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'rows': rows, 'seconds': seconds, 'medians': medians,
                              'project_over_tfx': ratio, 'differences': found})
  print(f'wrote {path}')
  return 0 if not found else 1


if __name__ == '__main__':
  sys.exit(main())
