"""TFX Tuner's `tuner_fn`: a KerasTuner random search over the run config's `tuning:`.

Each trial builds the ranker the Trainer builds (modules/training/loop.py) with one choice of
the listed options, trains it up to `tuning.epochs` epochs on the train split and is
scored by its best epoch's AUC on the validation split; that epoch count is recorded
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
from modules.transform import table_sizes

OBJECTIVE = 'val_auc'


class RankerTuner(keras_tuner.Tuner):
  """Random choices of the searched options, each trained as the Trainer would."""

  def __init__(self, model_inputs: ModelInputs, training: TrainingOptions,
               tuning: TuningOptions, fn_args):
    search_space = keras_tuner.HyperParameters()
    for name, choices in tuning.search_space().items():
      search_space.Choice(name, list(choices))
    super().__init__(
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective=keras_tuner.Objective(OBJECTIVE, direction='max'),
            max_trials=tuning.max_trials, seed=tuning.seed, hyperparameters=search_space),
        directory=fn_args.working_dir, project_name='ranker', overwrite=True)
    self._model_inputs, self._training, self._tuning = model_inputs, training, tuning
    self._train_files, self._validation_files = fn_args.train_files, fn_args.eval_files
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    self._table_sizes = table_sizes.table_sizes_from_schema(tft_output, model_inputs)
    self._feature_spec = tft_output.transformed_feature_spec()

  def run_trial(self, trial, *args, **kwargs) -> Dict[str, float]:
    model_inputs, training = with_hyperparameters(self._model_inputs, self._training,
                                                  trial.hyperparameters.values)
    tf.keras.backend.clear_session()  # the last trial's tables go
    tf.keras.utils.set_random_seed(training.seed)
    model, _ = loop.make_model(model_inputs, training, self._table_sizes,
                                  tf.distribute.get_strategy())
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
        verbose=2)
    return best_epoch_result(trial, history.history[OBJECTIVE])


def best_epoch_result(trial, scores: List[float]) -> Dict[str, float]:
  """A trial's score from its per-epoch validation AUCs: its best epoch's. That epoch
  count is part of what the trial chose, recorded with its values as `epochs`: the
  Trainer trains that long, not past the point where validation fell."""
  best_epoch = max(range(len(scores)), key=scores.__getitem__)
  # The first trial's `Fixed` puts `epochs` into the oracle's search space with its
  # count, and every later trial starts with that value, which `Fixed` then keeps (it
  # returns a value already there): each trial's own count is set over it.
  trial.hyperparameters.Fixed('epochs', best_epoch + 1)
  trial.hyperparameters.values['epochs'] = best_epoch + 1
  return {OBJECTIVE: scores[best_epoch]}


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
