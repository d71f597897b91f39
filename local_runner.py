"""Runs the pipeline on this machine: Beam's DirectRunner and an ML Metadata store.

    python local_runner.py                                    # configs/sample.yaml
    python local_runner.py --config configs/movielens_100k.yaml
    python local_runner.py --set training.epochs=3 --set training.optimizer=adam
    python local_runner.py --output-root /tmp/ranker          # somewhere else
    MLMD_MYSQL_PASSWORD=... python local_runner.py --mysql-host db.internal  # shared store

The terminal shows a line per component with its result; everything else (TFX, Beam and
TensorFlow logs) goes to a log file under the output root, whose path is printed
(`--verbose` shows it all instead). Everything a run makes lands under the config's
`paths.output_root`: `metadata.sqlite` (ML Metadata, unless --mysql-host), `pipeline_root/`
(one folder per component), `logs/` and `serving/`.
"""

import argparse
import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import List, Optional, TextIO, Tuple

from absl import logging as absl_logging

from pipeline import process_env

process_env.configure()

# pylint: disable=g-import-not-at-top
import run_console
from inspection import run_store
from pipeline.components.validation_gate import anomalies
from pipeline import config as config_lib
from pipeline import paths
from pipeline.local import metadata_store
from pipeline.local import preflight
from pipeline.local import run_lock
from pipeline.local import run_log
# pylint: enable=g-import-not-at-top

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs',
                              'sample.yaml')


def validate(config: config_lib.RunConfig) -> None:
  """Everything that can be checked before a component runs; raises ValueError."""
  preflight.check_before_run(config)


def run(config: config_lib.RunConfig, enable_cache: bool = True, connection=None) -> None:
  """Runs the whole pipeline in this process and returns when it is done.

  `connection` is the ML Metadata store (default: the config's SQLite file).
  """
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline.graph import create_pipeline  # pylint: disable=g-import-not-at-top
  os.makedirs(config.paths.output_root, exist_ok=True)
  if connection is None:
    connection = metadata_store.sqlite_connection(config.paths.metadata_path)
  tfx.orchestration.LocalDagRunner().run(create_pipeline(
      config, metadata_connection_config=connection, enable_cache=enable_cache))


def _short(path: str) -> str:
  """A path relative to the working directory when it is below it."""
  relative = path if paths.is_uri(path) else os.path.relpath(path)
  return path if relative.startswith('..') else relative


def _innermost(error: BaseException) -> BaseException:
  while error.__cause__ is not None or (error.__context__ is not None
                                        and not error.__suppress_context__):
    error = error.__cause__ or error.__context__
  return error


def root_cause(error: BaseException) -> str:
  """The innermost exception of a chain, on one line: what a person should read first."""
  error = _innermost(error)
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  message = f'{type(error).__name__}: {lines[0] if lines else ""}'.rstrip(': ')
  return message if len(message) <= 300 else message[:297] + '...'


class Interrupted(Exception):
  """Ctrl-C during a run; the message says during which component."""


@contextlib.contextmanager
def ctrl_c_until_handled():
  """Ctrl-C raises KeyboardInterrupt in the main thread wherever it is; but code the
  components run sometimes catches every exception (bare `except:` clauses in dill,
  which pickles a Beam job while it is built), which swallows it and lets the run go on.
  After a Ctrl-C, it is raised again every half second until it leaves this block.

  Yields: an Event set once Ctrl-C was pressed (Beam re-raises a KeyboardInterrupt from
  a transform as a RuntimeError: the run was interrupted all the same).
  """
  pressed = threading.Event()
  handled = threading.Event()
  repeater = None
  main_thread = threading.main_thread().ident

  def repeat():
    # A signal to the main thread itself, which also ends a system call it waits in.
    while not handled.wait(0.5):
      signal.pthread_kill(main_thread, signal.SIGINT)

  def on_ctrl_c(signum, frame):
    del signum, frame
    nonlocal repeater
    if handled.is_set():
      return
    pressed.set()
    if repeater is None:
      repeater = threading.Thread(target=repeat, daemon=True)
      repeater.start()
    raise KeyboardInterrupt

  previous = signal.signal(signal.SIGINT, on_ctrl_c)
  try:
    yield pressed
  finally:
    handled.set()
    if repeater is not None:
      repeater.join()  # its last interrupt, if any, meets `handled` here, not later
    signal.signal(signal.SIGINT, previous)


def run_with_progress(config: config_lib.RunConfig, connection, enable_cache: bool,
                      console: TextIO) -> Optional[Tuple[str, List[str]]]:
  """Runs the pipeline with a line per component on `console`; returns None when it
  finished, else the line that says which component failed and why, and the lines
  that detail it (each anomaly, when the data failed validation). Raises Interrupted
  on Ctrl-C."""
  def open_store() -> run_store.RunStore:
    if connection.HasField('mysql'):
      return run_store.RunStore(connection, config.pipeline_name)
    return run_store.RunStore(run_store.existing_sqlite_store(config.paths.metadata_path),
                              config.pipeline_name)

  progress = run_console.RunProgress(console, open_store)
  logging.getLogger().addHandler(progress)
  ctrl_c = threading.Event()
  try:
    with ctrl_c_until_handled() as ctrl_c:
      run(config, enable_cache=enable_cache, connection=connection)
  except KeyboardInterrupt:
    logging.exception('Interrupted')  # where it was, into the log
    raise Interrupted(progress.interrupted()) from None
  except Exception as e:  # pylint: disable=broad-except
    if ctrl_c.is_set():
      logging.exception('Interrupted')
      raise Interrupted(progress.interrupted()) from None
    logging.exception('The pipeline failed')  # the whole traceback, into the log
    where = progress.failed() or 'the pipeline failed'
    cause = _innermost(e)
    details = cause.lines if isinstance(cause, anomalies.DataAnomaliesError) else []
    return f'{where}: {root_cause(e)}', details
  finally:
    logging.getLogger().removeHandler(progress)
  return None


def _store_flags(args: argparse.Namespace, config: config_lib.RunConfig, store: str) -> str:
  """The inspection tool's flags for the store this run recorded in."""
  if not args.mysql_host:
    return f'--store {_short(store)}'
  return (f'--mysql-host {args.mysql_host} --mysql-port {args.mysql_port} '
          f'--mysql-database {args.mysql_database} --mysql-user {args.mysql_user} '
          f'--pipeline {config.pipeline_name}')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', default=DEFAULT_CONFIG, help='run config (YAML)')
  config_lib.add_override_argument(parser)
  parser.add_argument('--output-root', help='override paths.output_root (and the '
                      'serving dir, which goes under it)')
  parser.add_argument('--span', type=int, metavar='N',
                      help='with {SPAN} or a date in paths.input: the span to read '
                      '(default: the latest); the same as --set paths.span=N')
  parser.add_argument('--no-cache', action='store_true',
                      help='rerun every component even when its inputs are unchanged')
  parser.add_argument('--verbose', action='store_true',
                      help='show every log line on the terminal instead of in the log file')
  metadata_store.add_arguments(parser)
  args = parser.parse_args(argv)
  with contextlib.ExitStack() as lock:
    try:
      overrides = args.overrides + ([f'paths.span={args.span}'] if args.span is not None
                                    else [])
      config = config_lib.load_config(args.config, overrides)
      if args.output_root:
        config = config_lib.with_output_root(config, os.path.abspath(args.output_root))
      validate(config)
      connection = (metadata_store.mysql_connection(args)
                    or metadata_store.sqlite_connection(config.paths.metadata_path))
      metadata_store.check_reachable(connection)
      lock.enter_context(run_lock.hold(config.paths.output_root, _short(config.source)))
    except ValueError as e:
      print(f'local_runner.py: {e}', file=sys.stderr)
      return 2
    return _run(args, config, connection)


def _run(args: argparse.Namespace, config: config_lib.RunConfig, connection) -> int:
  """Runs the checked config, showing progress; the exit status."""
  store = metadata_store.describe(connection)
  log = run_log.log_path(config.paths.output_root)
  print(f'Pipeline {config.pipeline_name} ({_short(config.source)}) -> '
        f'{_short(config.paths.output_root)}')
  print(f'  ML Metadata: {_short(store)}')
  if not args.verbose:
    print(f'  full log:    {_short(log)}')
  sys.stdout.flush()
  started = time.monotonic()
  # Python's log records go to standard error: the log file, or the terminal with
  # --verbose. Set before TFX is imported, so that no library installs its own.
  records = logging.StreamHandler(sys.stderr)
  records.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
  logging.getLogger().addHandler(records)
  logging.getLogger().setLevel(logging.INFO)
  # TensorFlow silences absl around some calls and then restores absl's verbosity flag,
  # which is WARNING unless set: TFX's INFO records (the progress lines) would stop.
  absl_logging.set_verbosity(absl_logging.INFO)
  log_note = '' if args.verbose else f' (full log: {_short(log)})'
  try:
    if args.verbose:
      failure = run_with_progress(config, connection, not args.no_cache, sys.stdout)
    else:
      # TensorFlow functions still alive at exit (Transform's analyzers leave some)
      # print tracebacks when the interpreter's teardown frees them: into the log, not
      # after the last line for people.
      atexit.register(run_log.send_stderr_to, log)
      with run_log.output_to(log) as console:
        failure = run_with_progress(config, connection, not args.no_cache, console)
  except Interrupted as e:
    print(f'local_runner.py: {e}; the next run resumes from the cached components'
          f'{log_note}', file=sys.stderr)
    return 130
  if failure:
    message, details = failure
    print(f'local_runner.py: {message}{log_note}', file=sys.stderr)
    for line in details:
      print(f'  {line}', file=sys.stderr)
    return 1
  print(f'Done in {time.monotonic() - started:.0f}s. Run report: '
        f'python -m inspection report {_store_flags(args, config, store)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
