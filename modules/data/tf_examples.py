"""Transform's tf.Examples as training batches, parsed row by row.

Only with `training.input_format: tf_example`; the columnar reader (columnar.py) is the
default and far faster. Files are the units input pipelines share (sharding.py).
"""

from typing import Any, List, Mapping

import tensorflow as tf

from modules.data import sharding

_SHUFFLE_BUFFER = 65_536


def example_files(file_patterns: List[str]) -> List[str]:
  """The files of a split, sorted; raises ValueError when nothing matches."""
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'no transformed examples match {file_patterns}')
  return files


def _records(path) -> tf.data.Dataset:
  return tf.data.TFRecordDataset(path, compression_type='GZIP')


def _count_records(path) -> int:
  return int(_records(path).reduce(0, lambda count, _: count + 1))


def make_dataset(file_patterns: List[str], feature_spec: Mapping[str, Any],
                 batch_size: int, shuffle: bool, seed: int, repeat: bool = False,
                 pipeline_id: int = 0, num_pipelines: int = 1) -> tf.data.Dataset:
  """Batches of transformed features, label included, in the TPU's fixed shapes.

  Input pipeline `pipeline_id` of `num_pipelines` reads its part of the files
  (sharding.py); `repeat` repeats whole shuffled passes over that part.
  """
  files = example_files(file_patterns)
  whole_files = sharding.by_unit(len(files), num_pipelines)
  if whole_files:
    files = files[pipeline_id::num_pipelines]
  dataset = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

  def read(path):
    records = _records(path)
    return records if whole_files else records.shard(num_pipelines, pipeline_id)

  dataset = dataset.interleave(read, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=not shuffle)
  if shuffle:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  # A TPU compiles for one shape: every batch is full.
  dataset = dataset.batch(batch_size, drop_remainder=True)
  dataset = dataset.map(lambda records: tf.io.parse_example(records, feature_spec),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def part_rows(file_patterns: List[str], num_pipelines: int) -> List[int]:
  """Rows each input pipeline reads of the split (one pass over it, counting)."""
  counts = [_count_records(f) for f in example_files(file_patterns)]
  return sharding.rows_per_pipeline(counts, num_pipelines)
