"""CsvExampleGen: the project's block-parsing executor against TFX's own, side by side.

    .venv/bin/python bench/example_gen.py              # 1M generated rows (~3 min)
    .venv/bin/python bench/example_gen.py --rows 300000 --rounds 3
    .venv/bin/python bench/example_gen.py --smoke

Both executors read the same generated MovieLens-shaped CSV into the same 4:1 hash split
with Beam's in-memory DirectRunner, in this process, one after the other per round.
Reported: seconds and rows per second of each, the ratio, and that both wrote the same
number of examples to each split.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

sys.path.insert(0, common.PROJECT_DIR)

# pylint: disable=g-import-not-at-top,g-bad-import-order
from pipeline import process_env

process_env.configure()

import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from pipeline.components.csv_example_gen import executor as csv_example_gen
from pipeline.components.csv_example_gen import settings
# pylint: enable=g-import-not-at-top,g-bad-import-order

COLUMNS = {'userId': 'int', 'movieId': 'int', 'rating': 'float', 'timestamp': 'int'}
BEAM_ARGS = ['--direct_running_mode=in_memory', '--direct_num_workers=1']


def _run(executor_class, input_dir: str, output: str, with_columns: bool) -> float:
  """Seconds for one executor to write the splits of the CSV files in `input_dir`."""
  shutil.rmtree(output, ignore_errors=True)
  examples = standard_artifacts.Examples()
  examples.uri = output
  properties = {
      'input_base': input_dir,
      'input_config': proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='single_split', pattern='*.csv')])),
      'output_config': proto_utils.proto_to_json(example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=[
              example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=4),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)]))),
  }
  if with_columns:
    properties['custom_config'] = proto_utils.proto_to_json(
        settings.pack(COLUMNS, ',', None, code_fingerprint='bench'))
  executor = executor_class(executor_class.Context(beam_pipeline_args=BEAM_ARGS,
                                                   tmp_dir=output + '-tmp'))
  start = time.perf_counter()
  executor.Do({}, {'examples': [examples]}, properties)
  return time.perf_counter() - start


def _counts(output: str):
  return {split: sum(1 for _ in tf.data.TFRecordDataset(
      tf.io.gfile.glob(os.path.join(output, f'Split-{split}', '*')), compression_type='GZIP'))
          for split in ('train', 'eval')}


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--rows', type=int, default=1_000_000)
  parser.add_argument('--rounds', type=int, default=1)
  args = parser.parse_args(argv)
  rows = 3_000 if args.smoke else args.rows
  input_dir = os.path.join(common.WORK_DIR, f'example-gen-{rows}')
  common.generated_ratings(os.path.join(input_dir, 'ratings.csv'), rows, users=6040,
                           items=3706)
  work = os.path.join(common.WORK_DIR, 'example-gen-out')
  seconds = {'tfx': [], 'project': []}
  for _ in range(1 if args.smoke else args.rounds):
    seconds['tfx'].append(_run(tfx_csv_executor.Executor, input_dir,
                               os.path.join(work, 'tfx'), with_columns=False))
    seconds['project'].append(_run(csv_example_gen.Executor, input_dir,
                                   os.path.join(work, 'project'), with_columns=True))
  counts = {name: _counts(os.path.join(work, name)) for name in seconds}
  medians = {name: common.median(values) for name, values in seconds.items()}
  ratio = medians['tfx'] / medians['project']
  print(f'{rows:,} rows, median of {len(seconds["tfx"])} round(s)\n')
  print(common.text_table(
      ('executor', 'seconds', 'rows/s', 'train', 'eval'),
      [(name, f'{medians[name]:.1f}', f'{rows / medians[name]:,.0f}',
        f'{counts[name]["train"]:,}', f'{counts[name]["eval"]:,}') for name in seconds]))
  print(f'\nproject / tfx rows per second: {ratio:.1f}x')
  path = common.write_result(args.results_dir, 'example_gen', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'rows': rows, 'seconds': seconds, 'medians': medians,
                              'project_over_tfx': ratio, 'split_counts': counts})
  print(f'wrote {path}')
  return 0 if counts['tfx'] == counts['project'] else 1


if __name__ == '__main__':
  sys.exit(main())
