"""One run at a time per output root.

Two runs into one output root would both run every component and push two models; a
second run is refused at once instead. The lock is the kernel's (`flock` on
`<output_root>/.run.lock`), so it goes with the process that holds it: a killed run
cannot leave it stuck. The file also says who holds it, for the refusal's message and
for telling a run that is still going from one that was killed mid-way (whose
executions ML Metadata keeps as RUNNING forever).
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
from typing import Iterator, Optional

from pipeline import paths

LOCK_NAME = '.run.lock'


class RunLockedError(ValueError):
  """Another run holds the output root; the message names it."""


def lock_path(output_root: str) -> Optional[str]:
  """The lock file of a local output root; None for a URI (no lock there)."""
  return None if paths.is_uri(output_root) else os.path.join(output_root, LOCK_NAME)


def _holder(path: str) -> dict:
  try:
    with open(path) as f:
      return json.loads(f.read() or '{}')
  except (OSError, ValueError):
    return {}


def _describe(holder: dict) -> str:
  if not holder:
    return 'another run'
  return (f"the run of {holder.get('config', '?')} (pid {holder.get('pid', '?')} on "
          f"{holder.get('host', '?')}, started {holder.get('started', '?')})")


@contextlib.contextmanager
def hold(output_root: str, config_source: str) -> Iterator[None]:
  """Holds the output root's lock while the body runs; raises RunLockedError at once
  when another process holds it."""
  path = lock_path(output_root)
  if path is None:
    yield
    return
  os.makedirs(output_root, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise RunLockedError(
          f'{output_root} is in use by {_describe(_holder(path))}; wait for it to end, '
          'or give this run another --output-root') from None
    holder = {'pid': os.getpid(), 'host': socket.gethostname(), 'config': config_source,
              'started': datetime.datetime.now().isoformat(timespec='seconds')}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)  # released: nobody holds it, whatever the file said
  finally:
    os.close(fd)  # closing the last descriptor releases the flock


def is_held(output_root: str) -> bool:
  """Whether a live process holds the output root's lock.

  Read from the holder's record rather than by taking the lock, so that a look from the
  inspection tool can never make a starting run think the root is busy.
  """
  path = lock_path(output_root)
  holder = _holder(path) if path else {}
  if not holder:
    return False
  if holder.get('host') != socket.gethostname():
    return True  # a run on another machine sharing the disk: assume it is going
  try:
    os.kill(int(holder['pid']), 0)
  except (ProcessLookupError, ValueError, KeyError):
    return False
  except PermissionError:
    pass  # alive, another user's
  return True
