"""local_runner.py as a person runs it: the console, the log file, failures, and ML
Metadata on a real MySQL-compatible server."""

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import console
from conftest import PROJECT_DIR

import local_runner

COMPONENTS = ('CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
              'DataValidationGate', 'Transform', 'ColumnarExamplesGen', 'Trainer',
              'latest_blessed_model_resolver', 'Evaluator', 'Pusher')


@pytest.mark.slow
def test_a_run_prints_a_line_per_component_and_logs_the_rest(sample_console):
  output_root, first = sample_console
  assert first.returncode == 0, first.stderr[-3000:]
  assert first.stderr == ''
  lines = first.stdout.splitlines()
  assert len(lines) <= 30, first.stdout  # one screen, start lines included (not a tty)
  assert not [line for line in lines if 'INFO' in line or 'WARNING' in line
              or 'cuFFT' in line or 'Traceback' in line]
  finished = console.finished(first.stdout)
  assert set(finished) == set(COMPONENTS)
  assert all(took != 'cached' for took, _ in finished.values())
  assert finished['StatisticsGen'][1] == 'rows: train 4,780, eval 1,220'
  assert finished['ColumnarExamplesGen'][1] == 'rows: train 4,780, eval 1,220'
  assert finished['ExampleValidator'][1] == 'no anomalies'
  assert finished['DataValidationGate'][1] == 'data valid'
  assert finished['Transform'][1] == 'table rows: movieId 2,000, userId 1,000'
  assert finished['ImportSchemaGen'][1] == 'schema movielens_ratings.pbtxt'
  assert finished['latest_blessed_model_resolver'][1] == 'baseline: none yet'
  assert re.fullmatch(r'eval AUC 0\.\d{4} after 15 epoch\(s\)', finished['Trainer'][1])
  assert re.fullmatch(r'AUC 0\.\d{4}, blessed', finished['Evaluator'][1])
  assert finished['Pusher'][1].startswith(f'pushed to {output_root}/serving/')
  assert lines[-1].startswith('Done in ') and 'python -m inspection report --store' in lines[-1]

  log = console.log_path(first.stdout)
  assert log.startswith(str(output_root / 'logs') + '/')
  with open(log) as f:
    logged = f.read()
  # Everything the terminal was spared: TFX's records, TensorFlow's C++ lines.
  assert 'Component Trainer is running.' in logged and logged.count('\n') > 500


def _inputs_whose_headers_differ(tmp_path):
  """Two input files with the configured columns in different orders: each passes the
  checks before Beam starts, and CsvExampleGen refuses to mix them."""
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'a.csv').write_text('userId,movieId,rating,timestamp\n1,2,4.0,3\n')
  (data / 'b.csv').write_text('movieId,userId,rating,timestamp\n2,1,4.0,3\n')
  return ['--set', f'paths.input={data}/*.csv', '--output-root', str(tmp_path / 'out')]


@pytest.mark.slow
def test_a_failing_component_is_one_line_with_its_root_cause_and_the_log(tmp_path):
  result = console.run(*_inputs_whose_headers_differ(tmp_path))
  assert result.returncode == 1
  error, = result.stderr.splitlines()
  match = re.fullmatch(r"local_runner\.py: CsvExampleGen failed after \d+\.\ds: "
                       r"RuntimeError: \S+/b\.csv has a different header from \S+/a\.csv: "
                       r".* \(full log: (\S+)\)", error)
  assert match, error
  with open(os.path.join(PROJECT_DIR, match.group(1))) as f:
    logged = f.read()
  assert 'Traceback (most recent call last)' in logged and 'has a different header' in logged
  assert set(console.finished(result.stdout)) <= {'ImportSchemaGen',
                                                  'latest_blessed_model_resolver'}


@pytest.mark.slow
def test_verbose_shows_every_log_line_and_writes_no_log_file(tmp_path):
  result = console.run(*_inputs_whose_headers_differ(tmp_path), '--verbose')
  assert result.returncode == 1
  assert 'INFO absl: Component CsvExampleGen is running.' in result.stderr
  assert re.search(r"^local_runner\.py: CsvExampleGen failed after \d+\.\ds: RuntimeError: "
                   r"\S+/b\.csv has a different header", result.stderr, re.MULTILINE)
  assert 'full log' not in result.stdout + result.stderr
  assert not (tmp_path / 'out' / 'logs').exists()


def test_the_root_cause_is_the_innermost_exception_on_one_line():
  def chained():
    try:
      raise KeyError('movieId')
    except KeyError as e:
      raise RuntimeError('while running Transform\nmore detail') from e
  with pytest.raises(RuntimeError) as caught:
    chained()
  assert local_runner.root_cause(caught.value) == "KeyError: 'movieId'"
  assert local_runner.root_cause(ValueError('first\nsecond')) == 'ValueError: first'
  assert local_runner.root_cause(MemoryError()) == 'MemoryError'
  assert len(local_runner.root_cause(ValueError('x' * 1000))) == 300


def test_output_to_a_log_catches_every_writer_and_keeps_the_terminal(tmp_path):
  log = tmp_path / 'logs' / 'run.log'
  script = textwrap.dedent(f'''
      import os, subprocess, sys
      sys.path.insert(0, {PROJECT_DIR!r})
      from pipeline.local import run_log
      with run_log.output_to({str(log)!r}) as console:
        print('python stdout')
        print('python stderr', file=sys.stderr)
        os.write(2, b'native stderr\\n')
        subprocess.run(['echo', 'child process'], check=True)
        console.write('for the person\\n')
      print('after')
      ''')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=60, check=True)
  assert result.stdout == 'for the person\nafter\n' and result.stderr == ''
  logged = log.read_text().splitlines()
  assert sorted(logged) == ['child process', 'native stderr', 'python stderr',
                            'python stdout']


def _inspect(server, database, *args):
  env = {**os.environ, 'MLMD_MYSQL_PASSWORD': server.password}
  return console.run(*args, *server.flags(database), env=env, module='inspection')


@pytest.mark.slow
def test_a_run_and_its_inspection_on_a_mysql_server(mariadb, tmp_path):
  output_root = tmp_path / 'out'
  env = {**os.environ, 'MLMD_MYSQL_PASSWORD': mariadb.password}
  result = console.run('--output-root', str(output_root), *mariadb.flags('ranker_e2e'),
                       env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (f'ML Metadata: mysql://mlmd@127.0.0.1:{mariadb.port}/ranker_e2e'
          in result.stdout)
  assert set(console.finished(result.stdout)) == set(COMPONENTS)
  assert not (output_root / 'metadata.sqlite').exists()
  assert '--mysql-host 127.0.0.1' in result.stdout.splitlines()[-1]

  runs = _inspect(mariadb, 'ranker_e2e', 'runs', '--json')
  assert runs.returncode == 0, runs.stderr
  described = json.loads(runs.stdout)
  assert described['store'] == f'mysql://mlmd@127.0.0.1:{mariadb.port}/ranker_e2e'
  run, = described['runs']
  assert {c['component'] for c in run['components']} == set(COMPONENTS)
  assert {c['state'] for c in run['components']} == {'COMPLETE'}

  evaluation = json.loads(_inspect(mariadb, 'ranker_e2e', 'evaluation', '--json').stdout)
  assert evaluation['blessing']['blessed'] is True
  assert evaluation['evaluation']['overall']['example_count'] == 1220
  lineage = json.loads(_inspect(mariadb, 'ranker_e2e', 'lineage', '--json').stdout)
  assert lineage['type'] == 'PushedModel' and lineage['produced_by'] == 'Pusher'
  report = tmp_path / 'report.html'
  written = _inspect(mariadb, 'ranker_e2e', 'report', '--output', str(report))
  assert written.returncode == 0, written.stderr
  assert 'Evaluator' in report.read_text()


def test_a_wrong_mysql_password_is_one_line_before_anything_runs(mariadb, tmp_path):
  env = {**os.environ, 'MLMD_MYSQL_PASSWORD': 'not-the-password'}
  result = console.run('--output-root', str(tmp_path / 'out'),
                       *mariadb.flags('ranker_denied'), env=env)
  assert result.returncode == 2
  error, = result.stderr.splitlines()
  assert error.startswith(f'local_runner.py: mysql://mlmd@127.0.0.1:{mariadb.port}/'
                          'ranker_denied: cannot open the ML Metadata store')
  assert error.endswith('check --mysql-host, --mysql-port, --mysql-user and '
                        '$MLMD_MYSQL_PASSWORD')
  assert not (tmp_path / 'out').exists()
  inspected = console.run('runs', *mariadb.flags('ranker_denied'), env=env,
                          module='inspection')
  assert inspected.returncode == 1
  error, = inspected.stderr.splitlines()
  assert 'is not a readable ML Metadata store' in error and 'MLMD_MYSQL_PASSWORD' in error


@pytest.mark.parametrize('make_store, problem', [
    (lambda path: path.write_bytes(b'hello, not a database\n'),
     'not an ML Metadata store (the file is not a SQLite database)'),
    (lambda path: path.mkdir(), 'the ML Metadata store is not a file'),
])
def test_a_store_that_is_not_a_database_is_one_line_and_left_untouched(tmp_path, make_store,
                                                                       problem):
  output_root = tmp_path / 'out'
  output_root.mkdir()
  store = output_root / 'metadata.sqlite'
  make_store(store)
  before = store.read_bytes() if store.is_file() else None
  result = console.run('--output-root', str(output_root))
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f'local_runner.py: {store}: {problem}; move it away, or give another --output-root']
  assert (store.read_bytes() if store.is_file() else None) == before
  assert sorted(os.listdir(output_root)) == ['metadata.sqlite']


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_the_execution_shows_interrupted(tmp_path):
  output_root = tmp_path / 'out'
  runner = subprocess.Popen([sys.executable, console.LOCAL_RUNNER, '--output-root',
                             str(output_root)], cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  try:
    for line in runner.stdout:
      # The Trainer: its execution registered in ML Metadata, its training going. (A
      # Ctrl-C inside a Beam transform reaches TFX as Beam's RuntimeError: the console
      # says interrupted, ML Metadata records the execution FAILED.)
      if line.startswith('  Trainer') and line.rstrip().endswith('...'):
        time.sleep(1)
        runner.send_signal(signal.SIGINT)
        break
    _, stderr = runner.communicate(timeout=120)
  finally:
    runner.kill()
  assert runner.returncode == 130
  error, = stderr.splitlines()
  assert re.fullmatch(r'local_runner\.py: interrupted during Trainer after \d+\.\ds; '
                      r'the next run resumes from the cached components \(full log: .*\)',
                      error), error
  assert not (output_root / 'serving').exists()
  runs = console.run('runs', '--store', str(output_root / 'metadata.sqlite'),
                     module='inspection')
  assert re.search(r'^Trainer +\d+ +INTERRUPTED', runs.stdout, re.MULTILINE), runs.stdout


def test_a_ctrl_c_swallowed_by_a_bare_except_is_raised_again():
  # Beam builds its jobs with dill, whose bare `except:` clauses can swallow a Ctrl-C.
  def work_that_swallows_one():
    try:
      time.sleep(2)
    except:  # pylint: disable=bare-except
      swallowed.append(True)
    time.sleep(10)

  swallowed = []
  import threading  # pylint: disable=g-import-not-at-top
  threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
  started = time.monotonic()
  with pytest.raises(KeyboardInterrupt):
    with local_runner.ctrl_c_until_handled() as pressed:
      work_that_swallows_one()
  assert swallowed and time.monotonic() - started < 2 and pressed.is_set()
  assert signal.getsignal(signal.SIGINT) is not None


def _bad_cell_on_line_3002(data):
  with open(os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')) as f:
    lines = f.read().splitlines()
  fields = lines[3001].split(',')
  lines[3001] = ','.join([fields[0], 'abc', *fields[2:]])
  (data / 'ratings.csv').write_text('\n'.join(lines) + '\n')
  return (r'CsvRowError: \S+/ratings\.csv: line 3002: column movieId: CSV conversion error '
          r"to int64: invalid value 'abc'")


def _a_truncated_gzip_among_good_files(data):
  with open(os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv'), 'rb') as f:
    text = f.read()
  (data / 'a.csv').write_bytes(text)
  whole = gzip.compress(text)
  (data / 'b.csv.gz').write_bytes(whole[:len(whole) // 2])
  return r'CorruptInputError: \S+/b\.csv\.gz: truncated or corrupt compressed file'


@pytest.mark.slow
@pytest.mark.parametrize('make_input', [_bad_cell_on_line_3002,
                                        _a_truncated_gzip_among_good_files])
def test_bad_input_is_one_line_in_seconds_and_nothing_is_pushed(tmp_path, make_input):
  data = tmp_path / 'data'
  data.mkdir()
  error_pattern = make_input(data)
  output_root = tmp_path / 'out'
  result = console.run('--output-root', str(output_root), '--set',
                       f'paths.input={data}/*')
  assert result.returncode == 1, result.stderr
  error, = result.stderr.splitlines()
  match = re.fullmatch(r'local_runner\.py: CsvExampleGen failed after (\d+\.\d)s: '
                       + error_pattern + r'.* \(full log: \S+\)', error)
  assert match, error
  assert float(match.group(1)) < 30, error  # minutes before the block was cut in halves
  assert not (output_root / 'serving').exists()
