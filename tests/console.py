"""Runs local_runner.py (or `python -m inspection`) as a person does, and reads what it
printed."""

import os
import re
import subprocess
import sys

from conftest import PROJECT_DIR

LOCAL_RUNNER = os.path.join(PROJECT_DIR, 'local_runner.py')
# A finished component's line: its id, seconds or 'cached', and its headline.
_END_LINE = re.compile(r'^  (\S+) +(\d+\.\ds|cached)(?:  (.*))?$')


def run(*args, env=None, module=None, runner=LOCAL_RUNNER) -> subprocess.CompletedProcess:
  """local_runner.py (or `python -m module`) with these arguments, in its own process;
  `runner`: another copy of local_runner.py (it imports the packages beside it)."""
  command = [sys.executable, *(['-m', module] if module else [runner]), *args]
  return subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                        timeout=900, check=False)


def finished(stdout: str):
  """{component: (seconds or 'cached', headline)} from a run's terminal output."""
  found = {}
  for line in stdout.splitlines():
    match = _END_LINE.match(line)
    if match:
      found[match.group(1)] = (match.group(2), match.group(3) or '')
  return found


def log_path(stdout: str) -> str:
  match = re.search(r'^  full log: +(\S+)$', stdout, re.MULTILINE)
  assert match, stdout
  return os.path.join(PROJECT_DIR, match.group(1))
