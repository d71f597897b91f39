"""Trainer throughput: the project's input path + model versus the seed tutorial's CSV path.

    .venv/bin/python bench/trainer_throughput.py             # 1M generated rows, batch 8192
    .venv/bin/python bench/trainer_throughput.py --smoke

Same rows, same model (modules.model.ranking.RankingModel, two tables, dim 16, Adagrad), same
batch, measured side by side in one process:
- columnar: the Trainer's input, ColumnarExamplesGen's blocks of int64
  columns (modules/data/columnar.py), read with whole-block reads, shuffled and rebatched;
- tf.Example: Transform's own output (GZIP TFRecord of tf.Examples, hashed ids and
  label), parsed by `modules.data.tf_examples.make_dataset` (`input_format: tf_example`);
- csv: the seed's `TextLineDataset -> batch -> decode_csv -> Hashing layer` on the raw CSV;
- model step alone: one batch held in memory, repeated (no input cost at all);
- each input path alone, iterated without a model;
- the columnar path and the model step with several steps in each call of the compiled
  training function (`training.steps_per_execution`);
- multi-hot: the same with a third table, a multi_hot `genres` feature on the item
  tower (1 to 6 of 19 genres per movie, MovieLens' mix: 1.7 on average), its ids padded
  in the blocks and ragged in the batch, combined by their mean.
Ratios say whether training is input-bound and what the TFX path costs over the seed's.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from modules.data import columnar  # pylint: disable=g-import-not-at-top
from modules.model import optimizers  # pylint: disable=g-import-not-at-top
from modules.model import ranking  # pylint: disable=g-import-not-at-top
from modules.data import tf_examples  # pylint: disable=g-import-not-at-top
from contract.model_inputs import Feature, LabelSpec, ModelInputs  # pylint: disable=g-import-not-at-top
from contract.names import LABEL_KEY  # pylint: disable=g-import-not-at-top

USER_VOCAB, ITEM_VOCAB, DIM = 25_000, 16_000, 16  # configs/movielens_1m.yaml's tables
MODEL_INPUTS = ModelInputs(
    features=(Feature(name='userId', column_type='int', vocab_size=USER_VOCAB,
                      embedding_dim=DIM, belongs_to='user'),
              Feature(name='movieId', column_type='int', vocab_size=ITEM_VOCAB,
                      embedding_dim=DIM, belongs_to='item')),
    label=LabelSpec(column='rating', operator='>=', threshold=4.0))
VOCAB_SIZES = {'userId': USER_VOCAB, 'movieId': ITEM_VOCAB}
FEATURE_SPEC = {name: tf.io.FixedLenFeature([], tf.int64)
                for name in ('userId', 'movieId', LABEL_KEY)}
GENRES = 19
MULTI_HOT_INPUTS = ModelInputs(
    features=MODEL_INPUTS.features + (Feature(
        name='genres', column_type='string', kind='multi_hot', embedding_dim=DIM,
        belongs_to='item'),),
    label=MODEL_INPUTS.label)
MULTI_HOT_SIZES = {**VOCAB_SIZES, 'genres': GENRES + 1}
# Genres per movie in MovieLens 1M (share of movies with 1, 2, ... 6 genres).
GENRE_COUNTS = (0.45, 0.33, 0.15, 0.05, 0.015, 0.005)


def _movie_genres(seed: int = 1) -> np.ndarray:
  """[ITEM_VOCAB, 6] genre ids per movie row, padded with -1."""
  rng = np.random.default_rng(seed)
  counts = rng.choice(np.arange(1, 7), size=ITEM_VOCAB, p=GENRE_COUNTS)
  genres = np.full((ITEM_VOCAB, 6), -1, np.int64)
  for row, count in enumerate(counts):
    genres[row, :count] = rng.choice(GENRES, size=count, replace=False)
  return genres


def write_columnar_multi_hot(tfrecord_path: str, out_dir: str) -> str:
  """The columnar blocks with each row's movie genres as a multi-valued column."""
  if not columnar.is_columnar(out_dir):
    genres = _movie_genres()
    chunks = ({**chunk, 'genres': genres[chunk['movieId']]} for chunk in columnar.read_columns(
        [tfrecord_path], FEATURE_SPEC, chunk_rows=16 * columnar.DEFAULT_BLOCK_ROWS))
    columnar.write_split(chunks, sorted(FEATURE_SPEC), out_dir, seed=1,
                         multi_valued=['genres'])
  return out_dir


def write_transformed(csv_path: str, out_path: str) -> str:
  """The rows as Transform writes them: hashed ids (FarmHash of the id's string, as
  tft.hash_strings) and the 0/1 label, one tf.Example each, GZIP TFRecord."""
  if os.path.exists(out_path):
    return out_path
  raw = np.genfromtxt(csv_path, delimiter=',', skip_header=1, dtype=np.float64)
  users = tf.strings.to_hash_bucket_fast(tf.strings.as_string(raw[:, 0].astype(np.int64)),
                                         USER_VOCAB).numpy()
  items = tf.strings.to_hash_bucket_fast(tf.strings.as_string(raw[:, 1].astype(np.int64)),
                                         ITEM_VOCAB).numpy()
  labels = (raw[:, 2] >= 4).astype(np.int64)
  temporary = out_path + '.tmp'
  with tf.io.TFRecordWriter(temporary, options='GZIP') as writer:
    for user, item, label in zip(users, items, labels):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
          'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[item])),
          LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())
  os.replace(temporary, out_path)
  return out_path


def seed_csv_dataset(csv_path: str, batch_size: int) -> tf.data.Dataset:
  """The seed tutorial's input path: text lines, batched, decoded, hashed by Keras."""
  user_hashing = tf.keras.layers.Hashing(num_bins=USER_VOCAB)
  item_hashing = tf.keras.layers.Hashing(num_bins=ITEM_VOCAB)

  def parse(lines):
    user, item, rating, _ = tf.io.decode_csv(lines, [[''], [''], [0.0], [0]])
    return {'userId': user_hashing(user), 'movieId': item_hashing(item),
            LABEL_KEY: tf.cast(rating >= 4.0, tf.int64)}

  return (tf.data.TextLineDataset(csv_path).skip(1)
          .shuffle(65_536, seed=1)
          .batch(batch_size, drop_remainder=True)
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def tf_example_dataset(tfrecord_path: str, batch_size: int) -> tf.data.Dataset:
  return tf_examples.make_dataset([tfrecord_path], FEATURE_SPEC, batch_size, shuffle=True,
                                  seed=1)


def write_columnar(tfrecord_path: str, out_dir: str) -> str:
  """What ColumnarExamplesGen writes for the split."""
  if not columnar.is_columnar(out_dir):
    chunks = columnar.read_columns([tfrecord_path], FEATURE_SPEC,
                                   chunk_rows=16 * columnar.DEFAULT_BLOCK_ROWS)
    columnar.write_split(chunks, sorted(FEATURE_SPEC), out_dir, seed=1)
  return out_dir


def iterate(dataset: tf.data.Dataset, max_batches: int) -> float:
  """Seconds to pull `max_batches` batches (after one to start the pipeline)."""
  iterator = iter(dataset)
  next(iterator)
  start = time.perf_counter()
  for _ in range(max_batches):
    next(iterator)
  return time.perf_counter() - start


class _ExecutionClock(tf.keras.callbacks.Callback):
  """When each call of the training function ended (on a CPU a call returns when its
  steps are done)."""

  def __init__(self):
    super().__init__()
    self._supports_tf_logs = True  # no conversion of the logs to numpy per call
    self.ends = []

  def on_train_batch_end(self, batch, logs=None):
    self.ends.append(time.perf_counter())


def fit(dataset: tf.data.Dataset, steps: int, steps_per_execution: int = 1,
        multi_hot: bool = False) -> float:
  """Seconds for `steps` training steps of a fresh model in its steady state;
  `steps_per_execution` steps run in each call of the compiled training function.

  The clock starts after the first call, on the same input iterator, as in the Trainer
  (one iterator across epochs): that call traces the function and starts the input
  pipeline (the first shuffle window of blocks read and permuted), once per training.
  """
  tf.keras.utils.set_random_seed(1)
  optimizer = optimizers.make_optimizer('adagrad', 0.5)
  model = ranking.RankingModel(*((MULTI_HOT_INPUTS, MULTI_HOT_SIZES) if multi_hot
                                   else (MODEL_INPUTS, VOCAB_SIZES)), optimizer, 0.03)
  model.compile(optimizer=optimizer, steps_per_execution=steps_per_execution)
  clock = _ExecutionClock()
  model.fit(dataset.repeat(), epochs=1, steps_per_epoch=steps_per_execution + steps,
            verbose=0, callbacks=[clock])
  return clock.ends[-1] - clock.ends[0]


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--rows', type=int, default=1_000_000)
  parser.add_argument('--batch-size', type=int, default=8192)
  parser.add_argument('--repeats', type=int, default=3,
                      help='rounds over all variants; medians are reported')
  parser.add_argument('--steps-per-execution', default='4,16,64',
                      help='values besides 1 to measure the columnar path and the model '
                      'step at (comma-separated; default: %(default)s)')
  args = parser.parse_args(argv)
  executions = [int(n) for n in args.steps_per_execution.split(',') if n.strip()]
  rows, batch, repeats = ((20_000, 1024, 1) if args.smoke
                          else (args.rows, args.batch_size, args.repeats))
  work = os.path.join(common.WORK_DIR, f'throughput-{rows}')
  csv_path = common.generated_ratings(os.path.join(work, 'ratings.csv'), rows,
                                      users=6040, items=3706)
  tfrecord_path = write_transformed(csv_path, os.path.join(work, 'transformed.tfrecord.gz'))
  columnar_dir = write_columnar(tfrecord_path, os.path.join(work, 'columnar'))
  multi_hot_dir = write_columnar_multi_hot(tfrecord_path,
                                           os.path.join(work, 'columnar-multi-hot'))
  steps = rows // batch - 1  # one pass over the rows, less the batch that starts it

  def in_memory_batch() -> tf.data.Dataset:
    one = next(iter(tf_example_dataset(tfrecord_path, batch)))
    return tf.data.Dataset.from_tensors(one)

  def columnar_dataset() -> tf.data.Dataset:
    return columnar.make_dataset(columnar_dir, batch, shuffle=True, seed=1)

  def multi_hot_dataset() -> tf.data.Dataset:
    return columnar.make_dataset(multi_hot_dir, batch, shuffle=True, seed=1)

  def multi_hot_batch() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensors(next(iter(multi_hot_dataset())))

  variants = {
      'model step alone (in-memory batch)': lambda: fit(in_memory_batch(), steps),
      'columnar path: input + model': lambda: fit(columnar_dataset(), steps),
      'tf.Example path: input + model': lambda: fit(tf_example_dataset(tfrecord_path, batch), steps),
      'seed csv path: input + model': lambda: fit(seed_csv_dataset(csv_path, batch), steps),
      'columnar path: input alone': lambda: iterate(columnar_dataset(), steps),
      'tf.Example path: input alone': lambda: iterate(tf_example_dataset(tfrecord_path, batch),
                                                      steps),
      'seed csv path: input alone': lambda: iterate(seed_csv_dataset(csv_path, batch), steps),
  }
  spe = max(executions, default=1)
  variants.update({
      'multi-hot: model step alone (in-memory batch)':
          lambda: fit(multi_hot_batch(), steps, multi_hot=True),
      'multi-hot: columnar path: input + model':
          lambda: fit(multi_hot_dataset(), steps, multi_hot=True),
      'multi-hot: columnar path: input alone': lambda: iterate(multi_hot_dataset(), steps),
      f'multi-hot: model step alone, {spe} steps per execution':
          lambda: fit(multi_hot_batch(), steps, spe, multi_hot=True),
      f'multi-hot: columnar path: input + model, {spe} steps per execution':
          lambda: fit(multi_hot_dataset(), steps, spe, multi_hot=True),
  })
  for n in executions:
    variants[f'model step alone, {n} steps per execution'] = (
        lambda n=n: fit(in_memory_batch(), steps, n))
    variants[f'columnar path: input + model, {n} steps per execution'] = (
        lambda n=n: fit(columnar_dataset(), steps, n))
  seconds = {name: [] for name in variants}
  for _ in range(repeats):
    for name, run in variants.items():
      seconds[name].append(run())

  examples = steps * batch
  results = {name: {'examples_per_second': examples / common.median(times),
                    'steps_per_second': steps / common.median(times),
                    'seconds': times} for name, times in seconds.items()}
  rate = {name: r['examples_per_second'] for name, r in results.items()}
  step_rate = rate['model step alone (in-memory batch)']
  seed_rate = rate['seed csv path: input + model']
  ratios = {
      'columnar train / seed csv train (target >= 1.5)':
          rate['columnar path: input + model'] / seed_rate,
      'columnar train / model step alone (target >= 0.7)':
          rate['columnar path: input + model'] / step_rate,
      'columnar input alone / model step alone (target >= 3)':
          rate['columnar path: input alone'] / step_rate,
      'tf.Example train / seed csv train': rate['tf.Example path: input + model'] / seed_rate,
      'tf.Example train / model step alone': rate['tf.Example path: input + model'] / step_rate,
      'tf.Example input alone / model step alone':
          rate['tf.Example path: input alone'] / step_rate,
      'seed csv input alone / model step alone': rate['seed csv path: input alone'] / step_rate,
      'columnar train / tf.Example train': rate['columnar path: input + model']
                                           / rate['tf.Example path: input + model'],
  }
  for n in executions:
    columnar_rate = rate[f'columnar path: input + model, {n} steps per execution']
    ratios[f'columnar train, {n} steps per execution / model step alone (target >= 0.95)'] = (
        columnar_rate / step_rate)
    ratios[f'columnar train, {n} steps per execution / columnar train, 1'] = (
        columnar_rate / rate['columnar path: input + model'])
    ratios[f'model step alone, {n} steps per execution / 1'] = (
        rate[f'model step alone, {n} steps per execution'] / step_rate)
  multi_hot_step = rate['multi-hot: model step alone (in-memory batch)']
  ratios.update({
      'multi-hot: columnar train / multi-hot model step alone (target >= 0.7)':
          rate['multi-hot: columnar path: input + model'] / multi_hot_step,
      'multi-hot: columnar input alone / multi-hot model step alone':
          rate['multi-hot: columnar path: input alone'] / multi_hot_step,
      f'multi-hot: columnar train, {spe} steps per execution / multi-hot model step '
      f'alone, {spe}': rate[f'multi-hot: columnar path: input + model, {spe} steps per '
                            'execution']
                       / rate[f'multi-hot: model step alone, {spe} steps per execution'],
      'multi-hot model step / ids-only model step': multi_hot_step / step_rate,
  })
  print(f'{rows:,} rows, batch {batch}, {steps} steps per measurement, '
        f'median of {repeats}\n')
  print(common.text_table(('variant', 'examples/s', 'steps/s'),
                          [(name, f'{r["examples_per_second"]:,.0f}',
                            f'{r["steps_per_second"]:.1f}') for name, r in results.items()]))
  print()
  print(common.text_table(('ratio', 'value'), [(k, f'{v:.2f}') for k, v in ratios.items()]))
  path = common.write_result(args.results_dir, 'trainer_throughput', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'rows': rows, 'batch_size': batch, 'steps': steps,
                              'repeats': repeats, 'variants': results, 'ratios': ratios,
                              'model': 'RankingModel 25,000 x 16,000 x 16, adagrad; multi-hot: '
                                       '+ genres 20 x 16, mean'})
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
