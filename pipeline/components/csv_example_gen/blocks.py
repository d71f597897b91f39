"""CSV files to serialized tf.Examples a block of rows at a time, typed by the config.

TFX's CsvExampleGen parses, infers and encodes one row per Python call (about 10,000
rows a second here). This module reads byte ranges of the files, parses each block of
lines with Arrow's CSV reader into the configured column types, and encodes every column
of the block in C++ (tfx_bsl). The bytes of each tf.Example are those of TFX's own
`SerializeToString(deterministic=True)` (features in name order), so the hash split
puts every row where TFX's ExampleGen put it; a split by time puts the latest rows in
test. No TFX and no TensorFlow here.
"""

import hashlib
import io
import re
from typing import Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
from pyarrow import compute as pc
from pyarrow import csv as arrow_csv
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from tfx_bsl.coders import example_coder

from pipeline.components.csv_example_gen import input_files

# The config's column types as Arrow reads them. Floats are parsed as doubles and stored
# as float32, as Python's float() and tf.train.FloatList do.
ARROW_TYPES = {'int': pa.int64(), 'float': pa.float64(), 'string': pa.binary()}
# A plain file is read in ranges of this size (Dataflow workers take ranges), and a range
# is parsed in blocks of about BLOCK_BYTES; a compressed file is one range.
RANGE_BYTES = 64 << 20
BLOCK_BYTES = 8 << 20


class CsvRowError(ValueError):
  """A row that does not fit its columns; the message names the file, line and column."""


class FileRange(NamedTuple):
  path: str
  start: int
  end: int  # exclusive; -1: to the end of the file


def is_compressed(path: str) -> bool:
  return path.endswith(('.gz', '.bz2', '.deflate', '.zst', '.zstd', '.lzma', '.xz'))


def file_ranges(paths: Sequence[str]) -> List[FileRange]:
  """Ranges covering every file: RANGE_BYTES each for plain files, whole compressed ones."""
  ranges = []
  for path in paths:
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    if is_compressed(path):
      ranges.append(FileRange(path, 0, -1))
      continue
    ranges.extend(FileRange(path, start, min(start + RANGE_BYTES, size))
                  for start in range(0, max(size, 1), RANGE_BYTES))
  return ranges


def read_blocks(file_range: FileRange) -> Iterator[Tuple[int, bytes]]:
  """The lines that start in the range (the header excluded), in blocks of whole lines,
  each with its offset in the (decompressed) file.

  A line belongs to the range it starts in, so ranges of one file share no line and
  miss none. Quoted fields may not span lines.
  """
  path, start, end = file_range
  with input_files.open_input(path) as f:  # decompresses by file name
    if start == 0:
      f.readline()  # the header
    else:
      f.seek(start - 1)
      f.readline()  # the end of a line that started in the previous range
    while True:
      offset = f.tell()
      if 0 <= end <= offset:
        return
      block = f.read(BLOCK_BYTES if end < 0 else min(BLOCK_BYTES, end - offset))
      if not block:
        return
      if not block.endswith(b'\n'):
        block += f.readline()  # the rest of the last line, past the block or the range
      yield offset, block


def line_number(path: str, offset: int) -> int:
  """The 1-based number of the line starting at byte `offset` of the file."""
  newlines = 0
  with input_files.open_input(path) as f:
    while offset > 0:
      chunk = f.read(min(offset, 1 << 24))
      if not chunk:
        break
      newlines += chunk.count(b'\n')
      offset -= len(chunk)
  return newlines + 1


def parse_block(block: bytes, header: Sequence[str], columns: Mapping[str, str],
                delimiter: str, use_threads: bool = True) -> pa.Table:
  """The configured columns of a block of lines, typed; raises pyarrow.ArrowInvalid."""
  return arrow_csv.read_csv(
      io.BytesIO(block),
      read_options=arrow_csv.ReadOptions(column_names=list(header),
                                         block_size=max(len(block), 1 << 20),
                                         use_threads=use_threads),
      parse_options=arrow_csv.ParseOptions(delimiter=delimiter),
      convert_options=arrow_csv.ConvertOptions(
          column_types={name: ARROW_TYPES[kind] for name, kind in columns.items()},
          include_columns=list(columns),
          # An empty cell is a missing value, of any type: an empty feature, as in TFX.
          strings_can_be_null=True))


def row_error(block: bytes, first_line: int, path: str, header: Sequence[str],
              columns: Mapping[str, str], delimiter: str) -> CsvRowError:
  """The error of a block Arrow refused, at the first line and the column it is about.

  Arrow names the column but not always the row. A line's error does not depend on the
  other lines, so the block is cut in halves and the first half that fails is cut again,
  down to one line: about log2(lines) parses of ever smaller parts, single-threaded
  (Arrow's thread pool costs more than a small part's parse). `first_line` is the
  1-based line number of the block's first line in the file.
  """
  lines = block.splitlines(keepends=True)

  def fails(start: int, stop: int) -> Optional[pa.ArrowInvalid]:
    part = b''.join(line for line in lines[start:stop] if line.strip())
    if not part:
      return None
    try:
      parse_block(part, header, columns, delimiter, use_threads=False)
    except pa.ArrowInvalid as e:
      return e
    return None

  start, stop = 0, len(lines)
  # Invariant: lines[start:stop] holds the first line that fails.
  while stop - start > 1:
    middle = (start + stop) // 2
    if fails(start, middle) is not None:
      stop = middle
    else:
      start = middle
  error = fails(start, stop)
  if error is None:
    return CsvRowError(f'{path}: lines from {first_line}: cannot be read as CSV')
  message = str(error).strip().splitlines()[0]
  column = _COLUMN.match(message)
  where = f'{path}: line {first_line + start}'
  if column and int(column.group(1)) < len(header):
    where += f': column {header[int(column.group(1))]}'
  # Arrow's own row number counts within the part parsed last: the line says where.
  detail = _ROW.sub('', _COLUMN.sub('', message).replace('CSV parse error: ', ''))
  return CsvRowError(f'{where}: {detail}')


_COLUMN = re.compile(r'^In CSV column #(\d+): ')
_ROW = re.compile(r'^Row #\d+: ')


def _encoded_fields(values: pa.Array, name: str) -> pa.Array:
  """Per row, the bytes one feature adds to a serialized Example (its map entry, tag and
  length included), encoded by tfx_bsl in C++: any type, any length."""
  present = np.asarray(values.is_valid(), dtype=np.int32)
  offsets = np.concatenate([[0], np.cumsum(present)]).astype(np.int32)
  lists = pa.ListArray.from_arrays(pa.array(offsets), values.drop_null())
  encoded = example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays([lists], [name]))
  # Each is Example{features: Features{feature: {name: ...}}}: a tag byte and a length
  # around the Features, whose own bytes are the one map entry, tag and length included.
  return pa.array([e[1 + _varint_size(e, 1):] for e in encoded], pa.binary())


# Wire tags: Features.feature (1), its entry's key (1) and value (2), Feature.float_list
# (2) and int64_list (3), and the packed `value` (1) of either list.
_ENTRY, _KEY, _VALUE, _FLOATS, _INTS, _PACKED = 0x0A, 0x0A, 0x12, 0x12, 0x1A, 0x0A


def _number_fields(values: pa.Array, name: str) -> pa.Array:
  """What `_encoded_fields` returns, for a column of int64 or float32 scalars, built with
  numpy: every row is the same few tags and lengths around its value's bytes."""
  key = np.frombuffer(name.encode(), dtype=np.uint8)
  k, rows = len(key), len(values)
  valid = np.asarray(values.is_valid())
  if pa.types.is_integer(values.type):
    tag = _INTS
    raw = values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)
    # A varint: 7 bits a byte, low bits first, the high bit set on all but the last.
    sizes = np.ones(rows, np.int64)
    for shift in range(7, 64, 7):
      sizes += (raw >> np.uint64(shift)) > 0
    payload = np.stack([((raw >> np.uint64(7 * i)) & np.uint64(0x7F)).astype(np.uint8)
                        for i in range(10)], axis=1)
    payload[np.arange(10)[None, :] < (sizes - 1)[:, None]] |= 0x80
  else:
    tag = _FLOATS
    floats = values.fill_null(0).to_numpy(zero_copy_only=False).astype('<f4')
    payload = floats.view(np.uint8).reshape(rows, 4)
    sizes = np.full(rows, 4, np.int64)
  width = 10 + k + payload.shape[1]
  fields = np.zeros((rows, width), np.uint8)
  fields[:, 0] = _ENTRY
  fields[:, 1] = 8 + k + sizes  # the entry: key field, value field
  fields[:, 2], fields[:, 3], fields[:, 4:4 + k] = _KEY, k, key
  fields[:, 4 + k], fields[:, 5 + k] = _VALUE, 4 + sizes  # the Feature
  fields[:, 6 + k], fields[:, 7 + k] = tag, 2 + sizes  # its list
  fields[:, 8 + k], fields[:, 9 + k] = _PACKED, sizes  # the packed values
  fields[:, 10 + k:] = payload
  lengths = 10 + k + sizes
  missing = ~valid  # an empty list: Feature{int64_list {}}, as TFX writes a missing cell
  fields[missing, 1], fields[missing, 5 + k], fields[missing, 7 + k] = 6 + k, 2, 0
  lengths[missing] = 8 + k
  data = fields[np.arange(width)[None, :] < lengths[:, None]]
  offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
  return pa.BinaryArray.from_buffers(pa.binary(), rows,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _fields(column: pa.ChunkedArray, name: str) -> pa.Array:
  values = column.combine_chunks()
  if pa.types.is_floating(values.type):
    values = values.cast(pa.float32())  # tf.train.FloatList holds float32
  # Lengths of one byte each (the numpy path) hold for names shorter than 100 bytes.
  if (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)) and (
      len(name.encode()) < 100):
    return _number_fields(values, name)
  return _encoded_fields(values, name)


def _varint_size(data: bytes, offset: int) -> int:
  size = 1
  while data[offset + size - 1] & 0x80:
    size += 1
  return size


def _varint(value: int) -> bytes:
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


# An Example's first bytes: the tag of its `features` field and the Features' length.
_EXAMPLE_PREFIX = pa.array([b'\n' + _varint(length) for length in range(1 << 14)],
                           pa.binary())


def encode(table: pa.Table) -> List[bytes]:
  """Serialized tf.Examples of a table's rows, byte for byte TFX's deterministic ones
  (`SerializeToString(deterministic=True)`: features in name order)."""
  fields = [_fields(table.column(name), name) for name in sorted(table.column_names)]
  features = pc.binary_join_element_wise(*fields, b'')
  lengths = pc.binary_length(features)
  if pc.max(lengths).as_py() >= 1 << 14:
    return [b'\n' + _varint(len(f)) + f for f in features.to_pylist()]
  return pc.binary_join_element_wise(_EXAMPLE_PREFIX.take(lengths), features,
                                     b'').to_pylist()


def split_of(examples: Sequence[bytes], buckets: Sequence[int]) -> np.ndarray:
  """The split index of each example, as TFX's ExampleGen assigns it: the sha256 of the
  serialized example modulo the total hash buckets, against the cumulative buckets."""
  total = buckets[-1]
  hashed = np.fromiter(
      (int.from_bytes(hashlib.sha256(e).digest(), 'big') % total for e in examples),
      dtype=np.int64, count=len(examples))
  return np.searchsorted(np.asarray(buckets), hashed, side='right')


def time_counts(table: pa.Table, column: str) -> Tuple[np.ndarray, np.ndarray]:
  """The distinct values of a block's time column, ascending, and their row counts.

  Raises MissingTimeError with the row of the first missing value: a split by time needs
  every row's time.
  """
  times = table.column(column)
  if times.null_count:
    raise MissingTimeError(pc.index(pc.is_null(times), True).as_py())
  return np.unique(times.to_numpy(), return_counts=True)


class MissingTimeError(ValueError):
  def __init__(self, row: int):
    super().__init__(row)
    self.row = row


class MergeTimeCounts(beam.CombineFn):
  """(distinct times, counts) of blocks -> the same of all of them. Blocks are kept as
  they come and merged (a sort) once there are many, not at every block."""
  _MERGE_AT = 64

  def create_accumulator(self):
    return []

  def add_input(self, accumulator, counts):
    accumulator.append(counts)
    return self._compacted(accumulator)

  def merge_accumulators(self, accumulators):
    return self._compacted([counts for accumulator in accumulators for counts in accumulator])

  def extract_output(self, accumulator):
    if not accumulator:
      return np.empty(0), np.empty(0, np.int64)
    return self._merged(accumulator)

  def _compacted(self, accumulator):
    return [self._merged(accumulator)] if len(accumulator) >= self._MERGE_AT else accumulator

  @staticmethod
  def _merged(accumulator):
    values, counts = zip(*accumulator)
    merged, inverse = np.unique(np.concatenate(values), return_inverse=True)
    return merged, np.bincount(inverse, np.concatenate(counts)).astype(np.int64)


def time_boundaries(counts: Tuple[np.ndarray, np.ndarray], validation: float,
                    test: float) -> Tuple[float, float]:
  """The first validation time and the first test time: rows at or after the second are
  the latest `test` share of all rows, those from the first up to it the `validation`
  share before them (rows that share a boundary time go to the later split, so a split
  can be a little larger than its share)."""
  values, rows = counts
  if not len(values):
    raise ValueError('a split by time found no rows')
  ends = np.cumsum(rows)  # rows up to and including each distinct time

  def time_at(share_before: float) -> float:
    position = int(np.floor(share_before * ends[-1]))  # 0-based row in time order
    return float(values[np.searchsorted(ends, position, side='right')])

  return time_at(1 - test - validation), time_at(1 - test)


def split_by_time(times: pa.ChunkedArray, boundaries: Tuple[float, float]) -> np.ndarray:
  """Each row's split index: 0 (train) before the first boundary, 2 (test) from the
  second, 1 (validation) between."""
  return np.searchsorted(np.asarray(boundaries), times.to_numpy(), side='right')
