"""Spans in paths.input ({SPAN}, {YYYY}{MM}{DD}): which exist, which a run reads, the
errors before anything runs, and the real CsvExampleGen (TFX's driver, this project's
executor) reading exactly the chosen span's rows."""

import csv
import glob
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import PROJECT_DIR, SAMPLE_CONFIG
from pipeline import config as config_lib
from pipeline import spans

SPANS_TOOL = os.path.join(PROJECT_DIR, 'data', 'spans.py')
SAMPLE_DATA = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'w').close()


def test_the_latest_span_unless_one_is_asked_for(tmp_path):
  for span in (1, 2, 3, 5):
    _touch(str(tmp_path / f'span-{span:03d}' / 'ratings.csv'))
  _touch(str(tmp_path / 'span-x' / 'ratings.csv'))  # not a span: ignored
  pattern = str(tmp_path / 'span-{SPAN:3}' / 'ratings.csv')
  assert sorted(spans.available(pattern)) == [1, 2, 3, 5]
  assert spans.resolve(pattern, None) == 5
  assert spans.files(pattern, 2) == [str(tmp_path / 'span-002' / 'ratings.csv')]
  with pytest.raises(spans.SpanError, match=r'^span 4 is not there; .* has spans 1-3, 5$'):
    spans.resolve(pattern, 4)
  with pytest.raises(spans.SpanError, match='matches no span'):
    spans.resolve(str(tmp_path / 'day-{SPAN}.csv'), None)
  # TFX would resolve span 5 and then look for span-5: said before anything runs.
  with pytest.raises(spans.SpanError, match=r'span-001/ratings.csv numbers its span with '
                     r'leading zeros: write \{SPAN:3\} in paths.input'):
    spans.resolve(str(tmp_path / 'span-{SPAN}' / 'ratings.csv'), None)


def test_a_dated_input_numbers_spans_by_day_as_tfx_does(tmp_path):
  for day in ('2026-11-29', '2026-11-30', '2026-02-30'):  # the last is no date
    _touch(str(tmp_path / day / 'a.csv'))
  pattern = str(tmp_path / '{YYYY}-{MM}-{DD}' / '*.csv')
  from tfx.components.example_gen import utils  # pylint: disable=g-import-not-at-top
  latest = utils.date_to_span_number(2026, 11, 30)
  assert sorted(spans.available(pattern)) == [latest - 1, latest]
  assert spans.resolve(pattern, None) == latest
  assert spans.label(pattern, latest) == f'{latest} (2026-11-30)'


def _config(tmp_path, input_glob, *overrides):
  return config_lib.load_config(SAMPLE_CONFIG, [f'paths.input={input_glob}',
                                                f'paths.output_root={tmp_path}/out',
                                                *overrides])


def test_a_missing_span_or_a_span_without_spans_is_one_line_naming_the_key(tmp_path):
  _touch(str(tmp_path / 'span-001' / 'ratings.csv'))
  pattern = str(tmp_path / 'span-{SPAN:3}' / 'ratings.csv')
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.check_inputs_exist(_config(tmp_path, pattern, 'paths.span=7'))
  assert 'paths.span' in str(caught.value) and 'has spans 1' in str(caught.value)
  with pytest.raises(config_lib.ConfigError) as caught:
    _config(tmp_path, str(tmp_path / 'span-001' / 'ratings.csv'), 'paths.span=1')
  assert 'paths.span' in str(caught.value) and 'needs {SPAN}' in str(caught.value)


@pytest.fixture(scope='module')
def yearly_sample(tmp_path_factory):
  """The shipped sample cut into one span a year (4 spans), and their row counts."""
  out = tmp_path_factory.mktemp('spans') / 'yearly'
  result = subprocess.run([sys.executable, SPANS_TOOL, SAMPLE_DATA, '--by', 'year',
                           '--out', str(out)], capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  with open(out / 'spans.csv') as f:
    rows = {int(r['span']): int(r['rows']) for r in csv.DictReader(f)}
  return str(out / 'span-{SPAN:3}' / 'ratings.csv'), rows


def _example_gen_alone(config):
  """The pipeline's own CsvExampleGen, run by TFX's local runner; its Examples' span,
  row count and the console's line."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import graph  # pylint: disable=g-import-not-at-top
  from pipeline.local import metadata_store  # pylint: disable=g-import-not-at-top
  example_gen = graph._example_gen(config, code_fingerprint='test')  # pylint: disable=protected-access
  os.makedirs(config.paths.output_root, exist_ok=True)
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='spans', pipeline_root=config.paths.pipeline_root,
      components=[example_gen],
      metadata_connection_config=metadata_store.sqlite_connection(config.paths.metadata_path),
      beam_pipeline_args=['--direct_num_workers=1']))
  store = metadata_store.open_store(metadata_store.sqlite_connection(config.paths.metadata_path))
  examples = max(store.get_artifacts_by_type('Examples'), key=lambda a: a.id)
  records = sum(1 for path in glob.glob(os.path.join(examples.uri, 'Split-*', '*.gz'))
                for _ in tf.data.TFRecordDataset(path, compression_type='GZIP'))
  import run_console  # pylint: disable=g-import-not-at-top
  from inspection import run_store  # pylint: disable=g-import-not-at-top
  record = run_store.RunStore(run_store.existing_sqlite_store(config.paths.metadata_path),
                              'spans')
  line = run_console.headline(record, record.latest_execution('CsvExampleGen'))
  # TFX 1.16 records the span as a custom property of the Examples.
  return examples.custom_properties['span'].int_value, records, line


@pytest.mark.slow
def test_example_gen_reads_the_latest_span_or_the_one_asked_for(tmp_path, yearly_sample):
  pattern, rows = yearly_sample
  config = _config(tmp_path, pattern)
  assert config_lib.check_inputs_exist(config) == [pattern.replace('{SPAN:3}', '004')]
  span, records, line = _example_gen_alone(config)
  assert (span, records) == (4, rows[4])
  assert line.startswith('span 4: splits train, eval from 1 file(s)')
  span, records, line = _example_gen_alone(_config(tmp_path, pattern, 'paths.span=2'))
  assert (span, records) == (2, rows[2]) and line.startswith('span 2: ')
