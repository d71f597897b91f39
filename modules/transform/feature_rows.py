"""Each feature kind's row function: a table's columns -> int64 rows of the table.

    hash        a value hashed into `vocab_size` buckets (or an int id taken as it is)
    vocabulary  the value's index in Transform's vocabulary; rare, unseen or missing
                values share the `num_oov_buckets` rows after it
    multi_hot   a delimited list of values -> a [batch, None] sparse tensor of rows,
                each through the vocabulary as above
    numeric     a quantile bucket of `num_buckets`; a missing value gets row num_buckets

Every row function takes the tensors of the columns sharing one table, their features
and the table's name, and returns {feature name: rows}. The table's size is written into
the transformed schema (int_domain [0, rows - 1]), where the Trainer reads it. ROWS maps
each kind of contract/feature_kinds.py to its function.
"""

from typing import Callable, Dict, Sequence

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

from contract.feature_kinds import KINDS, kind_of
from contract.model_inputs import Feature

def _dense(tensor, default_value):
  """A [batch] dense tensor from a dense [batch, 1] or a sparse [batch, None] column.

  A curated schema makes a required column dense; an optional (or inferred) one is
  sparse, and a missing value then becomes `default_value`.
  """
  if isinstance(tensor, tf.sparse.SparseTensor):
    tensor = tf.sparse.to_dense(
        tf.sparse.SparseTensor(tensor.indices, tensor.values,
                               [tensor.dense_shape[0], 1]),
        default_value=default_value)
  return tf.reshape(tensor, [-1])


def _strings(tensor) -> tf.Tensor:
  """[batch] strings; ints by their decimal form (so 42 and "42" are one value, and
  serving can take either type); a missing value is ''."""
  values = _dense(tensor, '' if tensor.dtype == tf.string else 0)
  if values.dtype != tf.string:
    if isinstance(tensor, tf.sparse.SparseTensor):
      present = _dense(tf.sparse.map_values(tf.ones_like, tensor), 0) > 0
      return tf.where(present, tf.strings.as_string(values), '')
    values = tf.strings.as_string(values)
  return values


def floats(tensor) -> tf.Tensor:
  """[batch] float32 values; a missing value is NaN."""
  if isinstance(tensor, tf.sparse.SparseTensor):
    tensor = tf.sparse.map_values(tf.cast, tensor, tf.float32)
  return _dense(tf.cast(tensor, tf.float32) if isinstance(tensor, tf.Tensor) else tensor,
                float('nan'))


def _set_rows(rows, count) -> None:
  """Records the table's size in the transformed schema: rows in [0, count)."""
  schema_inference.set_tensor_schema_override(
      rows, tf.constant(0, tf.int64), tf.cast(count, tf.int64) - 1)


def hash_rows(tensors: Sequence, features: Sequence[Feature],
              table: str) -> Dict[str, tf.Tensor]:
  """kind hash: each column's ids -> rows of the table, in [0, vocab_size)."""
  del table  # hashing needs no shared analysis
  outputs = {}
  for tensor, feature in zip(tensors, features):
    if feature.hash:
      rows = tft.hash_strings(_strings(tensor), feature.vocab_size)
    else:
      rows = tf.math.floormod(_dense(tensor, 0), feature.vocab_size)
    _set_rows(rows, feature.vocab_size)
    outputs[feature.name] = rows
  return outputs


def _tokens(tensor, feature: Feature):
  """A column's string values: [batch], or a multi_hot column's lists as a sparse
  [batch, None]."""
  values = _strings(tensor)
  if feature.multi_valued:
    return tf.strings.split(values, sep=feature.delimiter).to_sparse()
  return values


def vocabulary_rows(tensors: Sequence, features: Sequence[Feature],
                    table: str) -> Dict[str, tf.Tensor]:
  """kinds vocabulary and multi_hot: one vocabulary over the table's columns, and each
  column's values as its rows ([batch], or sparse [batch, None] for multi_hot; TFT
  records the vocabulary's size plus num_oov_buckets as the domain)."""
  options = features[0]
  tokens = [_tokens(t, f) for t, f in zip(tensors, features)]
  seen = tf.concat([t.values if isinstance(t, tf.sparse.SparseTensor) else t
                    for t in tokens], axis=0)
  # '' (a missing value, or an empty item of a list) never enters the vocabulary: it is
  # always out of vocabulary, so a request without the feature gets an OOV row.
  vocabulary = tft.vocabulary(tf.boolean_mask(seen, tf.not_equal(seen, '')),
                              top_k=options.top_k,
                              frequency_threshold=options.frequency_threshold,
                              vocab_filename=table)
  return {feature.name: tft.apply_vocabulary(values, vocabulary,
                                             num_oov_buckets=options.num_oov_buckets)
          for feature, values in zip(features, tokens)}


def numeric_rows(tensors: Sequence, features: Sequence[Feature],
                 table: str) -> Dict[str, tf.Tensor]:
  """kind numeric: the bucket of each value among quantile boundaries computed over the
  table's columns, in [0, num_buckets); a missing value (or NaN) is row num_buckets."""
  del table  # tft.quantiles needs no name
  num_buckets = features[0].num_buckets
  values = [floats(t) for t in tensors]
  present = [tf.logical_not(tf.math.is_nan(v)) for v in values]
  boundaries = tft.quantiles(
      tf.concat([tf.boolean_mask(v, p) for v, p in zip(values, present)], axis=0),
      num_buckets, epsilon=0.01 / num_buckets)
  outputs = {}
  for feature, column, known in zip(features, values, present):
    buckets = tft.apply_buckets(tf.where(known, column, 0.0), boundaries)
    rows = tf.where(known, buckets, tf.constant(num_buckets, tf.int64))
    _set_rows(rows, num_buckets + 1)
    outputs[feature.name] = rows
  return outputs


RowFunction = Callable[[Sequence, Sequence[Feature], str], Dict[str, tf.Tensor]]
ROWS: Dict[str, RowFunction] = {
    'hash': hash_rows,
    'vocabulary': vocabulary_rows,
    'multi_hot': vocabulary_rows,
    'numeric': numeric_rows,
}
assert set(ROWS) == set(KINDS), 'a kind of contract/feature_kinds.py has no row function'


def rows_of(kind: str) -> RowFunction:
  """The row function of a kind; raises ValueError on a kind KINDS does not hold."""
  return ROWS[kind_of(kind).name]
