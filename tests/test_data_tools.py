"""The sample generator and the MovieLens converter, run as a user runs them."""

import collections
import csv
import gzip
import os
import subprocess
import sys

import pytest

from conftest import PROJECT_DIR, SHARED_DATA_DIR

GENERATOR = os.path.join(PROJECT_DIR, 'data', 'generate_sample.py')
CONVERTER = os.path.join(PROJECT_DIR, 'data', 'movielens.py')
SHIPPED_SAMPLE = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')


def _run(script, *args):
  return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                        timeout=300, check=False)


def _read_csv(path):
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rt', newline='') as f:
    return list(csv.reader(f))


def test_the_shipped_sample_is_what_the_generator_makes(tmp_path):
  out = tmp_path / 'ratings.csv'
  result = _run(GENERATOR, '--out', str(out), '--side-columns')
  assert result.returncode == 0, result.stderr
  with open(SHIPPED_SAMPLE, 'rb') as shipped:
    assert out.read_bytes() == shipped.read()


def test_the_sample_has_movielens_shape_and_skew():
  header, *rows = _read_csv(SHIPPED_SAMPLE)
  assert header == ['userId', 'movieId', 'rating', 'timestamp', 'gender', 'age', 'occupation',
                    'year', 'genres']
  assert len(rows) == 6000
  assert len({(r[0], r[1]) for r in rows}) == 6000  # one rating per user and movie
  ratings = [float(r[2]) for r in rows]
  assert set(ratings) <= {x / 2 for x in range(1, 11)}
  assert 0.35 < sum(r >= 4 for r in ratings) / len(ratings) < 0.55
  # Popularity is skewed: the top tenth of movies gets a large share of the ratings.
  per_movie = sorted(collections.Counter(r[1] for r in rows).values(), reverse=True)
  assert sum(per_movie[:len(per_movie) // 10]) > 0.3 * len(rows)


def test_the_generator_writes_gzip_and_refuses_impossible_sizes(tmp_path):
  out = tmp_path / 'big.csv.gz'
  assert _run(GENERATOR, '--out', str(out), '--rows', '500', '--users', '50',
              '--items', '40').returncode == 0
  assert len(_read_csv(str(out))) == 501
  result = _run(GENERATOR, '--out', str(tmp_path / 'x.csv'), '--rows', '5000',
                '--users', '10', '--items', '10')
  assert result.returncode == 2 and 'do not fit' in result.stderr


def _shared(*parts):
  path = os.path.join(SHARED_DATA_DIR, *parts)
  if not os.path.exists(path):
    pytest.skip(f'{path} is not here (MovieLens is not redistributed with the project)')
  return path


@pytest.mark.parametrize('source, rows, first', [
    (('ml-100k', 'u.data'), 100_000, ['196', '242', '3.0', '881250949']),
    (('ml-latest-small', 'ratings.csv'), 100_836, ['1', '1', '4.0', '964982703']),
])
def test_converts_the_real_movielens_files(source, rows, first, tmp_path):
  out = str(tmp_path / 'ratings.csv.gz')
  result = _run(CONVERTER, 'convert', _shared(*source), '--out', out)
  assert result.returncode == 0, result.stderr
  header, *converted = _read_csv(out)
  assert header == ['userId', 'movieId', 'rating', 'timestamp']
  assert len(converted) == rows
  assert converted[0] == first
  assert all(0.5 <= float(r[2]) <= 5.0 for r in converted)


def test_converts_the_1m_double_colon_layout(tmp_path):
  source = tmp_path / 'ratings.dat'
  source.write_text('1::1193::5::978300760\n1::661::3::978302109\n')
  out = tmp_path / 'ratings.csv'
  assert _run(CONVERTER, 'convert', str(source), '--out', str(out)).returncode == 0
  assert _read_csv(str(out)) == [['userId', 'movieId', 'rating', 'timestamp'],
                                 ['1', '1193', '5.0', '978300760'],
                                 ['1', '661', '3.0', '978302109']]


@pytest.mark.parametrize('text, words', [
    ('1\t2\t5\t978300760\n1\t2\t5\n', 'ratings.bad:2: expected 4 fields'),
    ('1\t2\tfive\t978300760\n', 'ratings.bad:1: user, movie and timestamp must be integers'),
    ('1\t2\t9\t978300760\n', 'ratings.bad:1: rating 9 is outside'),
    ('userId,itemId,rating,timestamp\n', 'ratings.bad:1: expected the header'),
    ('', 'ratings.bad: is empty'),
])
def test_bad_input_is_named_and_loses_nothing(text, words, tmp_path):
  source = tmp_path / 'ratings.bad'
  source.write_text(text)
  out = tmp_path / 'ratings.csv'
  out.write_text('the previous conversion\n')
  result = _run(CONVERTER, 'convert', str(source), '--out', str(out))
  assert result.returncode == 1
  assert words in result.stderr and 'Traceback' not in result.stderr
  # The earlier output is untouched and no partial file is left behind.
  assert out.read_text() == 'the previous conversion\n'
  assert sorted(os.listdir(tmp_path)) == ['ratings.bad', 'ratings.csv']


def test_a_missing_source_is_a_clear_error(tmp_path):
  result = _run(CONVERTER, 'convert', str(tmp_path / 'absent.data'), '--out',
                str(tmp_path / 'out.csv'))
  assert result.returncode == 1 and 'absent.data' in result.stderr
  assert not (tmp_path / 'out.csv').exists()


SIDE_HEADER = ['userId', 'movieId', 'rating', 'timestamp', 'gender', 'age', 'occupation',
               'zip', 'zip3', 'year', 'genres']


def test_side_columns_join_the_100k_user_and_item_tables(tmp_path):
  (tmp_path / 'u.data').write_text('1\t10\t4\t881250949\n2\t11\t2\t881250950\n'
                                   '9\t10\t5\t881250951\n')
  (tmp_path / 'u.genre').write_text('unknown|0\nAction|1\nComedy|2\n\n')
  (tmp_path / 'u.user').write_text('1|24|M|technician|85711\n2|53|F|other|T8H1N\n')
  (tmp_path / 'u.item').write_text(
      '10|Toy Story (1995)|01-Jan-1995||http://x|0|1|1\n'
      '11|Unknown|||http://y|1|0|0\n')
  out = tmp_path / 'ratings.csv'
  result = _run(CONVERTER, 'convert', str(tmp_path / 'u.data'), '--out', str(out),
                '--side-columns')
  assert result.returncode == 0, result.stderr
  # User 9 has no row in u.user: a left join keeps the rating, its user cells empty.
  assert _read_csv(str(out)) == [
      SIDE_HEADER,
      ['1', '10', '4.0', '881250949', 'M', '24', 'technician', '85711', '857', '1995',
       'Action|Comedy'],
      ['2', '11', '2.0', '881250950', 'F', '53', 'other', 'T8H1N', 'T8H', '', 'unknown'],
      ['9', '10', '5.0', '881250951', '', '', '', '', '', '1995', 'Action|Comedy']]


def test_side_columns_join_the_1m_user_and_movie_tables(tmp_path):
  (tmp_path / 'ratings.dat').write_text('1::1193::5::978300760\n2::7::3::978302109\n')
  (tmp_path / 'users.dat').write_text('1::F::1::10::48067\n2::M::56::16::70072-1234\n')
  (tmp_path / 'movies.dat').write_text(
      "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n")
  out = tmp_path / 'ratings.csv'
  assert _run(CONVERTER, 'convert', str(tmp_path / 'ratings.dat'), '--out', str(out),
              '--side-columns').returncode == 0
  assert _read_csv(str(out)) == [
      SIDE_HEADER,
      ['1', '1193', '5.0', '978300760', 'F', '1', '10', '48067', '480', '1975', 'Drama'],
      ['2', '7', '3.0', '978302109', 'M', '56', '16', '70072-1234', '700', '', '']]


def test_side_columns_without_the_tables_is_a_clear_error(tmp_path):
  (tmp_path / 'ratings.dat').write_text('1::1193::5::978300760\n')
  result = _run(CONVERTER, 'convert', str(tmp_path / 'ratings.dat'), '--out',
                str(tmp_path / 'out.csv'), '--side-columns')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert 'ratings.dat: --side-columns needs the user and movie tables beside it' in result.stderr
  assert not (tmp_path / 'out.csv').exists()


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED_DATA_DIR, 'ml-100k', 'u.user')),
                    reason='MovieLens 100K is not on this machine')
def test_side_columns_of_the_real_100k(tmp_path):
  out = tmp_path / 'ratings.csv'
  assert _run(CONVERTER, 'convert', os.path.join(SHARED_DATA_DIR, 'ml-100k', 'u.data'),
              '--out', str(out), '--side-columns').returncode == 0
  rows = _read_csv(str(out))
  assert rows[0] == SIDE_HEADER and len(rows) == 100_001
  columns = dict(zip(SIDE_HEADER, zip(*rows[1:])))
  assert all(columns['gender']) and all(columns['genres'])
  # A few movies have no release date.
  assert 0 < columns['year'].count('') < 100
  assert len(set(g for row in columns['genres'] for g in row.split('|'))) == 19


SPANS = os.path.join(PROJECT_DIR, 'data', 'spans.py')
_DAY = 24 * 3600
# 2026-11-30 00:00 UTC, a Monday.
_MONDAY = 1795996800


def _ratings_file(tmp_path, timestamps, name='ratings.csv'):
  path = tmp_path / name
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(['userId', 'movieId', 'rating', 'timestamp', 'genres'])
    for index, seconds in enumerate(timestamps):
      writer.writerow([index, index + 100, '4.0', seconds, 'Drama|Comedy'])
  return path


def test_spans_hold_every_row_once_in_time_order_by_week(tmp_path):
  # Sunday night and Monday morning fall in different weeks; a week with no rating
  # gets no span (spans 1 and 2 are 3 weeks apart, without a gap in their numbers).
  timestamps = [_MONDAY + 6 * _DAY + 3600, _MONDAY - 3600, _MONDAY + 5,
                _MONDAY + 21 * _DAY, _MONDAY + 2 * _DAY]
  source = _ratings_file(tmp_path, timestamps)
  result = _run(SPANS, str(source), '--by', 'week', '--out', str(tmp_path / 'spans'))
  assert result.returncode == 0, result.stderr
  index = _read_csv(str(tmp_path / 'spans' / 'spans.csv'))
  assert index == [['span', 'first_day', 'last_day', 'rows'],
                   ['1', '2026-11-23', '2026-11-29', '1'],
                   ['2', '2026-11-30', '2026-12-06', '3'],
                   ['3', '2026-12-21', '2026-12-27', '1']]
  rows = {span: _read_csv(str(tmp_path / 'spans' / f'span-00{span}' / 'ratings.csv'))
          for span in (1, 2, 3)}
  assert all(r[0] == ['userId', 'movieId', 'rating', 'timestamp', 'genres']
             for r in rows.values())
  assert sorted(int(row[3]) for r in rows.values() for row in r[1:]) == sorted(timestamps)
  assert [int(row[3]) for row in rows[2][1:]] == [timestamps[0], timestamps[2], timestamps[4]]
  assert rows[2][1][4] == 'Drama|Comedy'


def test_many_daily_spans_and_months(tmp_path):
  # More spans than files kept open at once, in an order that revisits old ones.
  timestamps = [_MONDAY + (i * 37 % 90) * _DAY for i in range(300)]
  source = _ratings_file(tmp_path, timestamps)
  assert _run(SPANS, str(source), '--by', 'day', '--out', str(tmp_path / 'days')).returncode == 0
  days = _read_csv(str(tmp_path / 'days' / 'spans.csv'))[1:]
  assert len(days) == 90 and sum(int(r[3]) for r in days) == 300
  for span, first, last, count in days:
    assert first == last
    assert len(_read_csv(str(tmp_path / 'days' / f'span-{int(span):03d}' /
                             'ratings.csv'))) == int(count) + 1
  assert _run(SPANS, str(source), '--by', 'month', '--out',
              str(tmp_path / 'months')).returncode == 0
  months = _read_csv(str(tmp_path / 'months' / 'spans.csv'))[1:]
  assert [(r[1], r[2]) for r in months] == [('2026-11-01', '2026-11-30'),
                                           ('2026-12-01', '2026-12-31'),
                                           ('2027-01-01', '2027-01-31'),
                                           ('2027-02-01', '2027-02-28')]


def test_a_bad_timestamp_names_its_line_and_writes_nothing(tmp_path):
  source = _ratings_file(tmp_path, [_MONDAY, 'soon', _MONDAY])
  result = _run(SPANS, str(source), '--out', str(tmp_path / 'spans'))
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f"spans.py: {source}: line 3: timestamp ['soon'] is not whole seconds since 1970; "
      'fix or drop the row')
  assert os.listdir(tmp_path) == ['ratings.csv']


def test_spans_never_go_into_a_folder_that_has_files(tmp_path):
  source = _ratings_file(tmp_path, [_MONDAY])
  (tmp_path / 'spans').mkdir()
  (tmp_path / 'spans' / 'keep.txt').write_text('mine')
  result = _run(SPANS, str(source), '--out', str(tmp_path / 'spans'))
  assert result.returncode == 1 and 'is not empty' in result.stderr
  assert os.listdir(tmp_path / 'spans') == ['keep.txt']
