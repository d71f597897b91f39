"""preprocessing_fn, run through tf.Transform on Beam exactly as the Transform component runs it."""

import functools
import os
import typing

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils

from contract import feature_kinds
from contract.model_inputs import Feature, LabelSpec, ModelInputs
from contract.names import MODEL_INPUTS_KEY
from modules.transform import feature_rows
from modules.transform import preprocessing

USER = Feature(name='userId', column_type='int', hash=True, vocab_size=1000,
               embedding_dim=8, belongs_to='user')
ITEM = Feature(name='movieId', column_type='string', hash=True, vocab_size=50,
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
      'label_value': tf.io.FixedLenFeature([], tf.float32),
  }
  # The label's value as the data holds it, for a graded loss.
  assert sorted(float(r['label_value']) for r in rows) == sorted(
      r['rating'][0] for r in ROWS)


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


def _feature(name, column_type, belongs_to='user', **options):
  return Feature(name=name, column_type=column_type, embedding_dim=8,
                 belongs_to=belongs_to, **options)


SIDE_SPEC = {
    **DENSE_SPEC,
    # Optional side columns (no fixed shape): a row may lack them.
    'occupation': tf.io.VarLenFeature(tf.string),
    'age': tf.io.VarLenFeature(tf.int64),
    'genres': tf.io.VarLenFeature(tf.string),
    'favourite_genre': tf.io.VarLenFeature(tf.string),
}
SIDE_ROWS = [
    {'userId': [1], 'movieId': [b'1'], 'rating': [4.0], 'occupation': [b'writer'],
     'age': [20], 'genres': [b'Action|Comedy'], 'favourite_genre': [b'Drama']},
    {'userId': [2], 'movieId': [b'2'], 'rating': [2.0], 'occupation': [b'writer'],
     'age': [30], 'genres': [b'Comedy'], 'favourite_genre': [b'Comedy']},
    {'userId': [3], 'movieId': [b'3'], 'rating': [5.0], 'occupation': [b'doctor'],
     'age': [40], 'genres': [b'Comedy|Drama|Action'], 'favourite_genre': [b'Comedy']},
    {'userId': [4], 'movieId': [b'4'], 'rating': [1.0], 'occupation': [b'writer'],
     'age': [50], 'genres': [b'Horror'], 'favourite_genre': [b'Comedy']},
    # No side values at all: every kind's missing-value row.
    {'userId': [5], 'movieId': [b'5'], 'rating': [3.0], 'occupation': [], 'age': [],
     'genres': [], 'favourite_genre': []},
]


# Ids taken as they are, so that each transformed row can be told by its user.
USER_ROW = _feature('userId', 'int', hash=False, vocab_size=10)


def _by_user(rows):
  return {int(r['userId']): r for r in rows}


def test_each_kind_gives_rows_and_records_its_table_size(tmp_path):
  """vocabulary (by frequency: writer 0, doctor 1; then the OOV row), numeric (quantile
  buckets, missing last), multi_hot (a list of vocabulary rows per row) sharing one
  vocabulary with a single-valued column."""
  features = (USER_ROW, ITEM,
              _feature('occupation', 'string', kind='vocabulary'),
              _feature('age', 'int', kind='numeric', num_buckets=2),
              _feature('genres', 'string', 'item', kind='multi_hot', table='genre'),
              _feature('favourite_genre', 'string', kind='vocabulary', table='genre'))
  model_inputs = ModelInputs(features=features, label=RATING_AT_LEAST_4)
  rows, output = _analyze_and_transform(SIDE_ROWS, SIDE_SPEC, model_inputs, tmp_path)
  rows = _by_user(rows)
  assert [int(rows[u]['occupation']) for u in range(1, 6)] == [0, 0, 1, 0, 2]
  # Two buckets split at the median; the missing age gets row 2.
  assert [int(rows[u]['age']) for u in range(1, 6)] == [0, 0, 1, 1, 2]
  # One vocabulary over both genre columns: Comedy 5, Action 2, Drama 2, Horror 1 (ties
  # by value, descending), then the OOV row 4; a missing list is [OOV].
  genre = {'Comedy': 0, 'Drama': 1, 'Action': 2, 'Horror': 3}
  assert [list(rows[u]['genres']) for u in range(1, 6)] == [
      [genre['Action'], genre['Comedy']], [genre['Comedy']],
      [genre['Comedy'], genre['Drama'], genre['Action']], [genre['Horror']], [4]]
  assert int(rows[1]['favourite_genre']) == genre['Drama']
  assert int(rows[5]['favourite_genre']) == 4
  schema = {f.name: f.int_domain for f in output.transformed_metadata.schema.feature}
  assert {name: (schema[name].min, schema[name].max)
          for name in ('occupation', 'age', 'genres', 'favourite_genre')} == {
              'occupation': (0, 2), 'age': (0, 2), 'genres': (0, 4), 'favourite_genre': (0, 4)}
  assert output.transformed_feature_spec()['genres'] == tf.io.VarLenFeature(tf.int64)
  assert output.vocabulary_by_name('genre') == [b'Comedy', b'Drama', b'Action', b'Horror']


def test_a_vocabulary_keeps_the_top_k_or_the_frequent_values(tmp_path):
  features = (USER_ROW, ITEM,
              _feature('occupation', 'string', kind='vocabulary', top_k=1,
                       num_oov_buckets=2),
              _feature('favourite_genre', 'string', 'item', kind='vocabulary',
                       frequency_threshold=2))
  model_inputs = ModelInputs(features=features, label=RATING_AT_LEAST_4)
  rows, output = _analyze_and_transform(SIDE_ROWS, SIDE_SPEC, model_inputs, tmp_path)
  rows = _by_user(rows)
  assert output.vocabulary_by_name('occupation') == [b'writer']
  assert output.vocabulary_by_name('favourite_genre') == [b'Comedy']
  # writer is row 0; doctor and a missing value land in the two OOV rows 1..2.
  assert int(rows[1]['occupation']) == 0 and 1 <= int(rows[3]['occupation']) <= 2
  schema = {f.name: f.int_domain for f in output.transformed_metadata.schema.feature}
  assert (schema['occupation'].min, schema['occupation'].max) == (0, 2)
  assert (schema['favourite_genre'].min, schema['favourite_genre'].max) == (0, 1)


def test_every_feature_kind_has_each_part():
  """A kind is its entry in contract/feature_kinds.py and its row function: a kind
  missing either, or an entry naming an option nobody defines, fails here."""
  assert set(typing.get_args(feature_kinds.FeatureKind)) == set(feature_kinds.KINDS)
  assert set(feature_rows.ROWS) == set(feature_kinds.KINDS)
  option_fields = set(feature_kinds.FeatureOptions.model_fields)
  for name, kind in feature_kinds.KINDS.items():
    assert kind.name == name and kind.summary
    assert set(kind.options) <= option_fields, name
    assert set(kind.required) <= set(kind.options), name
    assert kind.column_types and set(kind.column_types) <= {'int', 'float', 'string'}, name
    assert feature_rows.rows_of(name) is feature_rows.ROWS[name]


def test_a_kind_the_table_does_not_hold_is_refused_not_guessed():
  with pytest.raises(ValueError, match=r"unknown feature kind 'tags' \(kinds: hash, "):
    feature_rows.rows_of('tags')
  with pytest.raises(ValueError, match='unknown feature kind'):
    feature_kinds.kind_of('tags')
