"""training.warm_start: the Trainer's tables start from the latest blessed model when
they fit, and it says in one line why it starts cold when they do not."""

import json
import logging
import os
import types

import pytest

import trainer_runs
from conftest import SAMPLE_CONFIG
from modules.model import warm_start
from modules.training import trainer
from pipeline import config as config_lib
from pipeline import graph


def _blessed_model(sample_run):
  """The sample run's trained (and blessed) model, as TFX hands it to a Trainer."""
  _, record = sample_run
  execution = record.executions_by_component()['Trainer'][0]  # a later run may be cached
  return os.path.join(record.outputs_of(execution.id)['model'][0].uri, 'Format-Serving')


def _train(sample_run, out_dir, base_model=None, **training):
  inputs = trainer_runs.trainer_inputs(sample_run, out_dir, epochs=1, **training)
  trainer.run_fn(types.SimpleNamespace(**inputs, base_model=base_model))
  with open(os.path.join(inputs['model_run_dir'], 'metrics.json')) as f:
    return json.load(f)['eval']


@pytest.mark.slow
def test_one_warm_epoch_ends_below_one_cold_epoch(sample_run, tmp_path):
  base = _blessed_model(sample_run)
  assert warm_start.saved_table_shapes(base) == {'userId': [1000, 8], 'movieId': [2000, 8]}
  cold = _train(sample_run, tmp_path / 'cold')
  warm = _train(sample_run, tmp_path / 'warm', base_model=base)
  assert warm['loss'] < cold['loss'] - 0.01, (warm, cold)
  assert warm['auc'] > cold['auc']


@pytest.mark.slow
def test_tables_that_do_not_fit_start_cold_with_one_line_saying_why(sample_run, tmp_path,
                                                                     caplog):
  inputs = trainer_runs.trainer_inputs(sample_run, tmp_path / 'out', epochs=1)
  model_inputs = inputs['custom_config']['model_inputs']
  for feature in model_inputs['features']:
    feature['embedding_dim'] = 4
  with caplog.at_level(logging.INFO):
    trainer.run_fn(types.SimpleNamespace(**inputs, base_model=_blessed_model(sample_run)))
  said = [r.getMessage() for r in caplog.records if 'Starting cold' in r.getMessage()]
  assert said == [f'Starting cold, not from {_blessed_model(sample_run)}: its userId '
                  "table is 1000 x 8, this run's is 1000 x 4"]
  assert os.path.exists(os.path.join(inputs['serving_model_dir'], 'saved_model.pb'))


def test_a_missing_table_is_named():
  inputs = config_lib.load_config(SAMPLE_CONFIG).model_inputs
  assert warm_start.why_not_warm({'userId': [1000, 8]}, inputs,
                                {'userId': 1000, 'movieId': 2000}) == (
                                    'the base model has no movieId table')
  assert warm_start.why_not_warm({'userId': [1000, 8], 'movieId': [2000, 8]}, inputs,
                                {'userId': 1000, 'movieId': 2000}) is None


def test_the_trainer_gets_the_latest_blessed_model_only_when_asked():
  def trainer_inputs(*overrides):
    config = config_lib.load_config(SAMPLE_CONFIG, overrides)
    components = {c.id: c for c in graph.create_pipeline(
        config, pipeline_root='/tmp/unused').components}
    return components['Trainer'].inputs
  warm = trainer_inputs('training.warm_start=latest_blessed')
  assert warm['base_model'].producer_component_id == 'latest_blessed_model_resolver'
  assert 'base_model' not in trainer_inputs()
