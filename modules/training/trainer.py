"""TFX Trainer's `run_fn`: trains the ranker on Transform's output and exports it.

Everything the run needs comes from `fn_args`: the transformed splits, the transform
graph (whose schema sizes the tables) and `custom_config` (the model inputs, training
and retrieval options of the run config). The module imports no TFX.
"""

import logging
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from contract.model_inputs import ModelInputs
from contract.names import MODEL_INPUTS_KEY, RETRIEVAL_KEY, SCANN_INDEX_DIR, TRAINING_KEY
from contract.options import RetrievalOptions, TrainingOptions, with_hyperparameters
from modules.data import catalogue
from modules.data import reader
from modules.model import ranking
from modules.serving import export
from modules.serving import retrieval
from modules.serving import retrieval_eval
from modules.training import distribution
from modules.training import loop
from modules.training import metrics_report
from modules.transform import table_sizes as table_sizes_lib


def tuned_values(hyperparameters: Mapping[str, Any]) -> Dict[str, Any]:
  """The values of a KerasTuner HyperParameters config (as the Tuner writes it)."""
  return dict(hyperparameters.get('values', {}))


def run_fn(fn_args) -> ranking.RankingModel:
  """TFX Trainer entry point (GenericExecutor); every worker of a cluster runs it.

  Args:
    fn_args: TFX's FnArgs: train_files, eval_files, transform_output,
      serving_model_dir, model_run_dir, custom_config, and optionally hyperparameters
      (the Tuner's best) and base_model (a model to warm-start the tables from).

  Returns:
    The trained model (TFX ignores it; the multi-worker test compares workers).
  """
  model_inputs = ModelInputs.from_dict(fn_args.custom_config[MODEL_INPUTS_KEY])
  training = TrainingOptions.from_dict(fn_args.custom_config[TRAINING_KEY])
  retrieval_options = RetrievalOptions.from_dict(fn_args.custom_config.get(RETRIEVAL_KEY, {}))
  if getattr(fn_args, 'hyperparameters', None):
    # The Tuner's best values replace the config's.
    best = tuned_values(fn_args.hyperparameters)
    logging.info('Training with the Tuner\'s best hyperparameters: %s', best)
    model_inputs, training = with_hyperparameters(model_inputs, training, best)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  table_sizes = table_sizes_lib.table_sizes_from_schema(tft_output, model_inputs)

  strategy = distribution.create(training.tpu)
  chief = distribution.is_chief(strategy)
  # Every worker saves (saving a distributed variable takes part in collectives), but
  # only the chief where TFX looks; the others in a directory removed afterwards.
  write_dir = fn_args.model_run_dir if chief else tempfile.mkdtemp(prefix='ranker-worker-')
  backup_dir = os.path.join(fn_args.model_run_dir, 'backup')
  try:
    model, checkpoint_path, history = loop.train(
        model_inputs, training, table_sizes, fn_args.train_files, fn_args.eval_files,
        tft_output.transformed_feature_spec(), write_dir, backup_dir, strategy,
        base_model=getattr(fn_args, 'base_model', None))
  finally:
    if not chief:
      shutil.rmtree(write_dir, ignore_errors=True)
  if chief:
    _export(fn_args, checkpoint_path, model_inputs, training, retrieval_options,
            table_sizes, tft_output, history, strategy,
            metrics_report.embedding_placement(model))
  distribution.barrier(strategy)
  if chief and tf.io.gfile.exists(backup_dir):
    # Training has ended: nothing to resume. Keras empties the backup, not its folder.
    tf.io.gfile.rmtree(backup_dir)
  return model


def _export(fn_args, checkpoint_path, model_inputs, training, retrieval_options,
            table_sizes, tft_output, history, strategy, embedding) -> None:
  """The chief's part: the SavedModel (with the catalogue when columnar input gathered
  one), the ScaNN index when configured, and metrics.json."""
  catalogue_path = None
  if training.input_format == 'columnar':
    train_dir = reader.split_dir(fn_args.train_files)
    catalogue_path = catalogue.find(train_dir)
  module = export.export(checkpoint_path, model_inputs, table_sizes, training.losses,
                         tft_output, fn_args.serving_model_dir, catalogue_path)
  index = None
  if retrieval_options.index == 'scann' and module.catalogue_vectors is not None:
    index = retrieval.ScannIndex(module.catalogue_vectors, module.catalogue_ids,
                                 retrieval_options, module.catalogue_offsets)
    index.save(os.path.join(fn_args.serving_model_dir, SCANN_INDEX_DIR))
  catalogue_report = None
  if module.catalogue_vectors is not None:  # only with a catalogue: columnar input
    catalogue_report = retrieval_eval.catalogue_report(
        module, model_inputs, train_dir, reader.split_dir(fn_args.eval_files), index)
  metrics_report.write(fn_args.model_run_dir, history, table_sizes, strategy, model_inputs,
                       training, catalogue_report, embedding)
