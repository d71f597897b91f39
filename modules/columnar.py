"""Columnar examples: the transformed data as blocks of columns, read without parsing.

Parsing tf.Example protos row by row tops out near 0.4 M rows/s on two cores, below
what the model trains at. Transform's output is a few int64 columns (hashed ids and
the label), so the pipeline writes it as blocks: one file per block of rows, holding
every column as one serialized int64 tensor [columns, rows]. Reading a block is one
file read and one memory copy; shuffling and batching are whole-tensor ops. The blocks
are made from the raw examples with Transform's graph applied a chunk at a time
(pipeline/columnar_examples.py), not from Transform's own tf.Examples, which cost
Transform most of its time to write.

Layout of a split directory:

    columns.json            {"columns": [...], "rows": N, "block_rows": B, "blocks": K}
    block-00000.tensor      tf.io.serialize_tensor(int64 [len(columns), B])
    ...

Rows are shuffled once when written, and at read time the block order is reshuffled
every epoch and rows are permuted within a window of blocks.
"""

import json
import os
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

MANIFEST = 'columns.json'
DEFAULT_BLOCK_ROWS = 65_536
# Blocks whose rows are permuted together at read time: 4 x 65,536 rows.
WINDOW_BLOCKS = 4


def check_feature_spec(feature_spec: Mapping[str, tf.io.FixedLenFeature]) -> List[str]:
  """The column names, sorted; raises ValueError unless every feature is a scalar int64."""
  for name, spec in feature_spec.items():
    if (not isinstance(spec, tf.io.FixedLenFeature) or spec.dtype != tf.int64
        or list(spec.shape) not in ([], [1])):
      raise ValueError(f'columnar examples hold scalar int64 features; {name} is {spec}')
  return sorted(feature_spec)


def block_path(split_dir: str, index: int) -> str:
  return os.path.join(split_dir, f'block-{index:05d}.tensor')


def read_columns(example_files: List[str], feature_spec, chunk_rows: int,
                 transform: Optional[Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]] = None
                 ) -> Iterator[Dict[str, np.ndarray]]:
  """Chunks of GZIP tf.Examples as {name: int64 [rows]}, in file order.

  `transform` (e.g. Transform's graph, applied to raw examples) runs on each parsed
  chunk inside tf.data, so a chunk is one call, not one call per row.
  """
  dataset = (tf.data.TFRecordDataset(example_files, compression_type='GZIP')
             .batch(chunk_rows)
             .map(lambda records: tf.io.parse_example(records, feature_spec),
                  num_parallel_calls=tf.data.AUTOTUNE))
  if transform is not None:
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
  for batch in dataset.prefetch(2):
    yield {name: np.reshape(tensor.numpy(), [-1]) for name, tensor in batch.items()}


def write_split(chunks: Iterable[Mapping[str, np.ndarray]], columns: List[str], out_dir: str,
                block_rows: int = DEFAULT_BLOCK_ROWS, seed: int = 0) -> Dict[str, int]:
  """Writes one split's `columns` of `chunks` as columnar blocks; returns counts.

  Rows are permuted within each chunk as they are written, so that a file sorted by
  user or time does not stay sorted in the blocks.
  """
  tf.io.gfile.makedirs(out_dir)
  rng = np.random.default_rng(seed)
  blocks = rows = 0
  pending = np.empty((len(columns), 0), np.int64)

  def flush(data: np.ndarray) -> None:
    nonlocal blocks
    tf.io.write_file(block_path(out_dir, blocks),
                     tf.io.serialize_tensor(tf.constant(data, tf.int64)))
    blocks += 1

  for chunk in chunks:
    chunk = np.stack([np.asarray(chunk[name], np.int64) for name in columns])
    chunk = chunk[:, rng.permutation(chunk.shape[1])]
    rows += chunk.shape[1]
    pending = np.concatenate([pending, chunk], axis=1)
    while pending.shape[1] >= block_rows:
      flush(pending[:, :block_rows])
      pending = pending[:, block_rows:]
  if not rows:
    raise ValueError(f'no examples to write to {out_dir}')
  if pending.shape[1]:
    flush(pending)
  manifest = {'columns': columns, 'rows': rows, 'block_rows': block_rows, 'blocks': blocks}
  with tf.io.gfile.GFile(os.path.join(out_dir, MANIFEST), 'w') as f:
    json.dump(manifest, f)
  return manifest


def is_columnar(split_dir: str) -> bool:
  return tf.io.gfile.exists(os.path.join(split_dir, MANIFEST))


def read_manifest(split_dir: str) -> Dict:
  with tf.io.gfile.GFile(os.path.join(split_dir, MANIFEST)) as f:
    return json.load(f)


def part_rows(manifest: Mapping, num_pipelines: int) -> List[int]:
  """Rows each of `num_pipelines` input pipelines reads of a split (see make_dataset)."""
  blocks, block_rows, rows = manifest['blocks'], manifest['block_rows'], manifest['rows']
  sizes = [block_rows] * (blocks - 1) + [rows - block_rows * (blocks - 1)]
  if blocks >= num_pipelines:
    return [sum(sizes[i::num_pipelines]) for i in range(num_pipelines)]
  return [sum(len(range(i, size, num_pipelines)) for size in sizes)
          for i in range(num_pipelines)]


def make_dataset(split_dir: str, batch_size: int, shuffle: bool, seed: int,
                 repeat: bool = False, pipeline_id: int = 0,
                 num_pipelines: int = 1) -> tf.data.Dataset:
  """Batches {column: int64 [batch_size]} of a columnar split; every batch is full.

  With several input pipelines (one per worker), pipeline `pipeline_id` reads every
  `num_pipelines`-th block, or every `num_pipelines`-th row of each block when there
  are fewer blocks than pipelines: the parts are disjoint and together cover the split.
  With `shuffle`, each pass reads the blocks in a new order and permutes the rows of
  every window of WINDOW_BLOCKS blocks, so a row's batch-mates change from pass to pass;
  `repeat` repeats whole passes, so every row is seen once before any is seen again.
  """
  manifest = read_manifest(split_dir)
  columns = manifest['columns']
  paths = [block_path(split_dir, i) for i in range(manifest['blocks'])]
  by_block = len(paths) >= num_pipelines
  if by_block:
    paths = paths[pipeline_id::num_pipelines]
  dataset = tf.data.Dataset.from_tensor_slices(paths)
  if shuffle:
    dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)

  # [rows, columns]: rows first, so that blocks of different lengths can be stacked.
  def read_block(path):
    block = tf.io.parse_tensor(tf.io.read_file(path), tf.int64)
    rows = tf.transpose(tf.ensure_shape(block, [len(columns), None]))
    return rows if by_block else rows[pipeline_id::num_pipelines]

  dataset = dataset.map(read_block, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=not shuffle)
  if shuffle:
    # A stateful shuffle: every window of every pass gets its own permutation.
    dataset = dataset.ragged_batch(WINDOW_BLOCKS).map(
        lambda window: tf.random.shuffle(window.merge_dims(0, 1), seed=seed),
        num_parallel_calls=tf.data.AUTOTUNE)
  if repeat:
    dataset = dataset.repeat()
  dataset = dataset.map(lambda rows: {name: rows[:, i] for i, name in enumerate(columns)})
  # Whole blocks in, fixed-size batches out, across block boundaries: a TPU compiles
  # for one shape, so the remainder of an epoch (fewer than batch_size rows) is dropped.
  return dataset.rebatch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
