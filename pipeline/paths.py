"""Paths as the pipeline takes them: local files or URIs (gs://...), and input globs."""

import os
from typing import Tuple

# Glob characters, and the `{` of TFX's span placeholders ({SPAN}, {YYYY}, ...).
_GLOB_CHARACTERS = frozenset('*?[{')


def is_uri(path: str) -> bool:
  """A URI (gs://bucket/..., s3://...) rather than a local path."""
  return '://' in path


def resolve(base_dir: str, path: str) -> str:
  """A config's path as written, relative to the config's folder; URIs and absolute paths
  stay as they are."""
  if is_uri(path) or os.path.isabs(path):
    return path
  return os.path.normpath(os.path.join(base_dir, path))


def split_input_glob(input_glob: str) -> Tuple[str, str]:
  """`data/ml/*.csv.gz` -> (`data/ml`, `*.csv.gz`): CsvExampleGen wants a base directory
  and a pattern relative to it."""
  parts = input_glob.split('/')
  for index, part in enumerate(parts):
    if _GLOB_CHARACTERS & set(part):
      break
  else:
    index = len(parts) - 1
  base = '/'.join(parts[:index]) or '.'
  return base, '/'.join(parts[index:])
