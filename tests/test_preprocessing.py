"""preprocessing_fn, run through tf.Transform on Beam exactly as the Transform component runs it."""

import functools
import os

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils

from contract.model_inputs import FeatureSpec, LabelSpec, ModelInputs
from contract.names import MODEL_INPUTS_KEY
from modules import preprocessing

USER = FeatureSpec(name='userId', column_type='int', hash=True, vocab_size=1000,
                   embedding_dim=8, belongs_to='user')
ITEM = FeatureSpec(name='movieId', column_type='string', hash=True, vocab_size=50,
                   embedding_dim=8, belongs_to='item')
RATING_AT_LEAST_4 = LabelSpec(column='rating', operator='>=', threshold=4.0)

ROWS = [
    {'userId': [1], 'movieId': [b'1'], 'rating': [4.0]},
    {'userId': [42], 'movieId': [b'42'], 'rating': [3.5]},
    {'userId': [42], 'movieId': [b'toy story'], 'rating': [5.0]},
    {'userId': [-7], 'movieId': [b''], 'rating': [0.5]},
]
DENSE_SPEC = {
    'userId': tf.io.FixedLenFeature([1], tf.int64),
    'movieId': tf.io.FixedLenFeature([1], tf.string),
    'rating': tf.io.FixedLenFeature([1], tf.float32),
}
# An inferred schema without shapes gives VarLen columns, which arrive sparse.
SPARSE_SPEC = {
    'userId': tf.io.VarLenFeature(tf.int64),
    'movieId': tf.io.VarLenFeature(tf.string),
    'rating': tf.io.VarLenFeature(tf.float32),
}


def _analyze_and_transform(rows, feature_spec, model_inputs, tmp_path):
  custom_config = {MODEL_INPUTS_KEY: model_inputs.to_dict()}
  transform_fn_dir = str(tmp_path / 'transform_fn')
  raw_metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(feature_spec))
  # Given plain lists, tf.Transform runs its own Beam pipeline and returns lists.
  with tft_beam.Context(temp_dir=str(tmp_path / 'tmp')):
    (transformed, _), transform_fn = (rows, raw_metadata) | tft_beam.AnalyzeAndTransformDataset(
        functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config))
    _ = transform_fn | tft_beam.WriteTransformFn(transform_fn_dir)
  # The Transform component also writes the raw schema there; serving parses with it.
  metadata_io.write_metadata(raw_metadata, os.path.join(
      transform_fn_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return transformed, tft.TFTransformOutput(transform_fn_dir)


def _rows(rows):
  return sorted((int(r['userId']), int(r['movieId']), int(r['label'])) for r in rows)


# FarmHash Fingerprint64 of each id's string form, modulo the bucket count. Literal on
# purpose: if these ever change, every trained table silently points at other rows.
EXPECTED_ROWS = sorted([
    (849, 49, 1),   # userId 1,  movieId "1",         rating 4.0 >= 4
    (736, 36, 0),   # userId 42, movieId "42",        rating 3.5
    (736, 18, 1),   # userId 42, movieId "toy story", rating 5.0
    (62, 13, 0),    # userId -7, movieId "",          rating 0.5
])


@pytest.mark.parametrize('feature_spec', [DENSE_SPEC, SPARSE_SPEC], ids=['dense', 'sparse'])
def test_ids_are_hashed_and_the_label_derived(feature_spec, tmp_path):
  model_inputs = ModelInputs(features=(USER, ITEM), label=RATING_AT_LEAST_4)
  rows, output = _analyze_and_transform(ROWS, feature_spec, model_inputs, tmp_path)
  assert _rows(rows) == EXPECTED_ROWS
  assert output.transformed_feature_spec() == {
      'userId': tf.io.FixedLenFeature([], tf.int64),
      'movieId': tf.io.FixedLenFeature([], tf.int64),
      'label': tf.io.FixedLenFeature([], tf.int64),
  }


def test_bucket_counts_are_recorded_in_the_transformed_schema(tmp_path):
  model_inputs = ModelInputs(features=(USER, ITEM), label=RATING_AT_LEAST_4)
  _, output = _analyze_and_transform(ROWS, DENSE_SPEC, model_inputs, tmp_path)
  domains = {f.name: (f.int_domain.min, f.int_domain.max)
             for f in output.transformed_metadata.schema.feature if f.HasField('int_domain')}
  assert domains['userId'] == (0, 999)
  assert domains['movieId'] == (0, 49)


def test_ids_and_their_digits_as_strings_share_a_bucket(tmp_path):
  as_string = USER.model_copy(update={'column_type': 'string'})
  model_inputs = ModelInputs(features=(as_string, ITEM), label=RATING_AT_LEAST_4)
  rows = [{**row, 'userId': [str(row['userId'][0]).encode()]} for row in ROWS]
  spec = {**DENSE_SPEC, 'userId': tf.io.FixedLenFeature([1], tf.string)}
  transformed, _ = _analyze_and_transform(rows, spec, model_inputs, tmp_path)
  assert _rows(transformed) == EXPECTED_ROWS


def test_unhashed_ids_index_the_table_directly(tmp_path):
  direct = USER.model_copy(update={'hash': False, 'vocab_size': 40})
  model_inputs = ModelInputs(features=(direct, ITEM), label=RATING_AT_LEAST_4)
  transformed, output = _analyze_and_transform(ROWS, DENSE_SPEC, model_inputs, tmp_path)
  # In range: the id itself; out of range: folded in, never dropped.
  assert sorted(int(r['userId']) for r in transformed) == [1, 2, 2, 33]
  schema = output.transformed_metadata.schema
  user = next(f for f in schema.feature if f.name == 'userId')
  assert (user.int_domain.min, user.int_domain.max) == (0, 39)


@pytest.mark.parametrize('operator, expected', [
    ('>=', [1, 0, 1, 0]), ('>', [0, 0, 1, 0]), ('<', [0, 1, 0, 1]), ('==', [1, 0, 0, 0]),
])
def test_label_operators(operator, expected, tmp_path):
  label = LabelSpec(column='rating', operator=operator, threshold=4.0)
  model_inputs = ModelInputs(features=(USER, ITEM), label=label)
  transformed, _ = _analyze_and_transform(ROWS, DENSE_SPEC, model_inputs, tmp_path)
  label_by_ids = {(int(r['userId']), int(r['movieId'])): int(r['label'])
                  for r in transformed}
  # The ids of ROWS, in order, as hashed above: ratings 4.0, 3.5, 5.0, 0.5.
  ids_of_rows = [(849, 49), (736, 36), (736, 18), (62, 13)]
  assert [label_by_ids[ids] for ids in ids_of_rows] == expected
