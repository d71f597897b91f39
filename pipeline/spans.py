"""Spans in `paths.input`: TFX's `{SPAN}` and `{YYYY}{MM}{DD}` placeholders, which of them
exist, and which one a run reads (the latest, unless `paths.span` says).

`data/movielens-100k-weeks/span-{SPAN:3}/ratings.csv` matches span-001/ratings.csv as span 1 (TFX
writes the span back into the pattern, so zero-padded names need the width: `{SPAN}`
alone matches span-1, span-12);
`logs/{YYYY}-{MM}-{DD}/*.csv` matches 2026-11-30/a.csv as span 20787, TFX's number of a
date (days since 1970-01-01). ExampleGen's driver resolves the same span the same way;
these functions let the runners check it, and say what is there, before Beam starts.
"""

import datetime
import glob
import re
from typing import Dict, List, Optional

SPAN = '{SPAN}'
DATE = ('{YYYY}', '{MM}', '{DD}')
_EPOCH = datetime.date(1970, 1, 1)
_GROUPS = {'{YYYY}': r'(?P<year>\d{4})', '{MM}': r'(?P<month>\d{2})',
           '{DD}': r'(?P<day>\d{2})'}
# {SPAN}, or {SPAN:N}: the span zero-padded to N digits.
_TOKEN = re.compile(r'\{SPAN(?::(\d+))?\}|\{YYYY\}|\{MM\}|\{DD\}')


class SpanError(ValueError):
  """No span, or not the one asked for; the message says what exists."""


def has_spans(input_glob: str) -> bool:
  return bool(_TOKEN.search(input_glob))


def is_date(input_glob: str) -> bool:
  return all(token in input_glob for token in DATE)


def label(input_glob: str, span: int) -> str:
  """How a person names the span: its number, or its date for a dated input."""
  if is_date(input_glob):
    return f'{span} ({_EPOCH + datetime.timedelta(days=span)})'
  return str(span)


def _regex(input_glob: str) -> 're.Pattern[str]':
  parts, position = [], 0
  for token in _TOKEN.finditer(input_glob):
    parts.append(_glob_regex(input_glob[position:token.start()]))
    width = token.group(1)
    parts.append(_GROUPS.get(token.group(0)) or
                 (rf'(?P<span>\d{{{width}}})' if width else r'(?P<span>\d+)'))
    position = token.end()
  parts.append(_glob_regex(input_glob[position:]))
  return re.compile(''.join(parts))


def _glob_regex(text: str) -> str:
  return ''.join(r'[^/]*' if c == '*' else r'[^/]' if c == '?' else re.escape(c)
                 for c in text)


def available(input_glob: str) -> Dict[int, List[str]]:
  """{span: its files} for every span the input matches."""
  found: Dict[int, List[str]] = {}
  pattern = _regex(input_glob)
  for path in sorted(glob.glob(_TOKEN.sub('*', input_glob))):
    match = pattern.fullmatch(path)
    if not match:
      continue
    groups = match.groupdict()
    if 'span' in groups:
      span = int(groups['span'])
      if str(span) != groups['span'] and not re.search(r'\{SPAN:\d+\}', input_glob):
        raise SpanError(f'{path} numbers its span with leading zeros: write {{SPAN:'
                        f'{len(groups["span"])}}} in paths.input (TFX writes the span back '
                        'into the pattern, padded only to the width given)')
    else:
      try:
        day = datetime.date(int(groups['year']), int(groups['month']), int(groups['day']))
      except ValueError:
        continue  # not a calendar date: TFX would not read it either
      span = (day - _EPOCH).days
    found.setdefault(span, []).append(path)
  return found


def _ranges(spans: List[int]) -> str:
  """[1, 2, 3, 5] -> '1-3, 5'."""
  runs: List[List[int]] = []
  for span in sorted(spans):
    if runs and span == runs[-1][-1] + 1:
      runs[-1].append(span)
    else:
      runs.append([span])
  return ', '.join(f'{r[0]}-{r[-1]}' if len(r) > 1 else str(r[0]) for r in runs)


def _choose(input_glob: str, found: Dict[int, List[str]], requested: Optional[int]) -> int:
  if not found:
    raise SpanError(f'matches no span: {input_glob} (each span is a folder or file of its '
                    'own; data/spans.py cuts a ratings file into them)')
  if requested is None:
    return max(found)
  if requested not in found:
    raise SpanError(f'span {requested} is not there; {input_glob} has spans '
                    f'{_ranges(list(found))}')
  return requested


def resolve(input_glob: str, requested: Optional[int]) -> int:
  """The span a run reads: `requested`, or the latest; raises SpanError saying which
  spans exist."""
  return _choose(input_glob, available(input_glob), requested)


def files(input_glob: str, requested: Optional[int]) -> List[str]:
  """The files of the span a run reads (the input is listed once)."""
  found = available(input_glob)
  return found[_choose(input_glob, found, requested)]
