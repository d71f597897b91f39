"""The Tuner's search records each trial's own best epoch count (modules/tuning.py), through
KerasTuner's real oracle and search loop."""

import keras_tuner
import pytest

from modules import tuning

OBJECTIVE = 'val_in_user_auc'

# Validation AUC per epoch for each learning rate: the best epochs differ (3 and 1).
CURVES = {0.1: [0.60, 0.65, 0.70, 0.68], 0.5: [0.72, 0.71, 0.69, 0.66]}


class _CurveTuner(keras_tuner.Tuner):
  """Trials whose per-epoch scores are CURVES' (no model: the search loop and the
  recording are what is checked)."""

  def run_trial(self, trial, *args, **kwargs):
    return tuning.best_epoch_result(trial, OBJECTIVE, CURVES[trial.hyperparameters['learning_rate']])


@pytest.mark.parametrize('oracle', list(tuning.ORACLES))
def test_each_trial_records_its_own_best_epoch_and_the_best_keeps_its_count(tmp_path,
                                                                           oracle):
  space = keras_tuner.HyperParameters()
  space.Choice('learning_rate', list(CURVES))
  tuner = _CurveTuner(
      oracle=tuning.ORACLES[oracle](
          objective=keras_tuner.Objective(OBJECTIVE, direction='max'), max_trials=2,
          seed=1, hyperparameters=space),
      directory=str(tmp_path), project_name='curves')
  tuner.search()
  trials = tuner.oracle.get_best_trials(2)
  assert {t.hyperparameters['learning_rate'] for t in trials} == set(CURVES)
  for trial in trials:
    curve = CURVES[trial.hyperparameters['learning_rate']]
    assert trial.hyperparameters['epochs'] == curve.index(max(curve)) + 1
    assert trial.score == max(curve)
  # What TFX's Tuner writes as best_hyperparameters, and the Trainer trains with.
  best = tuner.get_best_hyperparameters()[0].get_config()['values']
  assert best == {'learning_rate': 0.5, 'epochs': 1}


def _grid_search(tmp_path, name, curves):
  space = keras_tuner.HyperParameters()
  space.Choice('learning_rate', [0.1, 0.5])
  space.Choice('embedding_dim', [8, 16])

  class GridTuner(keras_tuner.Tuner):
    def run_trial(self, trial, *args, **kwargs):
      values = trial.hyperparameters
      return tuning.best_epoch_result(
          trial, OBJECTIVE, curves[values['learning_rate'], values['embedding_dim']])

  tuner = GridTuner(oracle=tuning.GridOracle(
      objective=keras_tuner.Objective(OBJECTIVE, direction='max'), max_trials=10, seed=1,
      hyperparameters=space), directory=str(tmp_path), project_name=name)
  tuner.search()
  return tuner


def test_the_grid_tries_every_combination_once_and_repeats_its_pick(tmp_path):
  # Each combination's best epoch differs, so the recorded counts differ from the one
  # the space holds after the first trial: the grid must step past them.
  curves = {(0.1, 8): [0.60, 0.62], (0.1, 16): [0.70, 0.65, 0.64],
            (0.5, 8): [0.66, 0.67, 0.69, 0.68], (0.5, 16): [0.64]}
  picks = []
  for name in ('first', 'second'):
    tuner = _grid_search(tmp_path, name, curves)
    trials = tuner.oracle.get_best_trials(10)
    assert sorted((t.hyperparameters['learning_rate'], t.hyperparameters['embedding_dim'])
                  for t in trials) == sorted(curves)
    picks.append(tuner.get_best_hyperparameters()[0].get_config()['values'])
  assert picks[0] == picks[1] == {'learning_rate': 0.1, 'embedding_dim': 16, 'epochs': 1}


def test_the_console_and_report_name_what_the_trials_were_scored_by():
  import json  # pylint: disable=g-import-not-at-top
  from inspection import artifact_contents  # pylint: disable=g-import-not-at-top

  def named(tuning):
    return artifact_contents.tuner_objective({'custom_config': json.dumps({'tuning': tuning})})

  assert named({'max_trials': 2}) == 'validation AUC'
  assert named({'objective': 'in_user_auc'}) == 'validation in-user AUC'
  assert named({'objective': 'recall', 'recall_at': 20}) == 'validation recall@20'
  assert artifact_contents.tuner_objective({}) == 'validation AUC'
