"""The block-parsing CsvExampleGen writes what TFX's own does (the same examples in the
same splits), with the config's types, and names the file, line and column of a cell
that does not fit."""

import bz2
import codecs
import gzip
import os
import shutil
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from conftest import PROJECT_DIR
from pipeline.components.csv_example_gen import blocks as csv_blocks
from pipeline.components.csv_example_gen import executor as csv_example_gen
from pipeline.components.csv_example_gen import settings
from pipeline.components.csv_example_gen import input_files

SAMPLE = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')
COLUMNS = {'userId': 'int', 'movieId': 'int', 'rating': 'float', 'timestamp': 'int'}


def _generate(executor, input_base, pattern, output, columns=None, delimiter=',',
              splits=None, time_split=None):
  """Runs an ExampleGen executor as the component does: {split: sorted records}."""
  splits = splits or {'train': 4, 'eval': 1}
  _run_executor(executor, input_base, pattern, output, columns, delimiter, splits,
                time_split)
  records = {}
  for split in splits:
    files = tf.io.gfile.glob(os.path.join(output, f'Split-{split}', '*'))
    # Compared as protos: TFX writes features in header order, this module in name order.
    records[split] = sorted(
        tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
        for r in tf.data.TFRecordDataset(files, compression_type='GZIP'))
  return records


def _run_executor(executor, input_base, pattern, output, columns, delimiter, splits,
                  time_split=None):
  examples = standard_artifacts.Examples()
  examples.uri = str(output)
  properties = {
      'input_base': str(input_base),
      'input_config': proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='single_split', pattern=pattern)])),
      'output_config': proto_utils.proto_to_json(example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=[
              example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
              for name, buckets in splits.items()]))),
  }
  if columns is not None:
    properties['custom_config'] = proto_utils.proto_to_json(
        settings.pack(columns, delimiter, time_split, code_fingerprint='test'))
  executor.Do({}, {'examples': [examples]}, properties)


def _ours(tmp_path, input_base, pattern, columns=COLUMNS, delimiter=',', **splitting):
  output = tmp_path / f'ours-{len(list(tmp_path.glob("ours-*")))}'
  return _generate(csv_example_gen.Executor(), input_base, pattern, output, columns,
                   delimiter, **splitting)


def _times(records):
  return sorted(tf.train.Example.FromString(r).features.feature['timestamp'].int64_list.value[0]
                for r in records)


def test_three_hash_splits_share_out_every_row_once(tmp_path):
  data = os.path.dirname(SAMPLE)
  two = _ours(tmp_path, data, 'ratings.csv')
  three = _ours(tmp_path, data, 'ratings.csv',
                splits={'train': 8, 'validation': 1, 'test': 1})
  assert sorted(three['train'] + three['validation'] + three['test']) == sorted(
      two['train'] + two['eval'])
  assert 450 < len(three['validation']) < 750 and 450 < len(three['test']) < 750


def _small_ranges_and_blocks(monkeypatch, range_bytes=7919, block_bytes=997):
  # Prime sizes, unlike any line's length: range and block ends fall at every place in a
  # line over the sample's 6,000 rows (a few hundred ranges and blocks would cost
  # minutes of Beam overhead and test nothing more).
  monkeypatch.setattr(csv_blocks, 'RANGE_BYTES', range_bytes)
  monkeypatch.setattr(csv_blocks, 'BLOCK_BYTES', block_bytes)


TIME_SPLIT = {'column': 'timestamp', 'validation': 0.1, 'test': 0.2}
TIME_SPLITS = {'train': 1, 'validation': 1, 'test': 1}


def test_a_time_split_puts_the_latest_rows_in_test_and_those_before_in_validation(
    tmp_path, monkeypatch):
  data = os.path.dirname(SAMPLE)
  by_time = _ours(tmp_path, data, 'ratings.csv', splits=TIME_SPLITS, time_split=TIME_SPLIT)
  train, validation, test = (_times(by_time[s]) for s in ('train', 'validation', 'test'))
  assert len(train) + len(validation) + len(test) == 6000
  assert train[-1] < validation[0] <= validation[-1] < test[0]
  # Shares of 6,000 rows (a boundary time shared by rows can add a few).
  assert 1200 <= len(test) < 1210 and 600 <= len(validation) < 610
  # The boundaries are found across ranges and blocks alike (a few of each: the time
  # split reads every range twice, and each range costs Beam a second or more).
  _small_ranges_and_blocks(monkeypatch, range_bytes=45007, block_bytes=4999)
  assert len(csv_blocks.file_ranges([SAMPLE])) >= 3
  assert _ours(tmp_path, data, 'ratings.csv', splits=TIME_SPLITS,
               time_split=TIME_SPLIT) == by_time


def test_time_boundaries_take_shares_of_rows_in_time_order():
  import numpy as np  # pylint: disable=g-import-not-at-top
  ten = (np.arange(1, 11), np.ones(10, np.int64))
  assert csv_blocks.time_boundaries(ten, validation=0.2, test=0.1) == (8, 10)
  # Ties go to the later split: the 8th row in time order is at time 2, so all three
  # rows at 2 are validation; the 10th is at 9, so both rows at 9 are test.
  tied = (np.array([1, 2, 9]), np.array([5, 3, 2]))
  assert csv_blocks.time_boundaries(tied, validation=0.2, test=0.1) == (2, 9)
  merged = csv_blocks.MergeTimeCounts()
  accumulator = merged.merge_accumulators([
      merged.add_input(merged.create_accumulator(), (np.array([1, 9]), np.array([3, 1]))),
      merged.add_input(merged.create_accumulator(), (np.array([2, 9]), np.array([2, 4])))])
  values, counts = merged.extract_output(accumulator)
  assert values.tolist() == [1, 2, 9] and counts.tolist() == [3, 2, 5]


def test_a_time_split_names_a_row_without_a_time(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'in.csv').write_text('userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,4.0,\n')
  with pytest.raises(csv_blocks.CsvRowError,
                     match=r'in.csv: line 3: column timestamp: no value; '
                           r'dataset.split_by_time needs the time of every row'):
    _ours(tmp_path, data, 'in.csv', splits=TIME_SPLITS, time_split=TIME_SPLIT)


def test_the_same_examples_in_the_same_splits_as_tfx_csv_example_gen(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  # TFX's reads every column of the file; ours the configured ones (COLUMNS).
  with open(SAMPLE) as f:
    lines = f.read().splitlines()
  (data / 'ratings.csv').write_text(
      '\n'.join(','.join(line.split(',')[:len(COLUMNS)]) for line in lines) + '\n')
  theirs = _generate(tfx_csv_executor.Executor(), data, '*.csv', tmp_path / 'tfx')
  ours = _ours(tmp_path, data, '*.csv')
  assert len(ours['train']) + len(ours['eval']) == 6000
  assert ours == theirs


def test_gzip_many_files_and_many_ranges_read_every_row_once(tmp_path, monkeypatch):
  with open(SAMPLE) as f:
    header, *rows = f.read().splitlines()
  data = tmp_path / 'data'
  data.mkdir()
  with gzip.open(data / 'part-0.csv.gz', 'wt') as f:
    f.write('\n'.join([header] + rows[:2500]) + '\n')
  (data / 'part-1.csv').write_text('\n'.join([header] + rows[2500:]) + '\n')
  whole = tmp_path / 'whole'
  whole.mkdir()
  shutil.copy(SAMPLE, whole)
  expected = _ours(tmp_path, whole, '*.csv')
  _small_ranges_and_blocks(monkeypatch)
  assert len(csv_blocks.file_ranges([str(data / 'part-1.csv')])) > 20
  assert _ours(tmp_path, data, 'part-*') == expected
  assert input_files.read_header(str(data / 'part-0.csv.gz')) == header.split(',')


def _one_example(tmp_path, text, columns, delimiter=','):
  data = tmp_path / 'data'
  data.mkdir(exist_ok=True)
  (data / 'in.csv').write_text(text)
  records = _ours(tmp_path, data, '*.csv', columns, delimiter)
  found = records['train'] + records['eval']
  return [tf.train.Example.FromString(r).features.feature for r in found]


def test_types_come_from_the_config_not_from_the_values(tmp_path):
  rows = _one_example(tmp_path, 'userId,movieId,rating\n1,007,4\n2,8,5\n',
                      {'userId': 'int', 'movieId': 'string', 'rating': 'float'})
  by_user = {r['userId'].int64_list.value[0]: r for r in rows}
  assert by_user[1]['rating'].float_list.value == [4.0]  # whole numbers, still float
  assert by_user[1]['movieId'].bytes_list.value == [b'007']  # a string id keeps its zeros


def test_a_tab_separated_file_with_quotes_and_missing_cells(tmp_path):
  rows = _one_example(tmp_path, 'userId\tmovieId\trating\n1\t"a\tb"\t\n\n2\tc\t3.5\n',
                      {'userId': 'int', 'movieId': 'string', 'rating': 'float'}, '\t')
  by_user = {r['userId'].int64_list.value[0]: r for r in rows}
  assert by_user[1]['movieId'].bytes_list.value == [b'a\tb']
  assert by_user[1]['rating'].HasField('float_list')
  assert not by_user[1]['rating'].float_list.value  # a missing cell: an empty feature
  assert by_user[2]['rating'].float_list.value == [3.5]


def test_only_the_configured_columns_are_kept(tmp_path):
  rows = _one_example(tmp_path, 'userId,comment,rating\n1,nice,4.0\n',
                      {'userId': 'int', 'rating': 'float'})
  assert set(rows[0]) == {'userId', 'rating'}


@pytest.mark.parametrize('line, column, words', [
    ('3,abc,4.0', 'movieId', "CSV conversion error to int64: invalid value 'abc'"),
    ('3,12', None, 'Expected 3 columns, got 2'),
])
def test_a_bad_row_names_the_file_line_and_column(tmp_path, monkeypatch, line, column,
                                                  words):
  monkeypatch.setattr(csv_blocks, 'RANGE_BYTES', 64)  # the bad line in a later range
  good = '\n'.join(f'{u},{u % 7},4.0' for u in range(1, 11))
  text = f'userId,movieId,rating\n{good}\n{line}\n1,2,3.0\n'
  with pytest.raises(csv_blocks.CsvRowError) as raised:
    _one_example(tmp_path, text, {'userId': 'int', 'movieId': 'int', 'rating': 'float'})
  where = f'{tmp_path / "data" / "in.csv"}: line 12'
  if column:
    where += f': column {column}'
  assert str(raised.value).startswith(f'{where}: '), str(raised.value)
  assert words in str(raised.value)


def test_the_encoding_is_tfx_deterministic_serialization_for_any_values():
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  rows = 500
  ints = rng.integers(-2**63, 2**63 - 1, rows, dtype=np.int64)
  ints[:50] = rng.integers(-300, 300, 50)  # small, negative and zero too
  floats = rng.normal(0, 1e6, rows).astype(np.float64)
  strings = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in
             rng.integers(0, 300, rows)]  # some longer than 127 bytes
  missing = rng.random((3, rows)) < 0.1
  long_name = 'a' * 120  # a name too long for one-byte lengths
  table = pa.table({
      'userId': pa.array(ints, mask=missing[0]),
      'rating': pa.array(floats, mask=missing[1]),
      'movieId': pa.array(strings, pa.binary(), mask=missing[2]),
      long_name: pa.array(ints),
  })
  encoded = csv_blocks.encode(table)
  for row in range(rows):
    example = tf.train.Example()
    for name, kind in (('userId', 'int64'), ('rating', 'float'), ('movieId', 'bytes'),
                       (long_name, 'int64')):
      value = table.column(name)[row].as_py()
      kind_list = getattr(example.features.feature[name], f'{kind}_list')
      kind_list.SetInParent()  # a missing cell: an empty list, as TFX's ExampleGen writes
      if value is not None:
        kind_list.value.append(value)
    assert encoded[row] == example.SerializeToString(deterministic=True), row


def test_writing_a_range_again_replaces_its_files(tmp_path):
  """What a retried bundle does: the range's files are named by the range, so a second
  attempt overwrites the first instead of adding its rows twice."""
  data = tmp_path / 'data'
  data.mkdir()
  shutil.copy(SAMPLE, data)
  output = tmp_path / 'out'
  once = _generate(csv_example_gen.Executor(), data, '*.csv', output, COLUMNS)
  twice = _generate(csv_example_gen.Executor(), data, '*.csv', output, COLUMNS)
  assert twice == once and len(once['train']) + len(once['eval']) == 6000


@pytest.fixture(scope='module')
def million_rows(tmp_path_factory):
  """A generated 1M-row CSV (as `bench/e2e.py` generates): (its lines, header included,
  and the index of the last line of its first block, and the clean parse's seconds)."""
  rng = np.random.default_rng(0)
  count = 1_000_000
  lines = ['userId,movieId,rating,timestamp\n'] + [
      f'{u},{m},{r:.1f},{t}\n' for u, m, r, t in zip(
          rng.integers(1, 6041, count), rng.integers(1, 3953, count),
          rng.integers(1, 6, count).astype(float), 978_300_000 + np.arange(count))]
  # The block reader reads BLOCK_BYTES and then the rest of the line it ends in.
  ends = np.cumsum([len(line) for line in lines])
  last_of_block = int(np.searchsorted(ends, ends[0] + csv_blocks.BLOCK_BYTES))
  root = tmp_path_factory.mktemp('million')
  (root / 'clean').mkdir()
  (root / 'clean' / 'ratings.csv').write_text(''.join(lines))
  start = time.perf_counter()
  _run_executor(csv_example_gen.Executor(), root / 'clean', '*.csv', root / 'clean-out',
                COLUMNS, ',', {'train': 4, 'eval': 1})
  return root, lines, last_of_block, time.perf_counter() - start


@pytest.mark.parametrize('bad_cell, column, words', [
    (lambda fields: [fields[0], 'abc', *fields[2:]], 'movieId',
     "CSV conversion error to int64: invalid value 'abc'"),
    (lambda fields: fields[:2], None, 'Expected 4 columns, got 2'),
    (lambda fields: [str(2**63), *fields[1:]], 'userId',
     f"CSV conversion error to int64: invalid value '{2**63}'"),
])
def test_a_bad_cell_at_the_end_of_a_block_of_a_million_rows_is_found_in_seconds(
    million_rows, tmp_path, bad_cell, column, words):
  """Found by cutting the failed block in halves, not by a parse per line (which took
  minutes for a 6,000-line file and would take hours here)."""
  root, lines, last_of_block, clean_seconds = million_rows
  lines = list(lines)
  lines[last_of_block] = ','.join(bad_cell(lines[last_of_block].rstrip('\n').split(','))) + '\n'
  (tmp_path / 'data').mkdir()
  (tmp_path / 'data' / 'ratings.csv').write_text(''.join(lines))
  start = time.perf_counter()
  with pytest.raises(csv_blocks.CsvRowError) as raised:
    _run_executor(csv_example_gen.Executor(), tmp_path / 'data', '*.csv', tmp_path / 'out',
                  COLUMNS, ',', {'train': 4, 'eval': 1})
  seconds = time.perf_counter() - start
  where = f'{tmp_path / "data" / "ratings.csv"}: line {last_of_block + 1}'
  if column:
    where += f': column {column}'
  assert str(raised.value).startswith(f'{where}: {words}'), str(raised.value)
  assert seconds <= clean_seconds + 5, (seconds, clean_seconds)


def _compressed_cuts(tmp_path):
  """The sample's rows gzipped and cut: inside the data, right after a line end (a
  flush there, then nothing), inside the gzip trailer; and bz2 cut in its data."""
  with open(SAMPLE, 'rb') as f:
    text = f.read()
  whole = gzip.compress(text)
  half = text[:text.index(b'\n', len(text) // 2) + 1]
  flushed = zlib.compressobj(wbits=31)
  at_line_end = flushed.compress(half) + flushed.flush(zlib.Z_FULL_FLUSH)
  return {
      'inside-the-data.csv.gz': whole[:len(whole) // 2],
      'at-a-line-end.csv.gz': at_line_end,
      'in-the-trailer.csv.gz': whole[:-3],
      'inside-the-data.csv.bz2': bz2.compress(text)[:len(bz2.compress(text)) // 2],
  }


@pytest.mark.parametrize('name', ['inside-the-data.csv.gz', 'at-a-line-end.csv.gz',
                                  'in-the-trailer.csv.gz', 'inside-the-data.csv.bz2'])
def test_a_truncated_compressed_file_stops_the_run_naming_it(tmp_path, name):
  data = tmp_path / 'data'
  data.mkdir()
  shutil.copy(SAMPLE, data / 'a-good-one.csv')
  (data / name).write_bytes(_compressed_cuts(tmp_path)[name])
  with pytest.raises(input_files.CorruptInputError,
                     match=rf'{data / name}: truncated or corrupt compressed file'):
    _ours(tmp_path, data, '*.csv*')


@pytest.mark.parametrize('name, encode', [
    ('utf-8 byte order mark', lambda text: codecs.BOM_UTF8 + text.encode()),
    ('windows line ends', lambda text: text.replace('\n', '\r\n').encode()),
    ('both, and spaces around the names', lambda text: codecs.BOM_UTF8 + text.replace(
        'userId,movieId', ' userId , movieId').replace('\n', '\r\n').encode()),
])
def test_a_file_as_spreadsheet_programs_write_it_gives_the_same_examples(tmp_path, name,
                                                                         encode):
  del name
  with open(SAMPLE) as f:
    text = f.read()
  (tmp_path / 'plain').mkdir()
  (tmp_path / 'plain' / 'ratings.csv').write_text(text)
  (tmp_path / 'exported').mkdir()
  (tmp_path / 'exported' / 'ratings.csv').write_bytes(encode(text))
  assert (_ours(tmp_path, tmp_path / 'exported', '*.csv')
          == _ours(tmp_path, tmp_path / 'plain', '*.csv'))


@pytest.mark.parametrize('content, message', [
    ('userId,movie\u200bId,rating\n1,2,3\n'.encode(),
     "lacks the configured column(s) movieId (its names hold invisible characters: "
     "U+200B ZERO WIDTH SPACE; remove them)"),
    ('userId,movieId,rating\n1,2,3\n'.encode('utf-16'),
     'is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8 CSV'),
    ('us\xe9rId,movieId,rating\n1,2,3\n'.encode('latin-1'),
     'the header is not UTF-8 text (invalid continuation byte at byte 2); save the file '
     'as UTF-8 CSV'),
])
def test_an_invisible_or_foreign_header_is_named(tmp_path, content, message):
  path = tmp_path / 'ratings.csv'
  path.write_bytes(content)
  with pytest.raises(ValueError) as raised:
    input_files.check_header(str(path), ['userId', 'movieId', 'rating'])
  assert str(raised.value).startswith(f'{path}: '), str(raised.value)
  assert str(raised.value).endswith(message), str(raised.value)
