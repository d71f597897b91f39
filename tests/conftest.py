"""Shared test set-up: the process settings of the runners, paths to test data, and the
real pipeline runs that several test modules read."""

import os
import random
import sys

import pytest

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_DIR)

from pipeline import process_env  # pylint: disable=g-import-not-at-top

process_env.configure()

# Real MovieLens copies live beside the project, never inside it (their licence).
SHARED_DATA_DIR = os.path.join(os.path.dirname(PROJECT_DIR), 'shared', 'data')
SAMPLE_CONFIG = os.path.join(PROJECT_DIR, 'configs', 'sample.yaml')
FEATURES_CONFIG = os.path.join(PROJECT_DIR, 'configs', 'sample_features.yaml')


def _run_pipeline(config):
  # Imported here: collecting the quick tests should not need TFX.
  import local_runner  # pylint: disable=g-import-not-at-top
  from mlmd import RunRecord  # pylint: disable=g-import-not-at-top
  local_runner.validate(config)
  local_runner.run(config)
  return config, RunRecord(config.paths.metadata_path, config.pipeline_name)


@pytest.fixture(scope='session')
def sample_console(tmp_path_factory):
  """One real run of the whole pipeline on the shipped sample, as a person runs it
  (`local_runner.py --output-root`, its own process): (output root, the finished
  process, whose output is the console's)."""
  import console  # pylint: disable=g-import-not-at-top
  output_root = tmp_path_factory.mktemp('sample_run') / 'out'
  return output_root, console.run('--output-root', str(output_root))


@pytest.fixture(scope='session')
def sample_run(sample_console):
  """That run as (config, RunRecord)."""
  from mlmd import RunRecord  # pylint: disable=g-import-not-at-top
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  output_root, finished = sample_console
  assert finished.returncode == 0, finished.stderr[-3000:]
  config = config_lib.with_output_root(config_lib.load_config(SAMPLE_CONFIG), str(output_root))
  return config, RunRecord(config.paths.metadata_path, config.pipeline_name)


@pytest.fixture(scope='session')
def features_run(tmp_path_factory):
  """The pipeline on the shipped sample with its side columns (every feature kind)."""
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('features_run')
  return _run_pipeline(config_lib.with_output_root(
      config_lib.load_config(FEATURES_CONFIG), str(root)))


@pytest.fixture(scope='session')
def shuffled_run(tmp_path_factory):
  """The pipeline on the sample with its ratings shuffled across rows: nothing to learn.
  Written tab-separated (`dataset.delimiter: "\\t"`), so that a TSV input runs end to end,
  split by time into train, validation and test, and tuned with a budget of two trials
  (the learning rates searched are not the config's)."""
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('shuffled_run')
  with open(os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')) as f:
    header, *lines = f.read().splitlines()
  rows = [line.split(',') for line in lines]
  ratings = [row[2] for row in rows]
  random.Random(7).shuffle(ratings)
  data_dir = root / 'shuffled'
  data_dir.mkdir()
  (data_dir / 'ratings.tsv').write_text('\n'.join(
      ['\t'.join(header.split(',')[:4])]
      + ['\t'.join([u, m, r, t]) for (u, m, _, t, *_), r in zip(rows, ratings)]) + '\n')
  config = config_lib.load_config(SAMPLE_CONFIG, [
      f'paths.input={data_dir / "*.tsv"}', 'dataset.delimiter="\\t"', 'dataset.split=',
      'dataset.split_by_time={column: timestamp, validation: 0.1, test: 0.2}',
      'tuning={max_trials: 2, epochs: 2, learning_rate: [0.05, 0.2]}'])
  config = config_lib.with_output_root(config, str(root / 'out'))
  return _run_pipeline(config)


@pytest.fixture(scope='session')
def mariadb(tmp_path_factory):
  """A real MariaDB server on 127.0.0.1 for this session (installed if missing and
  possible; the tests that need it are skipped with the reason otherwise)."""
  import mariadb_server  # pylint: disable=g-import-not-at-top
  reason = mariadb_server.install_if_missing()
  if reason:
    pytest.skip(reason)
  yield from mariadb_server.run(str(tmp_path_factory.mktemp('mariadb')))
