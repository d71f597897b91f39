"""What is wrong before Beam starts is one line, exit 2, nothing created: a curated schema
that disagrees with the columns, a one-row table, tables larger than memory, an input
with no data rows."""

import os
import re

import pytest

from conftest import PROJECT_DIR, SAMPLE_CONFIG
from contract import options
from pipeline import config as config_lib
from pipeline.local import preflight

import local_runner
import vertex_runner

SCHEMA = os.path.join(PROJECT_DIR, 'configs', 'schema', 'movielens_ratings.pbtxt')
VERTEX_CONFIG = os.path.join(PROJECT_DIR, 'configs', 'vertex_movielens_1m.yaml')


def _schema_without(tmp_path, feature: str) -> str:
  """The shipped schema with `feature`'s block dropped."""
  with open(SCHEMA) as f:
    blocks = re.split(r'(?m)^(?=feature \{)', f.read())
  path = tmp_path / 'schema.pbtxt'
  path.write_text(''.join(b for b in blocks if f'name: "{feature}"' not in b))
  return str(path)


def _refused(tmp_path, capsys, *args, runner=local_runner):
  output_root = tmp_path / 'out'
  argv = ['--config', SAMPLE_CONFIG, '--output-root', str(output_root), *args]
  if runner is vertex_runner:
    argv = ['--config', VERTEX_CONFIG, '--output', str(tmp_path / 'p.json'), *args]
  code = runner.main(argv)
  err = capsys.readouterr().err
  assert code == 2, err
  assert len(err.splitlines()) == 1, err
  assert not output_root.exists() and not (tmp_path / 'p.json').exists()
  return err


def test_a_schema_missing_a_configured_column(tmp_path, capsys):
  schema = _schema_without(tmp_path, 'timestamp')
  err = _refused(tmp_path, capsys, '--set', f'paths.schema={schema}')
  assert err == (f'local_runner.py: {schema}: has no feature timestamp (dataset.columns in '
                 f'{SAMPLE_CONFIG}); add it to the schema or rename the column\n')


def test_a_schema_type_that_disagrees_with_the_column(tmp_path, capsys):
  err = _refused(tmp_path, capsys, '--set', 'dataset.columns.movieId=string')
  assert err == (f'local_runner.py: {SCHEMA}: feature movieId is INT, '
                 f'dataset.columns.movieId is string ({SAMPLE_CONFIG}); make them agree\n')


def test_a_schema_feature_that_is_not_a_column(tmp_path, capsys):
  schema = tmp_path / 'extra.pbtxt'
  with open(SCHEMA) as f:
    schema.write_text(f.read() + 'feature {\n  name: "genre"\n  type: BYTES\n}\n')
  err = _refused(tmp_path, capsys, '--set', f'paths.schema={schema}')
  assert err == (f'local_runner.py: {schema}: feature genre is not in dataset.columns of '
                 f'{SAMPLE_CONFIG}; add the column or drop the feature\n')


def test_vertex_runner_checks_the_schema_in_the_project_too(tmp_path, capsys):
  err = _refused(tmp_path, capsys, '--set', 'dataset.columns.userId=string',
                 runner=vertex_runner)
  assert err.startswith(f'vertex_runner.py: {SCHEMA}: feature userId is INT, '
                        'dataset.columns.userId is string')


def test_a_table_of_one_row(tmp_path, capsys):
  err = _refused(tmp_path, capsys, '--set', 'features.userId.vocab_size=1')
  assert err == (f'local_runner.py: {SAMPLE_CONFIG}: features.userId.vocab_size: must be at '
                 'least 2: a table of one row gives every value the same embedding; got 1\n')


def test_tables_larger_than_memory(tmp_path, capsys):
  # 10^11 rows of 8 floats with Adagrad's accumulator: 6.4 TB.
  err = _refused(tmp_path, capsys, '--set', 'features.userId.vocab_size=100000000000')
  assert err.startswith(f'local_runner.py: {SAMPLE_CONFIG}: features: the embedding tables '
                        'and their adagrad slots (6400.0 GB) take 23040.0 GB at the '
                        "Trainer's peak, more than the ")
  assert err.endswith(' GB free on this machine; lower vocab_size or embedding_dim (largest: '
                      'features.userId), or train on a TPU (vertex_runner.py)\n')


def test_table_memory_counts_each_optimizers_slots():
  config = config_lib.load_config(SAMPLE_CONFIG)  # 1000 x 8 + 2000 x 8 floats
  # adagrad: one accumulator
  assert options.table_bytes(config.model_inputs, 'adagrad') == 24_000 * 4 * 2
  for optimizer, copies in (('sgd', 1), ('adam', 3)):
    assert options.table_bytes(config.model_inputs, optimizer) == 24_000 * 4 * copies
  # At the Trainer's peak: 3.6 times the tables and slots.
  preflight.check_memory(config, memory_bytes=691_200)
  with pytest.raises(config_lib.ConfigError, match=r'\(0.0 GB\) take 0.0 GB at the '):
    preflight.check_memory(config, memory_bytes=691_199)


def test_table_memory_counts_the_retrieval_bias_table():
  config = config_lib.load_config(SAMPLE_CONFIG)  # movieId: 2000 rows
  assert options.table_bytes(config.model_inputs, 'adagrad', retrieval_bias=True) == (
      (24_000 + 2000) * 4 * 2)
  with_retrieval = config_lib.load_config(SAMPLE_CONFIG, ['training.losses.retrieval=0.3'])
  preflight.check_memory(with_retrieval, memory_bytes=748_800)
  with pytest.raises(config_lib.ConfigError, match=r'\(0.0 GB\) take 0.0 GB at the '):
    preflight.check_memory(with_retrieval, memory_bytes=748_799)


@pytest.mark.parametrize('contents', ['userId,movieId,rating,timestamp\n',
                                      'userId,movieId,rating,timestamp\n\n  \n'])
def test_an_input_with_a_header_and_no_rows(tmp_path, capsys, contents):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'ratings.csv').write_text(contents)
  err = _refused(tmp_path, capsys, '--set', f'paths.input={data}/*.csv')
  assert err == (f'local_runner.py: {SAMPLE_CONFIG}: paths.input: {data}/ratings.csv: a '
                 'header and no data rows; nothing to train on\n')


def test_one_file_with_rows_among_empty_ones_is_enough(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'part-0.csv').write_text('userId,movieId,rating,timestamp\n')
  (data / 'part-1.csv').write_text('userId,movieId,rating,timestamp\n1,2,4.0,3\n')
  config = config_lib.load_config(SAMPLE_CONFIG, [f'paths.input={data}/*.csv'])
  preflight.check_before_run(config, memory_bytes=10**9)


@pytest.mark.parametrize('contents, words', [
    ('userId\tmovieId\trating\ttimestamp\n1\t2\t4.0\t3\n',
     'the header is one column when split on \',\'; the file looks tab-separated: '
     'dataset.delimiter: "\\t"'),
    ('', 'is empty; the first line must name the columns (userId,movieId,rating,timestamp)'),
])
def test_a_header_problem_is_named(tmp_path, capsys, contents, words):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'ratings.csv').write_text(contents)
  err = _refused(tmp_path, capsys, '--set', f'paths.input={data}/*.csv')
  assert err == f'local_runner.py: {data}/ratings.csv: {words}\n'


def test_a_tab_separated_file_passes_with_its_delimiter(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'ratings.tsv').write_text('userId\tmovieId\trating\ttimestamp\n1\t2\t4.0\t3\n')
  config = config_lib.load_config(SAMPLE_CONFIG, [f'paths.input={data}/*.tsv',
                                                  'dataset.delimiter="\\t"'])
  assert config.dataset.delimiter == '\t'
  preflight.check_before_run(config, memory_bytes=10**9)
