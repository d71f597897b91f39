"""The code fingerprint: every file a component runs is in it, and every component that runs
project code carries it, so an edit never reuses an output of the old code."""

import json
import os
import shutil

import pytest

import console
from conftest import PROJECT_DIR, SAMPLE_CONFIG
from pipeline import config as config_lib
from pipeline import fingerprint
from pipeline import graph

# One file of each package components run (subfolders included), and a helper outside
# them that a component imports (the gate reads anomalies with artifact_files).
RUN_BY_COMPONENTS = (
    'contract/names.py',
    'contract/feature_kinds.py',
    'modules/__init__.py',
    'modules/evaluation_metrics.py',
    'modules/transform/feature_rows.py',
    'modules/training/loop.py',
    'modules/serving/export.py',
    'pipeline/components/csv_example_gen/blocks.py',
    'pipeline/components/validation_gate/component.py',
    'pipeline/components/pusher/executor.py',
    'pipeline/components/columnar_examples_gen.py',
    'pipeline/artifact_files.py',
)
# Code no component runs: editing it must not rerun the pipeline.
NOT_RUN_BY_COMPONENTS = ('pipeline/local/run_log.py', 'pipeline/config/run_config.py')
# Every component whose executor or dotted path runs project code.
RUNS_PROJECT_CODE = ('CsvExampleGen', 'DataValidationGate', 'Transform', 'ColumnarExamplesGen',
                     'Tuner', 'Trainer', 'Evaluator', 'Pusher')


def _copy_of_the_tree(tmp_path):
  root = tmp_path / 'project'
  for package in ('contract', 'modules', 'pipeline'):
    shutil.copytree(os.path.join(PROJECT_DIR, package), root / package,
                    ignore=shutil.ignore_patterns('__pycache__'))
  return root


def _append(path, text=b'\n# edited\n'):
  with open(path, 'ab') as f:
    f.write(text)


def test_a_copy_of_the_tree_has_the_projects_fingerprint(tmp_path):
  assert fingerprint.code_fingerprint(str(_copy_of_the_tree(tmp_path))) == (
      fingerprint.code_fingerprint())


@pytest.mark.parametrize('edited', RUN_BY_COMPONENTS)
def test_one_byte_more_in_any_file_a_component_runs_changes_it(tmp_path, edited):
  root = _copy_of_the_tree(tmp_path)
  before = fingerprint.code_fingerprint(str(root))
  _append(root / edited, b' ')
  assert fingerprint.code_fingerprint(str(root)) != before


@pytest.mark.parametrize('edited', NOT_RUN_BY_COMPONENTS)
def test_code_no_component_runs_is_left_out(tmp_path, edited):
  root = _copy_of_the_tree(tmp_path)
  before = fingerprint.code_fingerprint(str(root))
  _append(root / edited)
  assert fingerprint.code_fingerprint(str(root)) == before


def test_a_new_subfolder_of_component_code_is_covered(tmp_path):
  root = _copy_of_the_tree(tmp_path)
  before = fingerprint.code_fingerprint(str(root))
  os.makedirs(root / 'modules' / 'new_part')
  (root / 'modules' / 'new_part' / 'code.py').write_text('X = 1\n')
  assert fingerprint.code_fingerprint(str(root)) != before


def test_every_component_that_runs_project_code_carries_it():
  config = config_lib.load_config(SAMPLE_CONFIG, ['tuning.max_trials=1',
                                                  'tuning.learning_rate=[0.1]'])
  pipeline = graph.create_pipeline(config, pipeline_root='/tmp/unused')
  code = fingerprint.code_fingerprint()
  carrying = {c.id for c in pipeline.components
              if code in json.dumps(c.exec_properties, default=str)}
  assert carrying >= set(RUNS_PROJECT_CODE)


@pytest.mark.slow
def test_a_rerun_after_editing_the_csv_component_reruns_csv_example_gen(sample_run,
                                                                        tmp_path):
  """End to end: the sample run again, from a copy of the project whose CSV component
  has one more comment line, into a copy of the first run's store: nothing is reused."""
  config, _ = sample_run
  root = _copy_of_the_tree(tmp_path)
  for name in ('local_runner.py', 'run_console.py'):
    shutil.copy(os.path.join(PROJECT_DIR, name), root)
  shutil.copytree(os.path.join(PROJECT_DIR, 'inspection'), root / 'inspection',
                  ignore=shutil.ignore_patterns('__pycache__'))
  _append(root / 'pipeline' / 'components' / 'csv_example_gen' / 'executor.py')
  output_root = tmp_path / 'out'
  os.makedirs(output_root)
  shutil.copy(config.paths.metadata_path, output_root / 'metadata.sqlite')
  rerun = console.run('--config', SAMPLE_CONFIG, '--output-root', str(output_root),
                      runner=str(root / 'local_runner.py'))
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  lines = console.finished(rerun.stdout)
  assert lines['CsvExampleGen'][0] != 'cached', rerun.stdout
  assert lines['Trainer'][0] != 'cached', rerun.stdout
