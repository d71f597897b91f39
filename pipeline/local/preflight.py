"""What can be known wrong before any component runs, checked in seconds.

A curated schema that disagrees with the configured columns fails in Transform with a
bare KeyError or a type clash; tables larger than the machine's memory die in the
Trainer; an input of headers alone passes six components and crashes in the Trainer.
Each is one line here instead, naming the file or key and the fix, before Beam starts.
No TensorFlow: the schema is read as a protocol buffer.
"""

import os
from typing import Dict, List, Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from contract.options import known_table_values, table_bytes
from pipeline import config as config_lib
from pipeline.components.csv_example_gen import input_files

# The schema's type for each configured column type.
SCHEMA_TYPES = {'int': schema_pb2.INT, 'float': schema_pb2.FLOAT, 'string': schema_pb2.BYTES}
GB = 1e9


def check_before_run(config: config_lib.RunConfig, memory_bytes: Optional[int] = None) -> None:
  """Runs every check for a local run; raises ValueError (ConfigError for a key) with one
  line. `memory_bytes` is the memory training may use (default: what is free now)."""
  files = config_lib.check_inputs_exist(config)
  input_files.check_headers(files, config.dataset.columns, config.dataset.delimiter)
  check_has_rows(config, files)
  if config.paths.schema_file:
    check_schema(config)
  if not config.training.tpu:  # the tables are trained in this machine's memory
    check_memory(config, available_memory() if memory_bytes is None else memory_bytes)


def check_has_rows(config: config_lib.RunConfig, files: List[str]) -> None:
  """At least one input file holds a data row below its header."""
  if not any(input_files.has_data_row(path) for path in files):
    shown = files[0] if len(files) == 1 else f'{len(files)} files ({files[0]}, ...)'
    raise config_lib.ConfigError(config.source, 'paths.input',
                                 f'{shown}: a header and no data rows; nothing to train on')


def _schema_types(path: str) -> Dict[str, int]:
  schema = schema_pb2.Schema()
  with open(path) as f:
    text_format.Parse(f.read(), schema)
  return {feature.name: feature.type for feature in schema.feature}


def check_schema(config: config_lib.RunConfig) -> None:
  """The curated schema describes exactly the configured columns, with their types."""
  path = config.paths.schema_file
  if not os.path.exists(path):
    raise config_lib.ConfigError(config.source, 'paths.schema', f'no such file: {path}')
  try:
    in_schema = _schema_types(path)
  except text_format.ParseError as e:
    raise ValueError(f'{path}: not a readable schema (text Schema proto): {e}') from None
  columns = config.dataset.columns
  missing = [name for name in columns if name not in in_schema]
  if missing:
    raise ValueError(f'{path}: has no feature {", ".join(missing)} (dataset.columns in '
                     f'{config.source}); add it to the schema or rename the column')
  extra = [name for name in in_schema if name not in columns]
  if extra:
    raise ValueError(f'{path}: feature {", ".join(extra)} is not in dataset.columns of '
                     f'{config.source}; add the column or drop the feature')
  for name, column_type in columns.items():
    if in_schema[name] != SCHEMA_TYPES[column_type]:
      raise ValueError(
          f'{path}: feature {name} is {schema_pb2.FeatureType.Name(in_schema[name])}, '
          f'dataset.columns.{name} is {column_type} ({config.source}); make them agree')


def available_memory() -> int:
  """Memory free for a new process now (MemAvailable), else all of it."""
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


# The Trainer's peak memory for its tables, over the tables and their slots: the tables
# are held through training, the export (restored beside the trained model) and
# metrics.json's recall. Measured: configs/large_scale.yaml at 25M rows (3.8 GB of
# tables and Adagrad slots) peaked at 19.0 GiB, the same rows with small tables at
# 6.1 GiB: 13.9 GB more, 3.6 times the tables and slots (bench/README.md, "25M rows").
TRAINER_PEAK_OVER_TABLES = 3.6


def check_memory(config: config_lib.RunConfig, memory_bytes: int) -> None:
  """The Trainer's peak for the tables and their slots fits in this machine's free
  memory (the rows' own share, a few GB at 25M rows, is not counted)."""
  tables_and_slots = table_bytes(config.model_inputs, config.training.optimizer,
                                 bool(config.training.losses.retrieval))
  needed = tables_and_slots * TRAINER_PEAK_OVER_TABLES
  if needed > memory_bytes:
    tables = known_table_values(config.model_inputs)
    largest = max(tables, key=tables.get)
    raise config_lib.ConfigError(
        config.source, 'features',
        f'the embedding tables and their {config.training.optimizer} slots '
        f'({tables_and_slots / GB:.1f} GB) take {needed / GB:.1f} GB at the Trainer\'s '
        f'peak, more than the {memory_bytes / GB:.1f} GB '
        f'free on this machine; lower vocab_size or embedding_dim (largest: '
        f'features.{largest}), or train on a TPU (vertex_runner.py)')
