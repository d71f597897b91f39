"""The trainer module without TFX: strategy choice, training, export, and the SavedModel."""

import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import PROJECT_DIR
from contract.model_inputs import ModelInputs
from contract.options import TrainingOptions
from contract.names import LABEL_VALUE_KEY, MODEL_INPUTS_KEY, TRAINING_KEY
from modules.training import distribution as strategy_lib
from modules.training import trainer
from modules.transform import table_sizes
from test_preprocessing import DENSE_SPEC, ITEM, RATING_AT_LEAST_4, USER, _analyze_and_transform


@pytest.mark.parametrize('tpu, tf_config, gpus, expected', [
    ('', None, [], strategy_lib.DEFAULT),
    ('local', None, [], strategy_lib.TPU),
    ('my-tpu', json.dumps({'cluster': {'worker': ['a:1', 'b:1']}}), ['gpu'], strategy_lib.TPU),
    ('', json.dumps({'cluster': {'chief': ['a:1'], 'worker': ['b:1']},
                     'task': {'type': 'chief', 'index': 0}}), [], strategy_lib.MULTI_WORKER),
    ('', json.dumps({'cluster': {'worker': ['a:1']}}), [], strategy_lib.DEFAULT),
    ('', None, ['gpu:0'], strategy_lib.MIRRORED),
])
def test_strategy_choice(tpu, tf_config, gpus, expected):
  assert strategy_lib.choose(tpu, tf_config, gpus) == expected


def test_no_tpu_on_this_machine_means_the_default_strategy():
  assert strategy_lib.create('') is tf.distribute.get_strategy()


TRAINING = TrainingOptions(batch_size=8, steps=12, learning_rate=0.5, optimizer='adagrad',
                           seed=1, l2_regularization=1e-3, input_format='tf_example')


def _rows(count, seed):
  rng = np.random.default_rng(seed)
  return [{'userId': [int(u)], 'movieId': [str(m).encode()], 'rating': [float(r)]}
          for u, m, r in zip(rng.integers(1, 30, count), rng.integers(1, 20, count),
                             rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], count))]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A few steps of training on CPU through run_fn, as the Trainer calls it."""
  tmp = tmp_path_factory.mktemp('trainer')
  model_inputs = ModelInputs(features=(USER, ITEM), label=RATING_AT_LEAST_4)
  transformed, tft_output = _analyze_and_transform(_rows(200, 0), DENSE_SPEC, model_inputs,
                                                  tmp)
  files = {}
  for split, rows in (('train', transformed[:160]), ('eval', transformed[160:])):
    path = str(tmp / f'{split}.tfrecord.gz')
    with tf.io.TFRecordWriter(path, options='GZIP') as writer:
      for row in rows:
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            if k == LABEL_VALUE_KEY else
            tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
            for k, v in row.items()})).SerializeToString())
    files[split] = [path]
  fn_args = types.SimpleNamespace(
      custom_config={MODEL_INPUTS_KEY: model_inputs.to_dict(),
                     TRAINING_KEY: TRAINING.to_dict()},
      transform_output=str(tmp / 'transform_fn'), train_files=files['train'],
      eval_files=files['eval'], model_run_dir=str(tmp / 'run'),
      serving_model_dir=str(tmp / 'serving'))
  trainer.run_fn(fn_args)
  return fn_args, model_inputs, tft_output


def _examples(pairs, with_rating=False):
  out = []
  for user, movie in pairs:
    feature = {'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
               'movieId': tf.train.Feature(bytes_list=tf.train.BytesList(value=[movie]))}
    if with_rating:
      feature['rating'] = tf.train.Feature(float_list=tf.train.FloatList(value=[4.5]))
    out.append(tf.train.Example(features=tf.train.Features(feature=feature))
               .SerializeToString())
  return out


# Seen ids, an unseen user, an unseen movie and an empty movie id.
PAIRS = [(1, b'1'), (5, b'7'), (999_999, b'3'), (2, b'never rated'), (3, b'')]


def test_run_fn_writes_checkpoints_logs_and_metrics(trained):
  fn_args, _, _ = trained
  with open(os.path.join(fn_args.model_run_dir, 'metrics.json')) as f:
    report = json.load(f)
  assert report['table_sizes'] == {'userId': 1000, 'movieId': 50}
  assert set(report['eval']) >= {'auc', 'pr_auc', 'binary_accuracy', 'label_cross_entropy',
                                 'prediction_mean', 'label_mean'}
  assert len(report['history']['loss']) == 1
  assert report['config']['training']['steps'] == 12
  # Off a TPU the tables are ordinary variables; metrics.json says which API placed them.
  assert report['embedding'] == {
      'api': 'TPUEmbeddingForServing',
      'placement': 'ordinary variables on the host (no TPU), a copy per replica'}
  assert tf.train.latest_checkpoint(os.path.join(fn_args.model_run_dir, 'checkpoints'))
  assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, 'train', 'events.*'))


def test_exported_model_scores_like_the_trained_one_in_a_fresh_process(trained):
  fn_args, model_inputs, tft_output = trained
  # The in-memory model: rebuilt from the last checkpoint of training.
  from modules.model import ranking  # pylint: disable=g-import-not-at-top
  in_memory = ranking.RankingModel(model_inputs, {'userId': 1000, 'movieId': 50},
                                     optimizer=None)
  tf.train.Checkpoint(model=in_memory).restore(tf.train.latest_checkpoint(
      os.path.join(fn_args.model_run_dir, 'checkpoints'))).expect_partial()
  transformed = tft_output.transform_features_layer()({
      'userId': tf.constant([[u] for u, _ in PAIRS], tf.int64),
      'movieId': tf.constant([[m] for _, m in PAIRS])})
  expected = in_memory({k: transformed[k] for k in ('userId', 'movieId')}).numpy().ravel()
  assert not np.allclose(expected, expected[0])  # training moved the rows apart

  script = f'''
import json, sys
sys.path.insert(0, {PROJECT_DIR!r})
from pipeline import process_env; process_env.configure()
import tensorflow as tf
model = tf.saved_model.load({fn_args.serving_model_dir!r})
examples = tf.constant([bytes.fromhex(h) for h in {[e.hex() for e in _examples(PAIRS)]!r}])
by_examples = model.signatures['serving_default'](examples=examples)['probability']
by_ids = model.signatures['serve_ids'](
    userId=tf.constant({[u for u, _ in PAIRS]!r}, tf.int64),
    movieId=tf.constant({[m for _, m in PAIRS]!r}))['probability']
transformed = model.signatures['transform_features'](examples=tf.constant(
    [bytes.fromhex(h) for h in {[e.hex() for e in _examples(PAIRS, True)]!r}]))
print(json.dumps({{'examples': by_examples.numpy().tolist(), 'ids': by_ids.numpy().tolist(),
                  'label': transformed['label'].numpy().tolist(),
                  'signatures': sorted(model.signatures)}}))
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=300, check=True)
  served = json.loads(result.stdout.strip().splitlines()[-1])
  # tf.Example input: no item catalogue, so the towers but no top_k.
  assert served['signatures'] == ['item_embedding', 'serve_ids', 'serving_default',
                                  'transform_features', 'user_embedding']
  np.testing.assert_allclose(served['examples'], expected, rtol=1e-6)
  np.testing.assert_allclose(served['ids'], expected, rtol=1e-6)
  assert all(0.0 < p < 1.0 for p in served['examples'])
  assert served['label'] == [1] * len(PAIRS)


@pytest.fixture(scope='module')
def served(trained):
  fn_args, _, _ = trained
  return tf.saved_model.load(fn_args.serving_model_dir)


@pytest.mark.parametrize('users, movies, lengths', [
    ([1, 2, 3], [b'1'], 'userId has 3 values and movieId has 1'),
    ([1], [b'1', b'2'], 'userId has 1 values and movieId has 2'),
    ([], [b'1'], 'userId has 0 values and movieId has 1'),
])
def test_serve_ids_refuses_features_of_different_lengths(served, users, movies, lengths):
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f'serve_ids: {lengths}; send one value of every feature per row'):
    served.signatures['serve_ids'](userId=tf.constant(users, tf.int64),
                                   movieId=tf.constant(movies, tf.string))


def test_serve_ids_scores_one_row_per_id_pair(served):
  scores = served.signatures['serve_ids'](userId=tf.constant([1, 2], tf.int64),
                                          movieId=tf.constant([b'1', b'2']))['probability']
  assert scores.shape == (2,)


def _example(**features):
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


@pytest.mark.parametrize('example, words', [
    (_example(userId=tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))),
     'Feature: movieId (data type: string) is required but could not be found'),
    (_example(userId=tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
              movieId=tf.train.Feature(int64_list=tf.train.Int64List(value=[7]))),
     "Key: movieId, Index: 0.  Data types don't match. Data type: int64 but expected type: "
     'string'),
    (_example(userId=tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'u1'])),
              movieId=tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'1']))),
     "Key: userId, Index: 0.  Data types don't match. Data type: string but expected type: "
     'int64'),
], ids=['missing', 'int-for-string', 'string-for-int'])
def test_serving_default_errors_name_the_feature(served, example, words):
  """TensorFlow's own parse errors already name the feature and the types; kept so."""
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(words)):
    served.signatures['serving_default'](examples=tf.constant([example]))


def test_evaluator_slices_show_raw_ids_even_when_two_share_a_bucket(trained, tmp_path):
  """TFMA slices on the model's transform_features output before the raw features: that
  signature returns the label only, so a slice is an id as written, not a hash bucket."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  fn_args, _, tft_output = trained
  movies = [str(m).encode() for m in range(100, 400)]
  buckets = tft_output.transform_features_layer()({
      'userId': tf.constant([[1]] * len(movies), tf.int64),
      'movieId': tf.constant([[m] for m in movies])})['movieId'].numpy().ravel().tolist()
  first = next(i for i, bucket in enumerate(buckets) if buckets.count(bucket) > 1)
  second = buckets.index(buckets[first], first + 1)
  shared = (movies[first], movies[second])  # 50 buckets: two of 300 ids must collide
  path = str(tmp_path / 'eval.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for row, movie in enumerate(shared * 10):
      writer.write(_examples([(row % 7 + 1, movie)], with_rating=True)[0])
  eval_config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name='serving_default',
                                  prediction_key='probability', label_key='label',
                                  preprocessing_function_names=['transform_features'])],
      slicing_specs=[tfma.SlicingSpec(feature_keys=['movieId'])],
      metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name='ExampleCount')])])
  result = tfma.run_model_analysis(
      eval_shared_model=tfma.default_eval_shared_model(fn_args.serving_model_dir,
                                                       eval_config=eval_config),
      eval_config=eval_config, data_location=path, output_path=str(tmp_path / 'tfma'))
  slices = {dict(key)['movieId']: metrics[''][''][ 'example_count']['doubleValue']
            for key, metrics in result.slicing_metrics}
  assert slices == {shared[0].decode(): 10.0, shared[1].decode(): 10.0}


def test_a_schema_without_bucket_domains_is_refused(trained):
  _, model_inputs, tft_output = trained
  other = ModelInputs(
      features=(USER.model_copy(update={'name': 'label'}), ITEM),
      label=RATING_AT_LEAST_4)
  with pytest.raises(ValueError, match='label has no row domain'):
    table_sizes.table_sizes_from_schema(tft_output, other)
  assert table_sizes.table_sizes_from_schema(tft_output, model_inputs) == {
      'userId': 1000, 'movieId': 50}
