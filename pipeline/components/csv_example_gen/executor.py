"""CsvExampleGen's executor: CSV files to the Examples artifact's splits.

The files are cut into byte ranges; each range is parsed, typed, encoded and split a
block at a time (blocks.py) and written straight to its split's gzipped TFRecord files.
A split by time first reads the time column alone to find the two boundary times.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from pyarrow import lib as arrow_lib
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from pipeline.components.csv_example_gen import blocks as csv_blocks
from pipeline.components.csv_example_gen import input_files
from pipeline.components.csv_example_gen import settings

FILE_PREFIX = 'data_tfrecord'  # what TFX's own ExampleGen names its files
# zlib's fastest level: half the default level's writing time on 1M rows (bench/README.md).
_GZIP_FAST = tf.io.TFRecordOptions(compression_type='GZIP', compression_level=1)


class _ParseRange:
  """Parses one file range into typed Arrow tables, a block at a time."""

  def __init__(self, header: List[str], columns: Dict[str, str], delimiter: str):
    self._header, self._columns, self._delimiter = header, columns, delimiter

  def tables(self, file_range: csv_blocks.FileRange):
    for offset, block in csv_blocks.read_blocks(file_range):
      try:
        yield offset, csv_blocks.parse_block(block, self._header, self._columns,
                                             self._delimiter)
      except arrow_lib.ArrowInvalid:
        raise csv_blocks.row_error(
            block, csv_blocks.line_number(file_range.path, offset), file_range.path,
            self._header, self._columns, self._delimiter) from None


class _TimeCounts(beam.DoFn):
  """A range's distinct times and how many rows have each, for the split boundaries."""

  def __init__(self, parse: _ParseRange, column: str):
    super().__init__()
    self._parse, self._column = parse, column

  def process(self, numbered_range: Tuple[int, int, csv_blocks.FileRange]):
    file_range = numbered_range[2]
    for offset, table in self._parse.tables(file_range):
      try:
        yield csv_blocks.time_counts(table, self._column)
      except csv_blocks.MissingTimeError as e:
        line = csv_blocks.line_number(file_range.path, offset) + e.row
        raise csv_blocks.CsvRowError(
            f'{file_range.path}: line {line}: column {self._column}: no value; '
            f'dataset.split_by_time needs the time of every row') from None


class _WriteRange(beam.DoFn):
  """Reads one file range and writes its rows into the splits' TFRecord files."""

  def __init__(self, parse: _ParseRange, buckets: List[int], split_dirs: List[str],
               time_column: Optional[str] = None):
    super().__init__()
    self._parse, self._buckets, self._split_dirs = parse, buckets, split_dirs
    self._time_column = time_column

  def process(self, numbered_range: Tuple[int, int, csv_blocks.FileRange],
              time_boundaries: Optional[Tuple[float, float]] = None):
    # Named by the range: a retried bundle (Dataflow retries failed work) rewrites the
    # same files instead of adding a second copy of their rows.
    index, count, file_range = numbered_range
    name = f'{FILE_PREFIX}-{index:05d}-of-{count:05d}.gz'
    writers = [None] * len(self._split_dirs)
    try:
      for _, table in self._parse.tables(file_range):
        examples = csv_blocks.encode(table)
        if time_boundaries is None:
          splits = csv_blocks.split_of(examples, self._buckets)
        else:
          splits = csv_blocks.split_by_time(table.column(self._time_column),
                                            time_boundaries)
        for example, split in zip(examples, splits):
          if writers[split] is None:
            writers[split] = tf.io.TFRecordWriter(
                os.path.join(self._split_dirs[split], name), options=_GZIP_FAST)
          writers[split].write(example)
    finally:
      for writer in writers:
        if writer is not None:
          writer.close()


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes the Examples artifact's splits from the CSV files the input pattern matches."""

  def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                              input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    columns, delimiter, time_split = settings.read(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])
    split_names = example_gen_utils.generate_output_split_names(input_config, output_config)
    buckets, total = [], 0
    for split in output_config.split_config.splits:
      total += split.hash_buckets
      buckets.append(total)

    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                           input_config.splits[0].pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
      raise RuntimeError(f'Split pattern {pattern} does not match any files.')
    # The same checks as before a local run, for inputs only the pipeline can read (gs://).
    header = input_files.check_header(files[0], columns, delimiter)
    for path in files[1:]:
      other = input_files.read_header(path, delimiter)
      if other != header:
        raise RuntimeError(f'{path} has a different header from {files[0]}: '
                           f'{other} != {header}')

    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    examples.split_names = artifact_utils.encode_split_names(split_names)
    split_dirs = [artifact_utils.get_split_uri([examples], name) for name in split_names]
    for directory in split_dirs:
      fileio.makedirs(directory)
    ranges = csv_blocks.file_ranges(files)
    parse = _ParseRange(header, columns, delimiter)
    with self._make_beam_pipeline() as pipeline:
      numbered_ranges = (
          pipeline
          | 'FileRanges' >> beam.Create([(index, len(ranges), file_range)
                                         for index, file_range in enumerate(ranges)])
          # Each range on its own worker, not fused with the Create above.
          | 'Spread' >> beam.Reshuffle())
      if time_split is None:
        _ = numbered_ranges | 'WriteRanges' >> beam.ParDo(
            _WriteRange(parse, buckets, split_dirs))
      else:
        # A first pass over the time column alone (the only one it parses) finds the
        # two boundary times.
        time_column = time_split['column']
        time_parse = _ParseRange(header, {time_column: columns[time_column]}, delimiter)
        boundaries = (
            numbered_ranges
            | 'TimeCounts' >> beam.ParDo(_TimeCounts(time_parse, time_column))
            | 'AllTimeCounts' >> beam.CombineGlobally(csv_blocks.MergeTimeCounts())
            | 'Boundaries' >> beam.Map(csv_blocks.time_boundaries,
                                       time_split['validation'], time_split['test']))
        _ = numbered_ranges | 'WriteRanges' >> beam.ParDo(
            _WriteRange(parse, buckets, split_dirs, time_column),
            time_boundaries=beam.pvalue.AsSingleton(boundaries))
    for directory in split_dirs:
      # A split no row went to is an empty file, not no file: StatisticsGen then counts
      # its 0 examples and the gate says so, instead of failing to find the split.
      if not fileio.glob(os.path.join(directory, '*')):
        with tf.io.TFRecordWriter(os.path.join(directory, f'{FILE_PREFIX}-empty.gz'),
                                  _GZIP_FAST):
          pass
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, 'tfrecords_gzip')
