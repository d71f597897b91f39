"""The pipeline with side features (configs/sample_features.yaml): every feature kind
through Transform, the columnar blocks, the Trainer, TFMA and the pushed SavedModel."""

import collections
import csv
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from conftest import PROJECT_DIR
from modules.data import columnar

pytestmark = pytest.mark.slow

SAMPLE = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')


def _only_output(record, component, key):
  execution, = record.executions_by_component()[component]
  artifact, = record.outputs_of(execution.id)[key]
  return artifact


def _sample_rows():
  with open(SAMPLE, newline='') as f:
    return list(csv.DictReader(f))


def test_transform_records_each_kinds_table_size(features_run):
  _, record = features_run
  graph = _only_output(record, 'Transform', 'transform_graph')
  tft_output = tft.TFTransformOutput(graph.uri)
  rows = _sample_rows()
  genres = {g for r in rows for g in r['genres'].split('|')}
  occupations = {r['occupation'] for r in rows}
  schema = {f.name: f.int_domain for f in tft_output.transformed_metadata.schema.feature}
  # Vocabularies: every value seen plus one OOV row; numeric: buckets plus missing.
  assert {name: schema[name].max + 1 for name in ('gender', 'occupation', 'genres', 'age',
                                                   'year')} == {
      'gender': 3, 'occupation': len(occupations) + 1, 'genres': len(genres) + 1,
      'age': 7, 'year': 9}
  assert sorted(tft_output.vocabulary_by_name('genres')) == sorted(
      g.encode() for g in genres)


def test_the_blocks_hold_each_rows_genres(features_run):
  _, record = features_run
  blocks = _only_output(record, 'ColumnarExamplesGen', 'columnar_examples')
  graph = _only_output(record, 'Transform', 'transform_graph')
  vocabulary = tft.TFTransformOutput(graph.uri).vocabulary_by_name('genres')
  split_dir = os.path.join(blocks.uri, 'Split-train')
  manifest = columnar.read_manifest(split_dir)
  rows = _sample_rows()
  assert manifest['multi_valued'] == {
      'genres': max(len(r['genres'].split('|')) for r in rows)}
  # The genre lists as the blocks hold them, by row, equal the sample's (as a multiset:
  # which rows are train is the split's business).
  written = collections.Counter()
  for batch in columnar.make_dataset(split_dir, 1, shuffle=False, seed=0):
    written[tuple(sorted(vocabulary[i].decode() for i in batch['genres'][0].numpy()))] += 1
  in_sample = collections.Counter(tuple(sorted(r['genres'].split('|'))) for r in rows)
  assert sum(written.values()) == manifest['rows']
  assert all(in_sample[genres] >= count for genres, count in written.items())


def test_side_features_are_trained_and_blessed(features_run, sample_run):
  config, record = features_run
  trainer_run = _only_output(record, 'Trainer', 'model_run')
  import json  # pylint: disable=g-import-not-at-top
  with open(os.path.join(trainer_run.uri, 'metrics.json')) as f:
    metrics = json.load(f)
  assert set(metrics['table_sizes']) == {'userId', 'movieId', 'gender', 'age', 'occupation',
                                         'year', 'genres'}
  blessing = _only_output(record, 'Evaluator', 'blessing')
  assert blessing.custom_properties['blessed'].int_value == 1
  # The sample's side columns carry its latent factors: they help.
  _, ids_only = sample_run
  with open(os.path.join(_only_output(ids_only, 'Trainer', 'model_run').uri,
                         'metrics.json')) as f:
    assert metrics['eval']['auc'] > json.load(f)['eval']['auc'] + 0.02


def _example(**values):
  feature = {}
  for name, value in values.items():
    if isinstance(value, int):
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    else:
      feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


FULL = dict(userId=284, movieId=770, gender='F', age=31, occupation='student', year=1986,
            genres='Action|Comedy|Thriller')


def _pushed_dir(record) -> str:
  pushed = _only_output(record, 'Pusher', 'pushed_model')
  return pushed.custom_properties['pushed_destination'].string_value


def _serving_model(record):
  return tf.saved_model.load(_pushed_dir(record))


def test_serving_scores_requests_with_and_without_side_columns(features_run):
  _, record = features_run
  model = _serving_model(record)
  serve = model.signatures['serving_default']
  ids_only = dict(userId=284, movieId=770)
  unseen = dict(FULL, occupation='astronaut', genres='Western|Musical')
  probabilities = serve(examples=tf.constant(
      [_example(**FULL), _example(**ids_only), _example(**unseen)]))['probability'].numpy()
  assert all(0 < p < 1 for p in probabilities)
  # Missing and unseen values are scored with their OOV / missing rows, not refused,
  # and those rows are not the known values' rows.
  assert len(set(probabilities.round(6))) == 3

  by_ids = model.signatures['serve_ids']
  values = {name: tf.constant([value]) for name, value in FULL.items()}
  values = {name: tf.cast(v, tf.int64) if v.dtype == tf.int32 else v
            for name, v in values.items()}
  np.testing.assert_allclose(by_ids(**values)['probability'].numpy(), probabilities[:1],
                             rtol=1e-5)
  # serve_ids says "missing" with '' for a string column: the same score as a
  # tf.Example without those columns.
  blank = dict(values, gender=tf.constant(['']), occupation=tf.constant(['']),
               genres=tf.constant(['']))
  without = serve(examples=tf.constant([_example(userId=284, movieId=770, age=31,
                                                 year=1986)]))['probability'].numpy()
  np.testing.assert_allclose(by_ids(**blank)['probability'].numpy(), without, rtol=1e-5)


def _user_values(**values):
  return {name: tf.constant([value], tf.int64 if isinstance(value, int) else tf.string)
          for name, value in values.items()}


USER = dict(userId=284, gender='F', age=31, occupation='student')


def test_the_catalogue_is_every_item_of_the_data_once(features_run):
  _, record = features_run
  blocks = _only_output(record, 'ColumnarExamplesGen', 'columnar_examples')
  items = {r['movieId'] for r in _sample_rows()}
  assert blocks.custom_properties['catalogue_items'].int_value == len(items)
  with open(os.path.join(_only_output(record, 'Trainer', 'model_run').uri,
                         'metrics.json')) as f:
    import json  # pylint: disable=g-import-not-at-top
    report = json.load(f)['catalogue']
  assert report['items'] == len(items) and 0 < report['items_sharing_a_row'] < len(items)
  assert set(report['validation']) == {'recall@10', 'recall@100', 'most_popular_recall@10',
                                       'most_popular_recall@100', 'scann_recall_of_exact@10',
                                       'scann_recall_of_exact@100'}
  # 399 movies: 20 leaves, every one searched; only the compressed scores approximate.
  assert report['scann_index'] == {'leaves': 20, 'leaves_to_search': 20, 'reorder': 100}
  assert report['validation']['scann_recall_of_exact@10'] >= 0.9
  assert 0 < report['validation']['recall@10'] <= report['validation']['recall@100'] <= 1
  model = _serving_model(record)
  assert sorted(model.catalogue_ids.numpy().tolist()) == sorted(int(i) for i in items)


def test_towers_reproduce_serving_defaults_probabilities(features_run):
  _, record = features_run
  model = _serving_model(record)
  item = dict(movieId=770, year=1986, genres='Action|Comedy|Thriller')
  user = model.signatures['user_embedding'](**_user_values(**USER))
  item_vector = model.signatures['item_embedding'](**_user_values(**item))['embedding']
  logit = float(tf.reduce_sum(user['embedding'] * item_vector)) + float(user['bias'][0])
  expected = model.signatures['serving_default'](examples=tf.constant(
      [_example(**USER, **item)]))['probability'].numpy()[0]
  assert 1 / (1 + np.exp(-logit)) == pytest.approx(expected, rel=1e-5)
  # The user's vector ends in 1, the item's in its bias: one inner product ranks.
  assert float(user['embedding'][0, -1]) == 1.0


def test_top_k_returns_the_most_likely_picks_as_serving_scores_them(features_run):
  config, record = features_run
  assert config.training.losses.retrieval  # configs/sample_features.yaml
  model = _serving_model(record)
  top = model.signatures['top_k'](k=tf.constant(10), **_user_values(**USER))
  assert top['item_ids'].shape == (1, 10) and top['probability'].shape == (1, 10)
  # Every catalogue item scored by serving_default with this user.
  first_row = {}
  for row in _sample_rows():
    first_row.setdefault(row['movieId'], row)
  examples = [_example(**USER, movieId=int(m), **({'year': int(r['year'])} if r['year'] else {}),
                       genres=r['genres']) for m, r in first_row.items()]
  scores = dict(zip((int(m) for m in first_row), model.signatures['serving_default'](
      examples=tf.constant(examples))['probability'].numpy()))
  top_ids = top['item_ids'].numpy()[0].tolist()
  np.testing.assert_allclose(top['probability'].numpy()[0], [scores[i] for i in top_ids],
                             rtol=1e-4)
  # Ranked by the search score: the folded user times each catalogue vector, whose last
  # unit is the item's retrieval bias, not the bias its probability adds.
  user = model.signatures['user_embedding'](**_user_values(**USER))['embedding'].numpy()
  search = (user @ model.catalogue_vectors.numpy().T)[0]
  catalogue_ids = model.catalogue_ids.numpy().tolist()
  assert top_ids == [catalogue_ids[i] for i in np.argsort(-search, kind='stable')[:10]]
  # The offsets (item bias - retrieval bias) give the probabilities checked above.
  assert np.abs(model.catalogue_offsets.numpy()).min() > 0
  # k beyond the catalogue gives the whole catalogue.
  everything = model.signatures['top_k'](k=tf.constant(10**6), **_user_values(**USER))
  assert everything['item_ids'].shape == (1, len(first_row))


def test_the_scann_index_beside_the_model_finds_top_ks_items(features_run):
  _, record = features_run
  model = _serving_model(record)
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  index = tf.saved_model.load(os.path.join(_pushed_dir(record), 'scann_index'))
  user = model.signatures['user_embedding'](**_user_values(**USER))
  found = index.signatures['top_k'](k=tf.constant(10), **user)
  exact = model.signatures['top_k'](k=tf.constant(10), **_user_values(**USER))
  found_ids, exact_ids = (r['item_ids'].numpy()[0].tolist() for r in (found, exact))
  assert len(set(found_ids) & set(exact_ids)) >= 9
  # An item both return has one probability: the index rescored it exactly.
  exact_probability = dict(zip(exact_ids, exact['probability'].numpy()[0]))
  for item, probability in zip(found_ids, found['probability'].numpy()[0]):
    if item in exact_probability:
      assert probability == pytest.approx(exact_probability[item], rel=1e-5)


def test_statistics_are_tfxs_own_statistics_of_the_same_examples(features_run, tmp_path):
  # TFX's StatisticsGen on this run's examples (strings, a multi-valued column, missing
  # values) against what the project's wrote in the run: the anomaly checks see the same.
  from tfx.components.statistics_gen import executor as tfx_statistics  # pylint: disable=g-import-not-at-top
  from inspection import artifact_contents  # pylint: disable=g-import-not-at-top
  _, record = features_run
  examples = _only_output(record, 'CsvExampleGen', 'examples')
  ours = _only_output(record, 'StatisticsGen', 'statistics')
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  examples_artifact = standard_artifacts.Examples()
  examples_artifact.set_mlmd_artifact(examples)
  stock = standard_artifacts.ExampleStatistics()
  stock.uri = str(tmp_path / 'stock')
  tfx_statistics.Executor(tfx_statistics.Executor.Context(
      beam_pipeline_args=['--direct_num_workers=1', f'--setup_file={PROJECT_DIR}/setup.py'],
      tmp_dir=str(tmp_path / 'tmp'))).Do(
          {'examples': [examples_artifact]},
          {'statistics': [stock]}, {})
  assert artifact_contents.statistics_differences(stock.uri, ours.uri) == []
