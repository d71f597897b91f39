"""What CsvExampleGen's executor is told: the column types, the delimiter, the time split.

ExampleGen's `custom_config` is one proto Any; these settings travel in it as a Struct.
"""

from typing import Any, Dict, Optional, Tuple

from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

# custom_config keys: {column name: 'int' | 'float' | 'string'}, the field delimiter and,
# for a split by time, {column, validation, test} (shares of the rows); the project's
# code fingerprint, which the executor ignores: it is there for the cache key.
COLUMNS_KEY = 'columns'
DELIMITER_KEY = 'delimiter'
TIME_SPLIT_KEY = 'time_split'
CODE_FINGERPRINT_KEY = 'code_fingerprint'


def pack(columns: Dict[str, str], delimiter: str, time_split: Optional[Dict[str, Any]],
         code_fingerprint: str) -> example_gen_pb2.CustomConfig:
  """The settings as ExampleGen's CustomConfig carries them."""
  settings = struct_pb2.Struct()
  settings.update({COLUMNS_KEY: dict(columns), DELIMITER_KEY: delimiter,
                   CODE_FINGERPRINT_KEY: code_fingerprint})
  if time_split:
    settings.update({TIME_SPLIT_KEY: dict(time_split)})
  custom_config = example_gen_pb2.CustomConfig()
  custom_config.custom_config.Pack(settings)
  return custom_config


def read(serialized: str) -> Tuple[Dict[str, str], str, Optional[Dict[str, Any]]]:
  """(columns, delimiter, time split or None) from the executor's custom_config."""
  custom_config = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(serialized, custom_config)
  settings = struct_pb2.Struct()
  custom_config.custom_config.Unpack(settings)
  values = json_format.MessageToDict(settings)
  return dict(values[COLUMNS_KEY]), values[DELIMITER_KEY], values.get(TIME_SPLIT_KEY)
