"""metrics.json beside the trained model: what the run did and how it ended.

The per-epoch history, the final validation metrics, the table sizes, the replicas,
the catalogue's retrieval figures and the config the model was trained with.
"""

import json
import logging
import os
import sys
from typing import Dict, List, Mapping, Optional

import tensorflow as tf

from contract.model_inputs import ModelInputs
from contract.names import MODEL_INPUTS_KEY, TRAINING_KEY
from contract.options import TrainingOptions

def _final_metrics(history: Mapping[str, List[float]]) -> Dict[str, float]:
  return {name[len('val_'):]: values[-1] for name, values in history.items()
          if name.startswith('val_')}


# How each embedding API TFRS may pick places the tables (TFRS 0.7.7 picks by the TPU's
# embedding hardware; off a TPU the tables are ordinary variables).
_PLACEMENTS = {
    'TPUEmbeddingForServing': 'ordinary variables on the host (no TPU), a copy per replica',
    'TPUEmbeddingV0': 'replicated: every table and its optimizer slots whole on each TPU '
                      'chip (no embedding hardware, e.g. v5e)',
    'TPUEmbedding': 'sharded over the TPU cores by their embedding hardware (v2, v3, v4)',
    'TPUEmbeddingV2': 'sharded over the TPU SparseCores (v5p, v6e)',
}


def embedding_placement(model: tf.keras.Model) -> Dict[str, str]:
  """{api, placement}: the embedding API TFRS chose for the model's tables, and how
  that places them (a config that fits one placement may not fit another)."""
  layer = getattr(model.embedding, '_tpu_embedding', None)
  api = type(layer).__name__ if layer is not None else 'unknown'
  placement = _PLACEMENTS.get(api, 'unknown')
  logging.info('Embedding tables: %s, %s', api, placement)
  return {'api': api, 'placement': placement}


def write(model_run_dir: str, history: Mapping[str, List[float]],
          table_sizes: Mapping[str, int], strategy: tf.distribute.Strategy,
          model_inputs: ModelInputs, training: TrainingOptions,
          catalogue_report: Optional[Dict[str, int]] = None,
          embedding: Optional[Dict[str, str]] = None) -> None:
  """Writes <model_run_dir>/metrics.json."""
  report = {
      'history': history,
      'eval': _final_metrics(history),
      'table_sizes': table_sizes,
      'replicas': strategy.num_replicas_in_sync,
      # The embedding API TFRS chose and how it placed the tables.
      'embedding': embedding,
      # Retrieval's item catalogue: its items, how many share a row with another, and
      # recall@K of the validation users' positive items (and of the most popular, and
      # with a ScaNN index the share of the exact top K it finds).
      'catalogue': catalogue_report,
      'config': {MODEL_INPUTS_KEY: model_inputs.to_dict(), TRAINING_KEY: training.to_dict()},
      'command': sys.argv,
  }
  with tf.io.gfile.GFile(os.path.join(model_run_dir, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, default=float)
