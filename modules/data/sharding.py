"""How a split is shared among input pipelines (one per worker), for both readers.

A split is stored in units (tf.Example files, columnar blocks). With at least as many
units as pipelines, pipeline i reads every n-th unit whole; with fewer, it reads every
n-th row of each unit. Either way the parts are disjoint and together cover the split.
"""

from typing import List, Sequence


def by_unit(units: int, num_pipelines: int) -> bool:
  """Whether each pipeline reads whole units (else every n-th row of each unit)."""
  return units >= num_pipelines


def rows_per_pipeline(unit_rows: Sequence[int], num_pipelines: int) -> List[int]:
  """The rows each pipeline reads, given each unit's rows in unit order."""
  if by_unit(len(unit_rows), num_pipelines):
    return [sum(unit_rows[i::num_pipelines]) for i in range(num_pipelines)]
  return [sum(len(range(i, rows, num_pipelines)) for rows in unit_rows)
          for i in range(num_pipelines)]
