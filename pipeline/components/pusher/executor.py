"""The Pusher's executor, minus duplicate pushes.

A rerun with nothing changed reuses the cached Trainer's model, the Evaluator blesses it
again (against itself, now the latest blessed model), and TFX's Pusher would copy it into
a new serving version: a byte-identical model that a model server loads as an update.
This executor pushes a blessed model only when it differs from the newest version already
in the serving directory, and records why when it does not.

TFX's push leaves out every file named saved_model.pb but the model's own (copied last:
a model server takes it as the sign that the version is complete), so a SavedModel
inside the model's folder (the ScaNN index, modules/serving/retrieval.py) arrives without its
graph; this executor copies those right after.
"""

import hashlib
import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from contract.names import ALREADY_PUSHED_KEY

# Where a pushed model's content is summed up: SavedModel's own fingerprint (hashes of
# the graph, the signatures and the variables' index, whose entries carry a checksum of
# every tensor), with the files it is made from as a fallback for older SavedModels.
_FINGERPRINT_FILES = ('fingerprint.pb', 'saved_model.pb', 'variables/variables.index')


def model_fingerprint(model_dir: str) -> Optional[str]:
  """A digest of a SavedModel's content; None when the directory holds none."""
  digest = hashlib.sha256()
  found = False
  for name in _FINGERPRINT_FILES:
    path = os.path.join(model_dir, name)
    if fileio.exists(path):
      with fileio.open(path, 'rb') as f:
        digest.update(name.encode() + b'\0' + f.read())
      found = True
  return digest.hexdigest() if found else None


def newest_version(base_directory: str) -> Optional[str]:
  """The newest numbered version under a serving directory, as TF Serving picks it."""
  if not fileio.exists(base_directory):
    return None
  versions = [name.rstrip('/') for name in fileio.listdir(base_directory)
              if name.rstrip('/').isdigit()]
  if not versions:
    return None
  return os.path.join(base_directory, max(versions, key=int))


class Executor(tfx_pusher.Executor):
  """TFX's filesystem push, skipped when the serving directory already serves this model."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    if self.CheckBlessing(input_dict):
      destination = pusher_pb2.PushDestination()
      proto_utils.json_to_proto(
          exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
      newest = newest_version(destination.filesystem.base_directory)
      candidate = model_fingerprint(self.GetModelPath(input_dict))
      if newest and candidate and model_fingerprint(newest) == candidate:
        model_push = output_dict[standard_component_specs.PUSHED_MODEL_KEY][0]
        self._MarkNotPushed(model_push)
        model_push.set_string_custom_property(ALREADY_PUSHED_KEY, newest)
        logging.info('Not pushed: %s already serves this model.', newest)
        return
    self._model_path = self.GetModelPath(input_dict)
    super().Do(input_dict, output_dict, exec_properties)

  def _MarkPushed(self, model_push: types.Artifact, pushed_destination: str,
                  pushed_version: Optional[str] = None) -> None:
    # Called once the model is in pushed_destination.
    for inner_dir, _, files in fileio.walk(self._model_path):
      if 'saved_model.pb' in files and inner_dir.rstrip('/') != self._model_path.rstrip('/'):
        relative = os.path.relpath(inner_dir, self._model_path)
        fileio.copy(os.path.join(inner_dir, 'saved_model.pb'),
                    os.path.join(pushed_destination, relative, 'saved_model.pb'),
                    overwrite=True)
    super()._MarkPushed(model_push, pushed_destination, pushed_version)
