"""Reading an artifact's files, local or on Cloud Storage, without importing TensorFlow
for local paths (so that listing runs stays quick)."""

import os
from typing import Any, Dict, List

from pipeline import paths


def read_bytes(path: str) -> bytes:
  if paths.is_uri(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, 'rb') as f:
      return f.read()
  with open(path, 'rb') as f:
    return f.read()


def list_dir(path: str) -> List[str]:
  if paths.is_uri(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return [name.rstrip('/') for name in tf.io.gfile.listdir(path)]
  return os.listdir(path) if os.path.isdir(path) else []


def splits(uri: str) -> List[str]:
  """The split names of a split artifact (its Split-<name> folders)."""
  return sorted(name[len('Split-'):] for name in list_dir(uri) if name.startswith('Split-'))


def split_protos(uri: str, file_name: str, proto_class) -> Dict[str, Any]:
  """Per split of a split artifact: its `file_name`, a serialized `proto_class`."""
  return {split: proto_class.FromString(
      read_bytes(os.path.join(uri, f'Split-{split}', file_name))) for split in splits(uri)}
