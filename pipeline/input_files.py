"""The input CSV files' headers, read before anything heavy starts (no TensorFlow)."""

from typing import Iterable, List


def read_header(path: str) -> List[str]:
  """The column names of a CSV file, plain or compressed, local or on Cloud Storage."""
  # Beam's file systems detect compression from the name and read gs:// too.
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  with FileSystems.open(path) as f:
    return f.readline().decode('utf-8').strip().split(',')


def has_data_row(path: str) -> bool:
  """Whether the file holds a non-blank line below its header."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  with FileSystems.open(path) as f:
    f.readline()
    return any(line.strip() for line in iter(f.readline, b''))


def check_headers(files: Iterable[str], columns: Iterable[str]) -> None:
  """Fails fast, before Beam starts, when an input file lacks the configured columns."""
  expected = list(columns)
  for path in files:
    header = read_header(path)
    missing = [c for c in expected if c not in header]
    if missing:
      raise ValueError(f'{path}: header {",".join(header)} lacks the configured '
                       f'column(s) {", ".join(missing)}')
