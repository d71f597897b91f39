"""CsvExampleGen with the config's column types, parsing and encoding blocks of rows.

A drop-in for `tfx.components.CsvExampleGen` (same id, same Examples artifact, same
hash split): the files are cut into byte ranges, each range is parsed, typed, encoded
and split a block at a time (blocks.py) and written straight to its split's gzipped
TFRecord files (executor.py). No per-row Beam element and no type inference: a float
column of whole numbers stays float, and a cell that is not its column's type stops the
run with the file, the line and the column. Plain or compressed files, one or many.
"""

from typing import Any, Dict, Optional

from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import executor_spec

from pipeline.components.csv_example_gen import executor
from pipeline.components.csv_example_gen import settings


def CsvExampleGen(columns: Dict[str, str], delimiter: str = ',',  # pylint: disable=invalid-name
                  time_split: Optional[Dict[str, Any]] = None, *,
                  code_fingerprint: str, **kwargs) -> example_gen_component.FileBasedExampleGen:
  """A drop-in for tfx.components.CsvExampleGen, with the same id in ML Metadata.

  Args:
    columns: {name: 'int' | 'float' | 'string'}, the columns kept and their types.
    delimiter: the character between fields.
    time_split: {column, validation, test}, or None to split by hash: the output
      splits (train, validation, test) are then by time, the latest `test` share of
      rows test and the `validation` share before them validation.
    code_fingerprint: pipeline/fingerprint.py's hash, so that edited code reruns it.
    **kwargs: FileBasedExampleGen's (input_base, input_config, output_config).

  Returns:
    The component, with id CsvExampleGen.
  """
  return example_gen_component.FileBasedExampleGen(
      custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
      custom_config=settings.pack(columns, delimiter, time_split, code_fingerprint),
      **kwargs).with_id('CsvExampleGen')
