"""One run at a time per output root, with real processes: a second runner is refused
at once, a killed run leaves no stuck lock, and its unfinished execution is shown as
interrupted rather than running."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import PROJECT_DIR
from pipeline.local import run_lock

LOCAL_RUNNER = os.path.join(PROJECT_DIR, 'local_runner.py')


def _runner(*args, **kwargs):
  return subprocess.Popen([sys.executable, LOCAL_RUNNER, *args], cwd=PROJECT_DIR,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs)


def _kill(process: subprocess.Popen) -> None:
  """SIGKILL to the runner and everything it started (Beam workers included)."""
  if process.poll() is None:
    os.killpg(process.pid, signal.SIGKILL)
  process.wait(timeout=60)


def _running_components(store: str):
  """Components with an execution recorded as RUNNING, read straight from the SQLite
  file (the runner is writing it)."""
  if not os.path.exists(store):
    return []
  try:
    with sqlite3.connect(f'file:{store}?mode=ro', uri=True, timeout=5) as db:
      rows = db.execute('SELECT Type.name FROM Execution JOIN Type ON '
                        'Execution.type_id = Type.id WHERE last_known_state = 2').fetchall()
  except sqlite3.OperationalError:  # tables not there yet
    return []
  return [name for name, in rows]


def test_a_second_run_is_refused_and_a_killed_run_shows_as_interrupted(tmp_path):
  output_root = tmp_path / 'out'
  store = str(output_root / 'metadata.sqlite')
  first = _runner('--output-root', str(output_root))
  try:
    deadline = time.monotonic() + 300
    while not _running_components(store):
      assert first.poll() is None, first.communicate()
      assert time.monotonic() < deadline, 'no component started within 300 s'
      time.sleep(0.5)
    assert run_lock.is_held(str(output_root))

    second = subprocess.run([sys.executable, LOCAL_RUNNER, '--output-root', str(output_root)],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
                            check=False)
    assert second.returncode == 2, second.stderr
    assert second.stdout == ''
    assert second.stderr.startswith(
        f'local_runner.py: {output_root} is in use by the run of configs/sample.yaml '
        f'(pid {first.pid} on ')
    assert second.stderr.endswith(
        'wait for it to end, or give this run another --output-root\n')
    assert len(second.stderr.splitlines()) == 1
  finally:
    _kill(first)

  assert _running_components(store), 'the killed run left no RUNNING execution'
  assert not run_lock.is_held(str(output_root))
  inspected = subprocess.run(
      [sys.executable, '-m', 'inspection', 'runs', '--store', store], cwd=PROJECT_DIR,
      capture_output=True, text=True, timeout=300, check=True)
  assert 'INTERRUPTED' in inspected.stdout and 'RUNNING' not in inspected.stdout, (
      inspected.stdout)
  # The kernel released the killed run's lock: the root can be taken again at once.
  with run_lock.hold(str(output_root), 'again'):
    assert run_lock.is_held(str(output_root))
  assert not run_lock.is_held(str(output_root))


def test_the_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', textwrap.dedent(f'''
      import sys, time
      sys.path.insert(0, {PROJECT_DIR!r})
      from pipeline.local import run_lock
      with run_lock.hold({str(tmp_path)!r}, 'configs/x.yaml'):
        print('held', flush=True)
        time.sleep(120)
      ''')], stdout=subprocess.PIPE, text=True, start_new_session=True)
  try:
    assert holder.stdout.readline() == 'held\n'
    with pytest.raises(run_lock.RunLockedError, match=(
        rf'{tmp_path} is in use by the run of configs/x.yaml \(pid {holder.pid} on .*, '
        r'started .*\); wait for it to end, or give this run another --output-root')):
      with run_lock.hold(str(tmp_path), 'configs/y.yaml'):
        pass
  finally:
    _kill(holder)
  assert not run_lock.is_held(str(tmp_path))


def test_a_released_lock_is_free_and_a_uri_root_has_none(tmp_path):
  with run_lock.hold(str(tmp_path), 'configs/x.yaml'):
    assert run_lock.is_held(str(tmp_path))
  assert not run_lock.is_held(str(tmp_path))
  assert run_lock.lock_path('gs://bucket/root') is None
  with run_lock.hold('gs://bucket/root', 'configs/x.yaml'):
    assert not run_lock.is_held('gs://bucket/root')
