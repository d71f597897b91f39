"""TFX Tuner's `tuner_fn`: a KerasTuner search over the run config's `tuning:`.

Each trial builds the ranker the Trainer builds (modules/training/loop.py) with one choice of
the listed options, trains it up to `tuning.epochs` epochs on the train split and is
scored by its best epoch's `tuning.objective` on the validation split (pooled AUC,
in-user AUC or recall@K: modules/training/user_metrics.py); that epoch count is recorded
with the choice. The Tuner writes the best choice; the Trainer then trains with it,
for that many epochs (run_fn reads `fn_args.hyperparameters`). The module imports no
TFX.

KerasTuner 1.4 builds Keras 3 models when Keras 3 is installed, as it is beside TFX
1.16; the ranker is a tf-keras (Keras 2) model, as TFRS and tf.Transform need. So the
tuner trains its trials itself (`run_trial`) and uses KerasTuner for the search: the
oracle, its trials and their scores, which TFX's Tuner writes out.
"""

import collections
from typing import Dict, List

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft

from contract.model_inputs import ModelInputs
from contract.options import TrainingOptions, TuningOptions, with_hyperparameters
from contract.names import MODEL_INPUTS_KEY, TRAINING_KEY, TUNING_KEY
from modules.data import reader
from modules.training import loop
from modules.training import user_metrics
from modules.transform import table_sizes

EPOCHS = 'epochs'


class GridOracle(keras_tuner.oracles.GridSearchOracle):
  """Every combination of the listed options once, in order (up to `max_trials`), so two
  searches of the same space try the same points (their scores still differ by the
  training's own noise, about 1e-4 AUC on CPU).

  `epochs` is not an axis of the grid but what each trial recorded (best_epoch_result):
  KerasTuner's grid steps from the last trial's values through each value's position in
  its list, and a trial's own epoch count is in no list. The grid is stepped as if every
  trial had the count the space holds."""

  def _as_grid_point(self, values):
    fixed = {hp.name: hp.default for hp in self.get_space().space}
    return {**values, EPOCHS: fixed[EPOCHS]} if EPOCHS in values else values

  def _get_next_combination(self, values):
    return super()._get_next_combination(self._as_grid_point(values))

  def _compare(self, a, b):
    return super()._compare(self._as_grid_point(a), self._as_grid_point(b))


ORACLES = {'random': keras_tuner.oracles.RandomSearchOracle,
           'bayesian': keras_tuner.oracles.BayesianOptimizationOracle,
           'grid': GridOracle}


class RankerTuner(keras_tuner.Tuner):
  """Choices of the searched options, each trained as the Trainer would."""

  def __init__(self, model_inputs: ModelInputs, training: TrainingOptions,
               tuning: TuningOptions, fn_args):
    search_space = keras_tuner.HyperParameters()
    for name, choices in tuning.search_space().items():
      search_space.Choice(name, list(choices))
    super().__init__(
        oracle=ORACLES[tuning.oracle](
            objective=keras_tuner.Objective(tuning.objective_key, direction='max'),
            max_trials=tuning.max_trials, seed=tuning.seed, hyperparameters=search_space),
        directory=fn_args.working_dir, project_name='ranker', overwrite=True)
    self._model_inputs, self._training, self._tuning = model_inputs, training, tuning
    self._train_files, self._validation_files = fn_args.train_files, fn_args.eval_files
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    self._table_sizes = table_sizes.table_sizes_from_schema(tft_output, model_inputs)
    self._feature_spec = tft_output.transformed_feature_spec()
    self._callbacks = []
    if tuning.objective != 'auc':
      if training.input_format != 'columnar':
        raise ValueError(f'tuning.objective: {tuning.objective} reads whole columnar '
                         'splits; set training.input_format: columnar')
      self._callbacks.append(user_metrics.UserMetricsCallback(user_metrics.UserMetrics(
          model_inputs, reader.split_dir(self._train_files),
          reader.split_dir(self._validation_files)), tuning.recall_at))

  def run_trial(self, trial, *args, **kwargs) -> Dict[str, float]:
    model_inputs, training = with_hyperparameters(self._model_inputs, self._training,
                                                  trial.hyperparameters.values)
    tf.keras.backend.clear_session()  # the last trial's tables go
    tf.keras.utils.set_random_seed(training.seed)
    counts = loop.item_counts(model_inputs, training, self._table_sizes,
                              self._train_files, self._feature_spec)
    model, _ = loop.make_model(model_inputs, training, self._table_sizes,
                               tf.distribute.get_strategy(), counts)
    batch, input_format = training.batch_size, training.input_format
    history = model.fit(
        reader.input_dataset(input_format, self._train_files, self._feature_spec, batch,
                             shuffle=True, seed=training.seed, repeat=True),
        epochs=self._tuning.epochs,
        steps_per_epoch=reader.steps_per_pass(input_format, self._train_files, 1, batch,
                                              'train'),
        validation_data=reader.input_dataset(input_format, self._validation_files,
                                             self._feature_spec, batch, shuffle=False,
                                             seed=training.seed),
        validation_steps=reader.steps_per_pass(input_format, self._validation_files, 1,
                                               batch, 'validation'),
        callbacks=self._callbacks, verbose=2)
    return best_epoch_result(trial, self._tuning.objective_key,
                             history.history[self._tuning.objective_key])


def best_epoch_result(trial, objective: str, scores: List[float]) -> Dict[str, float]:
  """A trial's score from its per-epoch validation scores: its best epoch's. That epoch
  count is part of what the trial chose, recorded with its values as `epochs`: the
  Trainer trains that long, not past the point where validation fell."""
  best_epoch = max(range(len(scores)), key=scores.__getitem__)
  # The first trial's `Fixed` puts `epochs` into the oracle's search space with its
  # count, and every later trial starts with that value, which `Fixed` then keeps (it
  # returns a value already there): each trial's own count is set over it.
  trial.hyperparameters.Fixed(EPOCHS, best_epoch + 1)
  trial.hyperparameters.values[EPOCHS] = best_epoch + 1
  return {objective: scores[best_epoch]}


# What TFX's Tuner executor reads off tuner_fn's result (its TunerFnResult has these
# two fields; this module imports no TFX).
TunerFnResult = collections.namedtuple('TunerFnResult', ['tuner', 'fit_kwargs'])


def tuner_fn(fn_args) -> TunerFnResult:
  """TFX Tuner entry point.

  Args:
    fn_args: TFX's FnArgs: train_files, eval_files, transform_graph_path, working_dir
      and custom_config (the model inputs, training and tuning options).

  Returns:
    The tuner and what its `search` is called with.
  """
  tuner = RankerTuner(ModelInputs.from_dict(fn_args.custom_config[MODEL_INPUTS_KEY]),
                      TrainingOptions.from_dict(fn_args.custom_config[TRAINING_KEY]),
                      TuningOptions.from_dict(fn_args.custom_config[TUNING_KEY]), fn_args)
  return TunerFnResult(tuner=tuner, fit_kwargs={})
