"""Downloads the official MovieLens archives and converts their ratings to the project's CSV.

MovieLens' terms forbid redistributing its files, so the project ships none: run this
once on your machine instead. Every release becomes the same CSV, the layout of
MovieLens' own ratings.csv, which is what the configs expect:

    userId,movieId,rating,timestamp

    python data/movielens.py download 100k --out data/movielens    # fetch and convert
    python data/movielens.py convert ml-100k/u.data --out ratings.csv  # from local files

`convert` recognises the three source formats: ml-100k's tab-separated `u.data`,
ml-1m/10m's `::`-separated `ratings.dat`, and the header-led `ratings.csv` of ml-25m and
ml-latest(-small). A `.gz` output is gzip-compressed (CsvExampleGen reads both).

`--side-columns` (ML-100K and ML-1M, whose archives have user and movie tables) adds
the user's and the movie's side columns to every rating, read from the tables beside
the ratings file (`u.user`, `u.item`, `u.genre`; `users.dat`, `movies.dat`):

    userId,movieId,rating,timestamp,gender,age,occupation,zip,zip3,year,genres

A left join: a rating whose user or movie has no row there keeps its rating with those
cells empty (a missing value). `zip3` is the zip code's first three characters (a US
region; ML-1M zips also come as 12345-6789), `year` the release year (ML-100K's release
date, ML-1M's title; empty when unknown), `genres` the movie's genres joined by `|`
(ML-100K's genre flags by the names in u.genre). ML-1M's `age` is its age-group code
(1, 18, 25, 35, 45, 50, 56) and `occupation` its occupation code, as in its README.

    python data/movielens.py download 100k --out data/movielens-100k-features --side-columns
"""

import argparse
import csv
import gzip
import io
import os
import re
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from typing import Dict, Iterator, Optional, TextIO, Tuple

HEADER = ('userId', 'movieId', 'rating', 'timestamp')
_BASE_URL = 'https://files.grouplens.org/datasets/movielens/'
# Release name -> (archive, ratings file inside it).
RELEASES = {
    '100k': ('ml-100k.zip', 'ml-100k/u.data'),
    '1m': ('ml-1m.zip', 'ml-1m/ratings.dat'),
    '25m': ('ml-25m.zip', 'ml-25m/ratings.csv'),
    'latest-small': ('ml-latest-small.zip', 'ml-latest-small/ratings.csv'),
}

# The side tables each release's archive holds, beside its ratings file.
SIDE_MEMBERS = {
    '100k': ('ml-100k/u.user', 'ml-100k/u.item', 'ml-100k/u.genre'),
    '1m': ('ml-1m/users.dat', 'ml-1m/movies.dat'),
}
USER_COLUMNS = ('gender', 'age', 'occupation', 'zip', 'zip3')
MOVIE_COLUMNS = ('year', 'genres')
_TITLE_YEAR = re.compile(r'\((\d{4})\)\s*$')

Row = Tuple[int, int, float, int]
SideRow = Tuple[str, ...]


class ConversionError(ValueError):
  """A source line that is not a rating; the message names the file and line."""


def _parse_fields(fields, source: str, line_number: int) -> Row:
  if len(fields) != 4:
    raise ConversionError(f'{source}:{line_number}: expected 4 fields '
                          f'(user, movie, rating, timestamp), got {len(fields)}: {fields!r}')
  try:
    row = (int(fields[0]), int(fields[1]), float(fields[2]), int(fields[3]))
  except ValueError:
    raise ConversionError(f'{source}:{line_number}: user, movie and timestamp must be '
                          f'integers and rating a number, got {fields!r}') from None
  if not 0.0 < row[2] <= 5.0:
    raise ConversionError(f'{source}:{line_number}: rating {fields[2]} is outside (0, 5]')
  return row


def read_ratings(lines: TextIO, source: str) -> Iterator[Row]:
  """Yields (user, movie, rating, timestamp) from any of the MovieLens layouts."""
  first = lines.readline()
  if not first:
    raise ConversionError(f'{source}: is empty')
  line_number = 1
  if first.strip().lower().startswith('userid'):
    if [c.strip() for c in first.strip().split(',')] != list(HEADER):
      raise ConversionError(f'{source}:1: expected the header {",".join(HEADER)}, '
                            f'got {first.strip()!r}')
    separator, first = ',', None
  else:
    separator = '::' if '::' in first else '\t'
  if first is not None:
    yield _parse_fields(first.rstrip('\r\n').split(separator), source, line_number)
  for line in lines:
    line_number += 1
    if line.strip():
      yield _parse_fields(line.rstrip('\r\n').split(separator), source, line_number)


def _table_lines(path: str) -> Iterator[Tuple[int, str]]:
  with open(path, encoding='latin-1', newline='') as f:
    for number, line in enumerate(f, 1):
      if line.strip():
        yield number, line.rstrip('\r\n')


def _table_fields(path: str, separator: str, count: int) -> Iterator[list]:
  """Each non-blank line of a side table, split; fewer than `count` fields is an error
  naming the file and line."""
  for number, line in _table_lines(path):
    fields = line.split(separator)
    if len(fields) < count:
      raise ConversionError(f'{path}:{number}: expected {count} fields, got {len(fields)}: '
                            f'{fields!r}')
    yield fields


def _user(gender: str, age: str, occupation: str, zip_code: str) -> SideRow:
  return (gender, age, occupation, zip_code, zip_code[:3])


def read_side_tables(ratings_path: str) -> Tuple[Dict[int, SideRow], Dict[int, SideRow]]:
  """{userId: USER_COLUMNS values}, {movieId: MOVIE_COLUMNS values} from the ML-100K or
  ML-1M tables in the ratings file's directory."""
  directory = os.path.dirname(os.path.abspath(ratings_path))
  users, movies = {}, {}
  if os.path.exists(os.path.join(directory, 'u.user')):
    genre_path = os.path.join(directory, 'u.genre')
    genres = [line.split('|')[0] for _, line in _table_lines(genre_path)]
    for fields in _table_fields(os.path.join(directory, 'u.user'), '|', 5):
      users[int(fields[0])] = _user(fields[2], fields[1], fields[3], fields[4])
    for fields in _table_fields(os.path.join(directory, 'u.item'), '|', 5 + len(genres)):
      flags = fields[5:5 + len(genres)]
      movies[int(fields[0])] = (fields[2][-4:] if fields[2] else '',
                                '|'.join(g for g, flag in zip(genres, flags) if flag == '1'))
  elif os.path.exists(os.path.join(directory, 'users.dat')):
    for fields in _table_fields(os.path.join(directory, 'users.dat'), '::', 5):
      users[int(fields[0])] = _user(fields[1], fields[2], fields[3], fields[4])
    for fields in _table_fields(os.path.join(directory, 'movies.dat'), '::', 3):
      year = _TITLE_YEAR.search(fields[1])
      movies[int(fields[0])] = (year.group(1) if year else '', fields[2])
  else:
    raise ConversionError(f'{ratings_path}: --side-columns needs the user and movie tables '
                          'beside it (u.user, u.item, u.genre of ML-100K; users.dat, '
                          'movies.dat of ML-1M)')
  return users, movies


def _format(row: Row) -> Tuple[int, int, str, int]:
  return (row[0], row[1], f'{row[2]:.1f}', row[3])


def _open_output(path: str, gzipped: bool) -> TextIO:
  if gzipped:
    # mtime=0: the same ratings give the same bytes.
    return io.TextIOWrapper(gzip.GzipFile(path, 'wb', mtime=0), encoding='utf-8', newline='')
  return open(path, 'w', encoding='utf-8', newline='')


def convert(source_path: str, out_path: str, side_columns: bool = False) -> int:
  """Converts one ratings file, with the user and movie side columns when asked; the
  output appears only once all of it parsed."""
  sides: Optional[Tuple[Dict[int, SideRow], Dict[int, SideRow]]] = (
      read_side_tables(source_path) if side_columns else None)
  no_user, no_movie = ('',) * len(USER_COLUMNS), ('',) * len(MOVIE_COLUMNS)
  # Write next to the target and rename, so a bad line never leaves half a file.
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  fd, partial = tempfile.mkstemp(dir=out_dir, suffix='.partial')
  os.close(fd)
  count = 0
  try:
    with _open_output(partial, gzipped=out_path.endswith('.gz')) as out, \
        open(source_path, encoding='latin-1', newline='') as src:
      writer = csv.writer(out, lineterminator='\n')
      writer.writerow(HEADER + (USER_COLUMNS + MOVIE_COLUMNS if sides else ()))
      for row in read_ratings(src, source_path):
        if sides:
          users, movies = sides
          writer.writerow(_format(row) + users.get(row[0], no_user)
                          + movies.get(row[1], no_movie))
        else:
          writer.writerow(_format(row))
        count += 1
    os.replace(partial, out_path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  return count


def download(release: str, out_dir: str, side_columns: bool = False) -> str:
  """Fetches one release's archive and converts its ratings to out_dir/ratings.csv."""
  archive, member = RELEASES[release]
  if side_columns and release not in SIDE_MEMBERS:
    raise ConversionError(f'--side-columns: release {release} has no user table; '
                          f'use {" or ".join(SIDE_MEMBERS)}')
  os.makedirs(out_dir, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    archive_path = os.path.join(tmp, archive)
    print(f'downloading {_BASE_URL + archive}', file=sys.stderr)
    with urllib.request.urlopen(_BASE_URL + archive) as response, \
        open(archive_path, 'wb') as f:
      shutil.copyfileobj(response, f)
    with zipfile.ZipFile(archive_path) as z:
      for name in (member,) + (SIDE_MEMBERS[release] if side_columns else ()):
        z.extract(name, tmp)
    out_path = os.path.join(out_dir, 'ratings.csv')
    count = convert(os.path.join(tmp, member), out_path, side_columns)
  print(f'wrote {count} ratings to {out_path}', file=sys.stderr)
  return out_path


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  commands = parser.add_subparsers(dest='command', required=True)
  fetch = commands.add_parser('download', help='fetch an official archive and convert it')
  fetch.add_argument('release', choices=sorted(RELEASES))
  fetch.add_argument('--out', required=True, help='directory for ratings.csv')
  local = commands.add_parser('convert', help='convert a ratings file already on disk')
  local.add_argument('source', help='u.data, ratings.dat or ratings.csv')
  local.add_argument('--out', required=True, help='output CSV path (.gz to compress)')
  for command in (fetch, local):
    command.add_argument('--side-columns', action='store_true',
                         help='add the user and movie side columns (ML-100K, ML-1M)')
  args = parser.parse_args(argv)
  try:
    if args.command == 'download':
      download(args.release, args.out, args.side_columns)
    else:
      count = convert(args.source, args.out, args.side_columns)
      print(f'wrote {count} ratings to {args.out}', file=sys.stderr)
  except (ConversionError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
