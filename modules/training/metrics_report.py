"""metrics.json beside the trained model: what the run did and how it ended.

The per-epoch history, the final validation metrics, the table sizes, the replicas,
the catalogue's retrieval figures and the config the model was trained with.
"""

import json
import os
import sys
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf

from contract.model_inputs import ModelInputs
from contract.names import MODEL_INPUTS_KEY, TRAINING_KEY
from contract.options import TrainingOptions

def _final_metrics(history: Mapping[str, List[float]]) -> Dict[str, float]:
  return {name[len('val_'):]: values[-1] for name, values in history.items()
          if name.startswith('val_')}


def write(model_run_dir: str, history: Mapping[str, List[float]],
                  table_sizes: Mapping[str, int], strategy: tf.distribute.Strategy,
                  model_inputs: ModelInputs, training: TrainingOptions,
                  catalogue_report: Optional[Dict[str, int]] = None) -> None:
  """Writes <model_run_dir>/metrics.json."""
  report = {
      'history': history,
      'eval': _final_metrics(history),
      'table_sizes': table_sizes,
      'replicas': strategy.num_replicas_in_sync,
      # Retrieval's item catalogue: its items, how many share a row with another, and
      # recall@K of the validation users' positive items (and of the most popular, and
      # with a ScaNN index the share of the exact top K it finds).
      'catalogue': catalogue_report,
      'config': {MODEL_INPUTS_KEY: model_inputs.to_dict(), TRAINING_KEY: training.to_dict()},
      'command': sys.argv,
  }
  with tf.io.gfile.GFile(os.path.join(model_run_dir, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, default=float)
