"""The item catalogue: one raw example per distinct item of the data, for retrieval.

ColumnarExamplesGen writes it beside its blocks (`<artifact>/catalogue/`), the Trainer
embeds it with the trained item tower and stores the vectors in the exported model,
whose `top_k` signature searches them. An item is told by its key, the first
item-side feature (e.g. movieId); its other item-side columns (year, genres) are those of
the first row holding it.
"""

import os
from typing import Any, Iterable, List, Optional

import numpy as np
import tensorflow as tf

DIRECTORY = 'catalogue'
_FILE = 'items.tfrecord.gz'


def distinct_items(example_files: List[str], key: str, key_spec: Any,
                   batch_rows: int = 65_536) -> List[bytes]:
  """The first serialized raw tf.Example of each distinct `key` value, in file order
  (rows without a key are no item)."""
  seen = set()
  kept: List[bytes] = []
  spec = {key: tf.io.VarLenFeature(key_spec.dtype)}
  for records in tf.data.TFRecordDataset(example_files, compression_type='GZIP').batch(
      batch_rows).prefetch(2):
    keys = tf.io.parse_example(records, spec)[key]
    rows = keys.indices[:, 0].numpy()
    values = keys.values.numpy()
    # Each key's first row in this batch, then only keys no earlier batch had.
    _, first = np.unique(values, return_index=True)
    records = records.numpy()
    for index in np.sort(first):
      if values[index] not in seen:
        seen.add(values[index])
        kept.append(records[rows[index]])
  return kept


def write(records: Iterable[bytes], artifact_dir: str) -> int:
  """Writes the catalogue under `artifact_dir`; returns its item count."""
  directory = os.path.join(artifact_dir, DIRECTORY)
  tf.io.gfile.makedirs(directory)
  count = 0
  with tf.io.TFRecordWriter(os.path.join(directory, _FILE), options='GZIP') as writer:
    for record in records:
      writer.write(record)
      count += 1
  return count


def find(split_dir: str) -> Optional[str]:
  """The catalogue beside a columnar split directory, or None."""
  path = os.path.join(os.path.dirname(split_dir), DIRECTORY, _FILE)
  return path if tf.io.gfile.exists(path) else None


def read(path: str) -> tf.Tensor:
  """[items] serialized raw tf.Examples."""
  return tf.concat(list(tf.data.TFRecordDataset(path, compression_type='GZIP').batch(65_536)),
                   axis=0)
