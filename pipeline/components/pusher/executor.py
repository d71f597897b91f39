"""The Pusher's executor: TFX's filesystem push, made atomic and without duplicates.

A rerun with nothing changed reuses the cached Trainer's model, the Evaluator blesses it
again (against itself, now the latest blessed model), and TFX's Pusher would copy it into
a new serving version: a byte-identical model that a model server loads as an update.
This executor pushes a blessed model only when it differs from the newest version already
in the serving directory, and records why when it does not.

A version appears whole or not at all: the model (nested SavedModels such as the ScaNN
index included) is copied under a name a model server ignores (`.incomplete-<version>`;
TF Serving loads only numbered folders) and renamed to its version number once complete.
A push killed half-way leaves only such a folder, which the next push removes. (On
Cloud Storage a rename is a copy: the version is still only named once complete.)
"""

import hashlib
import logging
import os
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from contract.names import ALREADY_PUSHED_KEY, PREVIOUSLY_SERVING_KEY

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


INCOMPLETE_PREFIX = '.incomplete-'


def newest_version(base_directory: str) -> Optional[str]:
  """The newest complete numbered version under a serving directory, as TF Serving
  picks it (a numbered folder without its saved_model.pb is not one)."""
  if not fileio.exists(base_directory):
    return None
  versions = [name.rstrip('/') for name in fileio.listdir(base_directory)
              if name.rstrip('/').isdigit() and fileio.exists(
                  os.path.join(base_directory, name.rstrip('/'), 'saved_model.pb'))]
  if not versions:
    return None
  return os.path.join(base_directory, max(versions, key=int))


def remove_incomplete_pushes(base_directory: str) -> List[str]:
  """Removes what pushes killed half-way left (never a numbered version); their paths."""
  if not fileio.exists(base_directory):
    return []
  removed = []
  for name in fileio.listdir(base_directory):
    if name.rstrip('/').startswith(INCOMPLETE_PREFIX):
      path = os.path.join(base_directory, name.rstrip('/'))
      fileio.rmtree(path)
      logging.warning('Removed %s, left by a push that did not finish.', path)
      removed.append(path)
  return removed


def push_atomically(model_path: str, base_directory: str) -> str:
  """Copies the SavedModel at `model_path` into a new version under `base_directory`,
  named only once complete; the version's path. Versions are Unix seconds, and always
  above the newest one there."""
  newest = newest_version(base_directory)
  version = int(time.time())
  if newest is not None:
    version = max(version, int(os.path.basename(newest)) + 1)
  staging = os.path.join(base_directory, f'{INCOMPLETE_PREFIX}{version}')
  serving_path = os.path.join(base_directory, str(version))
  io_utils.copy_dir(model_path, staging)
  fileio.rename(staging, serving_path)
  return serving_path


class Executor(tfx_pusher.Executor):
  """The filesystem push: skipped when the serving directory already serves this model,
  and atomic when it happens."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
    base_directory = destination.filesystem.base_directory
    newest = newest_version(base_directory)
    if newest:
      model_push.set_string_custom_property(PREVIOUSLY_SERVING_KEY, newest)
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    remove_incomplete_pushes(base_directory)
    model_path = self.GetModelPath(input_dict)
    candidate = model_fingerprint(model_path)
    if newest and candidate and model_fingerprint(newest) == candidate:
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(ALREADY_PUSHED_KEY, newest)
      logging.info('Not pushed: %s already serves this model.', newest)
      return
    serving_path = push_atomically(model_path, base_directory)
    # The PushedModel artifact archives the model, as TFX's Pusher does.
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=os.path.basename(serving_path))
    logging.info('Model pushed to %s.', serving_path)
