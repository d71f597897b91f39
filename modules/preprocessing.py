"""Transform's `preprocessing_fn`: raw id columns -> embedding-table rows, and the label.

Each id is hashed into exactly its feature's `vocab_size` buckets, and that bucket
count is written into the transformed schema (int_domain [0, vocab_size - 1]), which is
where the Trainer reads table sizes from: the config is not consulted twice.
The features and label arrive through Transform's `custom_config`, never as globals.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

from contract.model_inputs import FeatureSpec, LabelSpec, ModelInputs
from contract.names import LABEL_KEY, MODEL_INPUTS_KEY

_COMPARISONS = {
    '>=': tf.greater_equal,
    '>': tf.greater,
    '<=': tf.less_equal,
    '<': tf.less,
    '==': tf.equal,
    '!=': tf.not_equal,
}


def _dense(tensor, default_value):
  """A [batch] dense tensor from a dense [batch, 1] or a sparse [batch, None] column.

  A curated schema makes every column dense; an inferred one may not, and a missing id
  then becomes the default (an empty string hashes like any other unseen id).
  """
  if isinstance(tensor, tf.sparse.SparseTensor):
    tensor = tf.sparse.to_dense(
        tf.sparse.SparseTensor(tensor.indices, tensor.values,
                               [tensor.dense_shape[0], 1]),
        default_value=default_value)
  return tf.reshape(tensor, [-1])


def bucketize_id(tensor, feature: FeatureSpec):
  """Maps ids to rows of the feature's table, in [0, vocab_size)."""
  if feature.hash:
    ids = _dense(tensor, '' if tensor.dtype == tf.string else 0)
    if ids.dtype != tf.string:
      # Ints hash by their decimal form, so 42 and "42" share a row, and serving can
      # take either type.
      ids = tf.strings.as_string(ids)
    buckets = tft.hash_strings(ids, feature.vocab_size)
  else:
    buckets = tf.math.floormod(_dense(tensor, 0), feature.vocab_size)
  # tft.hash_strings leaves the domain unset; the Trainer sizes tables from it.
  schema_inference.set_tensor_schema_override(
      buckets, tf.constant(0, tf.int64), tf.constant(feature.vocab_size - 1, tf.int64))
  return buckets


def derive_label(tensor, label: LabelSpec):
  """The 0/1 label, e.g. `rating >= 4`, as int64 for the BCE loss and TFMA."""
  values = tf.cast(_dense(tensor, float('nan')), tf.float32)
  positive = _COMPARISONS[label.operator](values, label.threshold)
  return tf.cast(positive, tf.int64)


def preprocessing_fn(inputs, custom_config):
  """tf.Transform entry point: one int64 bucket per id feature, plus `label`."""
  model_inputs = ModelInputs.from_dict(custom_config[MODEL_INPUTS_KEY])
  outputs = {f.name: bucketize_id(inputs[f.name], f) for f in model_inputs.features}
  outputs[LABEL_KEY] = derive_label(inputs[model_inputs.label.column], model_inputs.label)
  return outputs
