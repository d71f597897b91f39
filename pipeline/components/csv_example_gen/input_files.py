"""Opening the input files, and their headers, read before anything heavy starts (no
TensorFlow)."""

import bz2
import codecs
import contextlib
import gzip
import lzma
import unicodedata
from typing import BinaryIO, Iterable, Iterator, List

# Compressions read with Python's own readers, which check the end of the stream (and
# gzip's CRC and length): Beam's reader stops silently where a truncated file ends.
_CHECKED_READERS = {'.gz': lambda raw: gzip.GzipFile(fileobj=raw, mode='rb'),
                    '.bz2': bz2.BZ2File, '.xz': lzma.LZMAFile, '.lzma': lzma.LZMAFile}


class CorruptInputError(ValueError):
  """A compressed input file that ends early or does not decompress."""


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
  """The file's bytes, decompressed by its name's extension; local or on Cloud Storage
  (Beam's file systems). Reading a truncated or corrupt .gz, .bz2 or .xz file raises
  CorruptInputError naming it."""
  from apache_beam.io.filesystems import CompressionTypes, FileSystems  # pylint: disable=g-import-not-at-top
  reader = next((r for suffix, r in _CHECKED_READERS.items() if path.endswith(suffix)), None)
  if reader is None:
    with FileSystems.open(path) as f:
      yield f
    return
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
    with reader(raw) as f:
      try:
        yield f
      except (EOFError, OSError, lzma.LZMAError) as e:
        raise CorruptInputError(f'{path}: truncated or corrupt compressed file ({e}); '
                                'compress it again, or replace it') from None


_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_header(path: str, delimiter: str = ',') -> List[str]:
  """The column names of a CSV file, plain or compressed, local or on Cloud Storage.

  Files as spreadsheet programs write them are read as they mean: a UTF-8 byte order
  mark, Windows line ends and spaces around a name are not part of the names. A UTF-16
  file, or a header that is not UTF-8, is refused with ValueError saying so.
  """
  with open_input(path) as f:
    line = f.readline()
  if line.startswith(_UTF16_MARKS):
    raise ValueError(f'{path}: is UTF-16 text (it starts with a UTF-16 byte order mark); '
                     'save it as UTF-8 CSV')
  try:
    text = line.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise ValueError(f'{path}: the header is not UTF-8 text ({e.reason} at byte '
                     f'{e.start}); save the file as UTF-8 CSV') from None
  return [name.strip() for name in text.rstrip('\r\n').split(delimiter)]


def _invisible(text: str) -> List[str]:
  """The characters of `text` a person cannot see, by their Unicode names."""
  return [f'U+{ord(c):04X} {unicodedata.name(c, "")}'.strip() for c in text
          if unicodedata.category(c) in ('Cf', 'Cc', 'Zs') and c != ' ']


def has_data_row(path: str) -> bool:
  """Whether the file holds a non-blank line below its header."""
  with open_input(path) as f:
    f.readline()
    return any(line.strip() for line in iter(f.readline, b''))


_OTHER_DELIMITERS = {'\t': 'tab-separated: dataset.delimiter: "\\t"',
                     ',': 'comma-separated: dataset.delimiter: ","',
                     ';': 'semicolon-separated: dataset.delimiter: ";"',
                     '|': 'pipe-separated: dataset.delimiter: "|"'}


def check_headers(files: Iterable[str], columns: Iterable[str], delimiter: str = ',') -> None:
  """Fails fast, before Beam starts, when an input file lacks the configured columns."""
  for path in files:
    check_header(path, columns, delimiter)


def check_header(path: str, columns: Iterable[str], delimiter: str = ',') -> List[str]:
  """The file's column names, once they hold the configured ones; else ValueError
  naming the file and what is wrong (an empty file, the wrong delimiter, a column)."""
  expected = list(columns)
  header = read_header(path, delimiter)
  if header == ['']:
    raise ValueError(f'{path}: is empty; the first line must name the columns '
                     f'({delimiter.join(expected)})')
  missing = [c for c in expected if c not in header]
  if missing:
    if len(header) == 1:
      looks = next((hint for other, hint in _OTHER_DELIMITERS.items()
                    if other != delimiter and other in header[0]), None)
      if looks:
        raise ValueError(f'{path}: the header is one column when split on '
                         f'{delimiter!r}; the file looks {looks}')
    hidden = sorted({c for name in header for c in _invisible(name)})
    note = (f' (its names hold invisible characters: {", ".join(hidden)}; remove them)'
            if hidden else '')
    raise ValueError(f'{path}: header {delimiter.join(header)!r} lacks the configured '
                     f'column(s) {", ".join(missing)}{note}')
  return header
