"""Warm start: a new model's tables start from those of a SavedModel this project exported.

Hashing keeps an id's row from one run to the next, so a table of the same shape can be
carried over; the shapes are read from the SavedModel's checkpoint, nothing is loaded.
"""

import os
from typing import Dict, List, Mapping, Optional

import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2  # pylint: disable=g-direct-tensorflow-import

from contract.model_inputs import ModelInputs

def saved_table_shapes(saved_model_dir: str) -> Dict[str, List[int]]:
  """{table: [rows, dim]} of the tables in a SavedModel this project exported, read
  from its checkpoint's object graph (nothing is loaded)."""
  reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, 'variables', 'variables'))
  graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
      reader.get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH'))
  node = 0
  for name in ('model', 'embedding', '_tpu_embedding'):
    node = next((c.node_id for c in graph.nodes[node].children if c.local_name == name),
                None)
    if node is None:
      return {}
  shapes = reader.get_variable_to_shape_map()
  tables = {}
  for child in graph.nodes[node].children:
    if child.local_name.endswith('_table'):
      key = next(a.checkpoint_key for a in graph.nodes[child.node_id].attributes
                 if a.name == 'VARIABLE_VALUE')
      tables[child.local_name[:-len('_table')]] = shapes[key]
  return tables


def why_not_warm(saved_shapes: Mapping[str, List[int]], model_inputs: ModelInputs,
                 table_sizes: Mapping[str, int]) -> Optional[str]:
  """Why tables of these shapes cannot start this model's, or None when they can."""
  for table, features in model_inputs.tables().items():
    wanted = [table_sizes[table], features[0].embedding_dim]
    if table not in saved_shapes:
      return f'the base model has no {table} table'
    if list(saved_shapes[table]) != wanted:
      have = ' x '.join(map(str, saved_shapes[table]))
      return f'its {table} table is {have}, this run\'s is {wanted[0]} x {wanted[1]}'
  return None


def warm_start(model: 'RankingModel', saved_model_dir: str) -> None:
  """Starts the model's tables from a SavedModel's (their optimizer slots start fresh).
  Restoring is deferred to variable creation when the model is not built yet."""
  tf.train.Checkpoint(model=model).restore(
      os.path.join(saved_model_dir, 'variables', 'variables')).expect_partial()
