"""A split as training batches, read the way `training.input_format` says.

TFX hands the Trainer and the Tuner a split as file patterns (`<split dir>/*`): the
columnar reader reads that split's blocks, the tf_example reader parses its files.
"""

from typing import Any, List, Mapping

import numpy as np
import tensorflow as tf

from modules.data import columnar
from modules.data import tf_examples


def split_dir(file_patterns: List[str]) -> str:
  """The one split directory TFX's patterns (`<dir>/*`) point into."""
  directories = {pattern.rstrip('*').rstrip('/') for pattern in file_patterns}
  if len(directories) != 1:
    raise ValueError(f'expected the patterns of one split directory, got {file_patterns}')
  return directories.pop()


def input_dataset(input_format: str, file_patterns: List[str],
                  feature_spec: Mapping[str, Any], batch_size: int, shuffle: bool,
                  seed: int, repeat: bool = False, pipeline_id: int = 0,
                  num_pipelines: int = 1) -> tf.data.Dataset:
  """This input pipeline's part of the split as full batches of transformed features."""
  if input_format == 'columnar':
    return columnar.make_dataset(split_dir(file_patterns), batch_size, shuffle=shuffle,
                                 seed=seed, repeat=repeat, pipeline_id=pipeline_id,
                                 num_pipelines=num_pipelines)
  if input_format == 'tf_example':
    return tf_examples.make_dataset(file_patterns, feature_spec, batch_size, shuffle=shuffle,
                                    seed=seed, repeat=repeat, pipeline_id=pipeline_id,
                                    num_pipelines=num_pipelines)
  raise ValueError(f'unknown input format {input_format!r}')


def part_rows(input_format: str, file_patterns: List[str], num_pipelines: int) -> List[int]:
  """Rows each input pipeline reads of the split."""
  if input_format == 'columnar':
    return columnar.part_rows(columnar.read_manifest(split_dir(file_patterns)), num_pipelines)
  return tf_examples.part_rows(file_patterns, num_pipelines)


def steps_per_pass(input_format: str, file_patterns: List[str], num_pipelines: int,
                   global_batch_size: int, split: str) -> int:
  """Steps that every input pipeline can feed in one pass over its part of the split:
  workers step together, so the smallest part decides."""
  rows = min(part_rows(input_format, file_patterns, num_pipelines))
  steps = rows // (global_batch_size // num_pipelines)
  if steps == 0:
    raise ValueError(
        f'the {split} split has {rows} rows per input pipeline ({num_pipelines} '
        f'pipelines), fewer than one batch of {global_batch_size // num_pipelines}: '
        'lower training.batch_size or give the split more rows')
  return steps


# Rows per batch of the counting pass (any size: only the counts matter).
_COUNT_BATCH = 4096


def row_counts(input_format: str, file_patterns: List[str], feature_spec: Mapping[str, Any],
               column: str, rows: int) -> np.ndarray:
  """[rows]: how many rows of the split hold each table row in `column` (a scalar
  column), counted in one pass. Up to a batch of rows at the end of the split are not
  counted (batches are full), as an epoch does not train on them either."""
  counts = np.zeros(rows, np.int64)
  batch = min(_COUNT_BATCH, min(part_rows(input_format, file_patterns, 1)))
  for features in input_dataset(input_format, file_patterns, feature_spec, batch,
                                shuffle=False, seed=0):
    counts += np.bincount(features[column].numpy(), minlength=rows)[:rows]
  return counts
