"""Continuous training end to end: three spans replayed one run after another, as
`local_runner.py` runs them, with a window of 2 spans and warm start from the serving
model (what configs/movielens_100k_weekly.yaml does)."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

import console
from conftest import PROJECT_DIR

SPANS_TOOL = os.path.join(PROJECT_DIR, 'data', 'spans.py')
SAMPLE_DATA = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')


@pytest.fixture(scope='module')
def replay(tmp_path_factory):
  """The sample cut by year, spans 1-3 run in turn: (rows per span, consoles, output root)."""
  root = tmp_path_factory.mktemp('continuous')
  subprocess.run([sys.executable, SPANS_TOOL, SAMPLE_DATA, '--by', 'year', '--out',
                  str(root / 'yearly')], check=True, capture_output=True)
  with open(root / 'yearly' / 'spans.csv') as f:
    rows = {int(r['span']): int(r['rows']) for r in csv.DictReader(f)}
  out = root / 'out'
  consoles = []
  for span in (1, 2, 3):
    finished = console.run(
        '--output-root', str(out), '--span', str(span),
        '--set', f'paths.input={root}/yearly/span-{{SPAN:3}}/ratings.csv',
        '--set', 'training.window_spans=2', '--set', 'training.warm_start=latest_blessed',
        '--set', 'training.epochs=5',
        # Judged on a year's test rows (a few hundred): every model here is to be blessed.
        '--set', 'evaluation.min_auc=0.5', '--set', 'evaluation.max_auc_regression=0.05')
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    consoles.append(finished.stdout)
  return rows, consoles, out


def _models(out):
  listed = console.run('models', '--store', str(out / 'metadata.sqlite'), '--json',
                       module='inspection')
  assert listed.returncode == 0, listed.stderr[-3000:]
  return json.loads(listed.stdout)


@pytest.mark.slow
def test_each_run_reads_its_own_span_once_and_trains_on_the_last_two(replay):
  rows, consoles, _ = replay
  lines = [console.finished(stdout) for stdout in consoles]
  for span, finished in zip((1, 2, 3), lines):
    took, headline = finished['CsvExampleGen']
    # Read now, by this run: an old span is never read again.
    assert took != 'cached' and headline.startswith(f'span {span}: '), headline
  assert lines[0]['SpanWindow'][1] == (
      'trains on span 1 (1 of 2: no earlier run read the others)')
  assert lines[1]['SpanWindow'][1] == 'trains on spans 1, 2'
  assert lines[2]['SpanWindow'][1] == 'trains on spans 2, 3'
  # Every row of spans 2 and 3 (train and eval), and no other.
  trained = re.fullmatch(r'rows: train ([\d,]+), eval ([\d,]+)',
                         lines[2]['ColumnarExamplesGen'][1])
  assert sum(int(n.replace(',', '')) for n in trained.groups()) == rows[2] + rows[3]
  assert lines[2]['latest_span_history_resolver'][1] == '2 span(s) read before'


@pytest.mark.slow
def test_each_model_warm_starts_from_the_one_serving_and_replaces_it(replay):
  _, consoles, out = replay
  models = _models(out)
  assert [m['spans'] for m in models] == [[1], [1, 2], [2, 3]]
  assert [m['warm_started_from'] for m in models] == [
      None, models[0]['model_id'], models[1]['model_id']]
  assert [m['serving'] for m in models] == [False, False, True]
  assert all(m['blessed'] and m['pushed'] for m in models)
  with open(console.log_path(consoles[1])) as f:
    assert 'Warm start: the tables start from' in f.read()
  pushes = [console.finished(stdout)['Pusher'][1] for stdout in consoles]
  assert ', replacing' not in pushes[0]
  first_version = re.search(r'pushed to \S+/(\d+)', pushes[0])[1]
  assert pushes[1].endswith(f', replacing {first_version}')
  # Each model's AUC is its own evaluation's, not that of the run that used it as the
  # baseline.
  for model, stdout in zip(models, consoles):
    evaluated = re.match(r'AUC (\d\.\d{4})', console.finished(stdout)['Evaluator'][1])[1]
    assert f'{model["auc"]:.4f}' == evaluated
