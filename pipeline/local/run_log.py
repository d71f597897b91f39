"""Where a local run's output goes: all of it to a log file, the terminal kept for people.

TFX, Beam, TensorFlow's C++ runtime and Beam's worker processes all write to the
process's standard output and error, thousands of lines a run. Redirecting the two file
descriptors (not just Python's sys.stdout) catches every one of them.
"""

import contextlib
import datetime
import os
import sys
import tempfile
from typing import Iterator, TextIO

from pipeline import paths


def log_path(output_root: str) -> str:
  """A new log file's path under the run's output root (or the temp dir for a URI)."""
  directory = (os.path.join(tempfile.gettempdir(), 'ranker-logs') if paths.is_uri(output_root)
               else os.path.join(output_root, 'logs'))
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  return os.path.join(directory, f'run-{stamp}.log')


@contextlib.contextmanager
def output_to(path: str) -> Iterator[TextIO]:
  """Sends everything written to file descriptors 1 and 2 to `path` (appending), and
  yields a stream that still writes to the terminal (the original standard output)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  console = os.fdopen(os.dup(saved[0]), 'w', buffering=1)
  try:
    os.dup2(log, 1)
    os.dup2(log, 2)
    yield console
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in (*saved, log):
      os.close(fd)
    console.close()


def send_stderr_to(path: str) -> None:
  """From now on, file descriptor 2 writes to `path` (appending)."""
  sys.stderr.flush()
  log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  os.dup2(log, 2)
  os.close(log)
