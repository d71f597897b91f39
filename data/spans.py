"""Cuts a ratings CSV into spans by the day, week, month or year of its timestamps, to replay
the data as it arrived: OUT/span-001/ratings.csv, OUT/span-002/ratings.csv, ... and
OUT/spans.csv, which says which dates each span holds and how many rows.

    python data/spans.py data/movielens-100k/ratings.csv --by week --out data/movielens-100k-weeks

Every row lands in exactly one span, header and columns kept (side columns too). Spans
number the periods that have ratings, from 1, in time order (UTC; weeks start on Monday),
so there are no empty spans and no gaps. The spans appear only once all of the input
parsed: a bad timestamp names its line and writes nothing.
"""

import argparse
import collections
import csv
import datetime
import gzip
import os
import shutil
import sys
import tempfile
from typing import Callable, Dict, List, TextIO

PERIODS: Dict[str, Callable[[datetime.date], datetime.date]] = {
    'day': lambda day: day,
    'week': lambda day: day - datetime.timedelta(days=day.weekday()),
    'month': lambda day: day.replace(day=1),
    'year': lambda day: day.replace(month=1, day=1),
}
INDEX_HEADER = ('span', 'first_day', 'last_day', 'rows')


class SpanError(ValueError):
  """The input cannot be cut; the message names the file and line."""


def _open(path: str) -> TextIO:
  if path.endswith('.gz'):
    return gzip.open(path, 'rt', encoding='utf-8', newline='')
  return open(path, encoding='utf-8', newline='')


def _period_end(start: datetime.date, by: str) -> datetime.date:
  if by == 'day':
    return start
  if by == 'week':
    return start + datetime.timedelta(days=6)
  if by == 'year':
    return start.replace(month=12, day=31)
  following = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
  return following - datetime.timedelta(days=1)


def _periods(path: str, by: str) -> List[datetime.date]:
  """Each row's period start, in file order; raises SpanError naming a bad line."""
  with _open(path) as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if not header or 'timestamp' not in header:
      raise SpanError(f'{path}: line 1 must be a header with a timestamp column '
                      '(the layout data/movielens.py writes)')
    column = header.index('timestamp')
    found = []
    for line_number, row in enumerate(reader, start=2):
      try:
        seconds = int(row[column])
      except (IndexError, ValueError):
        raise SpanError(f'{path}: line {line_number}: timestamp {row[column:column + 1]} '
                        'is not whole seconds since 1970; fix or drop the row') from None
      day = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).date()
      found.append(PERIODS[by](day))
  return found


def cut(path: str, by: str, out_dir: str) -> List[tuple]:
  """Writes the spans of `path` under `out_dir` (which must not exist or be empty);
  returns the index rows (span, first day, last day, rows)."""
  if os.path.isdir(out_dir) and os.listdir(out_dir):
    raise SpanError(f'{out_dir} is not empty; choose a new --out (spans are never mixed)')
  periods = _periods(path, by)
  counts = collections.Counter(periods)
  number = {start: index for index, start in enumerate(sorted(counts), start=1)}
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  partial = tempfile.mkdtemp(dir=parent, prefix='.spans-')
  try:
    writers, files = {}, []
    with _open(path) as f:
      reader = csv.reader(f)
      header = next(reader)
      for span in number.values():
        os.makedirs(os.path.join(partial, f'span-{span:03d}'))
      for row, start in zip(reader, periods):
        span = number[start]
        if span not in writers:
          # Append mode: only a few files are open at once, however many spans.
          if len(writers) >= 64:
            for handle in files:
              handle.close()
            writers, files = {}, []
          target = os.path.join(partial, f'span-{span:03d}', 'ratings.csv')
          fresh = not os.path.exists(target)
          handle = open(target, 'a', encoding='utf-8', newline='')
          files.append(handle)
          writers[span] = csv.writer(handle, lineterminator='\n')
          if fresh:
            writers[span].writerow(header)
        writers[span].writerow(row)
    for handle in files:
      handle.close()
    index = [(number[start], start.isoformat(), _period_end(start, by).isoformat(),
              counts[start]) for start in sorted(counts)]
    with open(os.path.join(partial, 'spans.csv'), 'w', newline='') as f:
      writer = csv.writer(f, lineterminator='\n')
      writer.writerow(INDEX_HEADER)
      writer.writerows(index)
    if os.path.isdir(out_dir):
      os.rmdir(out_dir)
    os.replace(partial, out_dir)
  finally:
    if os.path.isdir(partial):
      shutil.rmtree(partial)
  return index


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('ratings', help='a ratings CSV with a timestamp column (.gz too)')
  parser.add_argument('--by', choices=sorted(PERIODS), default='week')
  parser.add_argument('--out', required=True, help='new folder for span-NNN/ratings.csv')
  args = parser.parse_args(argv)
  try:
    index = cut(args.ratings, args.by, args.out)
  except (SpanError, OSError) as e:
    print(f'spans.py: {e}', file=sys.stderr)
    return 1
  first, last = index[0], index[-1]
  print(f'wrote {len(index)} spans by {args.by} to {args.out}: span 1 from {first[1]}, '
        f'span {last[0]} to {last[2]}; {sum(r[3] for r in index):,} rows', file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
