"""Columnar examples: the transformed data as blocks of columns, read without parsing.

Parsing tf.Example protos row by row is far slower than the model trains
(bench/README.md, "Trainer throughput"). Transform's output is a few int64 columns
(each feature's table rows, a multi-valued feature's as lists, the label) and the
label's float value, so the pipeline writes it as blocks: one file per block of rows, holding every column as one
serialized int64 tensor [columns, rows]. Reading a block is one file read and one
memory copy; shuffling and batching are whole-tensor ops. The blocks are made from the
raw examples with Transform's graph applied a chunk at a time
(pipeline/components/columnar_examples_gen.py), not from Transform's own tf.Examples,
which cost Transform most of its time to write.

Layout of a split directory:

    columns.json            {"columns": [...], "multi_valued": {name: width},
                             "floats": [...], "rows": N, "block_rows": B, "blocks": K}
    block-00000.tensor      tf.io.serialize_tensor(int64 [len(columns), B]); a float
                            column (one of "floats") holds its float64 values' bits
    block-00000.genres.tensor   int64 [B, w]: a multi-valued column's ids per row,
                            padded with -1 to the block's longest row (w <= width)
    ...

A multi-valued column is padded rather than stored as values and row lengths so that
the read path stays whole-tensor ops: its ids travel as extra columns of the block's
rows and become a RaggedTensor per batch. The padding costs the longest row's width per
row, cheap for short lists such as a movie's genres; a column with a long tail of list
lengths would want values + row lengths instead.

A float column travels as the bits of its float64 values, so that a block stays one
int64 tensor whose rows the read path moves whole; it becomes float32 per batch.

Rows are shuffled once when written, and at read time the block order is reshuffled
every epoch and rows are permuted within a window of blocks.
"""

import json
import os
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple,
                    Optional, Sequence)

import numpy as np
import tensorflow as tf

from modules.data import sharding

MANIFEST = 'columns.json'
DEFAULT_BLOCK_ROWS = 65_536
# Blocks whose rows are permuted together at read time: 4 x 65,536 rows.
WINDOW_BLOCKS = 4


class Columns(NamedTuple):
  """A split's columns by how they are stored, each sorted."""
  scalars: List[str]  # one value a row, floats among them
  multi_valued: List[str]
  floats: List[str]


def check_feature_spec(feature_spec: Mapping[str, Any]) -> Columns:
  """The columns of the transformed feature spec; raises ValueError unless every
  feature is a scalar int64 or float32, or a variable-length int64 list."""
  columns = Columns([], [], [])
  for name, spec in sorted(feature_spec.items()):
    if isinstance(spec, tf.io.VarLenFeature) and spec.dtype == tf.int64:
      columns.multi_valued.append(name)
    elif (isinstance(spec, tf.io.FixedLenFeature) and spec.dtype in (tf.int64, tf.float32)
          and list(spec.shape) in ([], [1])):
      columns.scalars.append(name)
      if spec.dtype == tf.float32:
        columns.floats.append(name)
    else:
      raise ValueError(f'columnar examples hold scalar int64 or float32 features and '
                       f'variable-length int64 ones; {name} is {spec}')
  return columns


def block_path(split_dir: str, index: int, column: str = '') -> str:
  """The block's scalar columns, or with `column` that multi-valued column's ids."""
  suffix = f'.{column}' if column else ''
  return os.path.join(split_dir, f'block-{index:05d}{suffix}.tensor')


def _padded(ids: tf.sparse.SparseTensor) -> tf.Tensor:
  """[rows, longest row] ids, -1 after each row's own."""
  return tf.sparse.to_dense(ids, default_value=-1)


def read_columns(example_files: List[str], feature_spec, chunk_rows: int,
                 transform: Optional[Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]] = None
                 ) -> Iterator[Dict[str, np.ndarray]]:
  """Chunks of GZIP tf.Examples as {name: int64 [rows]}, in file order; a variable-length
  feature as int64 [rows, longest row] padded with -1.

  `transform` (e.g. Transform's graph, applied to raw examples) runs on each parsed
  chunk inside tf.data, so a chunk is one call, not one call per row.
  """
  dataset = (tf.data.TFRecordDataset(example_files, compression_type='GZIP')
             .batch(chunk_rows)
             .map(lambda records: tf.io.parse_example(records, feature_spec),
                  num_parallel_calls=tf.data.AUTOTUNE))
  if transform is not None:
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
  dataset = dataset.map(lambda batch: {
      name: _padded(t) if isinstance(t, tf.sparse.SparseTensor) else tf.reshape(t, [-1])
      for name, t in batch.items()})
  for batch in dataset.prefetch(2):
    yield {name: tensor.numpy() for name, tensor in batch.items()}


def _pad_to(ids: np.ndarray, width: int) -> np.ndarray:
  return np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=-1)


def write_split(chunks: Iterable[Mapping[str, np.ndarray]], columns: List[str], out_dir: str,
                block_rows: int = DEFAULT_BLOCK_ROWS, seed: int = 0,
                multi_valued: Sequence[str] = (), floats: Sequence[str] = ()
                ) -> Dict[str, Any]:
  """Writes one split's scalar `columns` (`floats` among them hold float values) and
  `multi_valued` columns (padded [rows, width] ids, as read_columns gives them) of
  `chunks` as columnar blocks; returns the manifest.

  Rows are permuted within each chunk as they are written, so that a file sorted by
  user or time does not stay sorted in the blocks.
  """
  tf.io.gfile.makedirs(out_dir)
  rng = np.random.default_rng(seed)
  blocks = rows = 0
  widths = {name: 0 for name in multi_valued}
  pending = np.empty((len(columns), 0), np.int64)
  pending_lists = {name: np.empty((0, 0), np.int64) for name in multi_valued}

  def write(path: str, data: np.ndarray) -> None:
    tf.io.write_file(path, tf.io.serialize_tensor(tf.constant(data, tf.int64)))

  def flush(count: int) -> None:
    nonlocal blocks, pending
    write(block_path(out_dir, blocks), pending[:, :count])
    pending = pending[:, count:]
    for name, ids in pending_lists.items():
      block = ids[:count]
      # Trimmed to this block's longest row; the reader pads to the split's.
      block = block[:, :max(int((block >= 0).sum(axis=1).max(initial=0)), 1)]
      widths[name] = max(widths[name], block.shape[1])
      write(block_path(out_dir, blocks, name), block)
      pending_lists[name] = ids[count:]
    blocks += 1

  for chunk in chunks:
    order = rng.permutation(len(chunk[columns[0]]))
    scalars = np.stack([np.asarray(chunk[name], np.float64).view(np.int64) if name in floats
                        else np.asarray(chunk[name], np.int64) for name in columns])[:, order]
    rows += scalars.shape[1]
    pending = np.concatenate([pending, scalars], axis=1)
    for name in multi_valued:
      ids = np.asarray(chunk[name], np.int64)[order]
      width = max(ids.shape[1], pending_lists[name].shape[1])
      pending_lists[name] = np.concatenate(
          [_pad_to(pending_lists[name], width), _pad_to(ids, width)])
    while pending.shape[1] >= block_rows:
      flush(block_rows)
  if not rows:
    raise ValueError(f'no examples to write to {out_dir}')
  if pending.shape[1]:
    flush(pending.shape[1])
  manifest = {'columns': columns, 'rows': rows, 'block_rows': block_rows, 'blocks': blocks}
  if multi_valued:
    manifest['multi_valued'] = widths
  if floats:
    manifest['floats'] = list(floats)
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
  return sharding.rows_per_pipeline(sizes, num_pipelines)


def make_dataset(split_dir: str, batch_size: int, shuffle: bool, seed: int,
                 repeat: bool = False, pipeline_id: int = 0,
                 num_pipelines: int = 1) -> tf.data.Dataset:
  """Batches {column: int64 [batch_size]} of a columnar split; every batch is full.

  With several input pipelines (one per worker), pipeline `pipeline_id` reads its part
  of the blocks (sharding.py).
  With `shuffle`, each pass reads the blocks in a new order and permutes the rows of
  every window of WINDOW_BLOCKS blocks, so a row's batch-mates change from pass to pass;
  `repeat` repeats whole passes, so every row is seen once before any is seen again.
  """
  manifest = read_manifest(split_dir)
  columns = manifest['columns']
  widths = manifest.get('multi_valued', {})
  blocks = list(range(manifest['blocks']))
  by_block = sharding.by_unit(len(blocks), num_pipelines)
  if by_block:
    blocks = blocks[pipeline_id::num_pipelines]
  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(blocks, tf.int64))
  if shuffle:
    dataset = dataset.shuffle(len(blocks), seed=seed, reshuffle_each_iteration=True)
  prefix = tf.constant(os.path.join(split_dir, 'block-'))

  # [rows, columns + the multi-valued columns' widths]: rows first, so that blocks of
  # different lengths can be stacked.
  def read_block(index):
    stem = prefix + tf.strings.as_string(index, width=5, fill='0')
    block = tf.io.parse_tensor(tf.io.read_file(stem + '.tensor'), tf.int64)
    parts = [tf.transpose(tf.ensure_shape(block, [len(columns), None]))]
    for name, width in widths.items():
      ids = tf.io.parse_tensor(tf.io.read_file(stem + f'.{name}.tensor'), tf.int64)
      ids = tf.ensure_shape(ids, [None, None])
      parts.append(tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]], constant_values=-1))
    rows = tf.ensure_shape(tf.concat(parts, axis=1),
                           [None, len(columns) + sum(widths.values())])
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
  # Whole blocks in, fixed-size batches out, across block boundaries: a TPU compiles
  # for one shape, so the remainder of an epoch (fewer than batch_size rows) is dropped.
  dataset = dataset.rebatch(batch_size, drop_remainder=True)

  floats = set(manifest.get('floats', ()))

  def to_features(rows):
    features = {name: tf.cast(tf.bitcast(rows[:, i], tf.float64), tf.float32)
                if name in floats else rows[:, i] for i, name in enumerate(columns)}
    start = len(columns)
    for name, width in widths.items():
      features[name] = tf.RaggedTensor.from_tensor(rows[:, start:start + width], padding=-1)
      start += width
    return features

  return dataset.map(to_features, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)
