"""The ranker's arithmetic: towers sum their features, multi-valued rows are combined,
shared tables are one variable, and the score is the dot product plus both biases."""

import numpy as np
import pytest
import tensorflow as tf

from contract.model_inputs import Feature, LabelSpec, ModelInputs
from contract.options import LossWeights, TrainingOptions
from modules.model import ranking
from modules.training import loop

LABEL = LabelSpec(column='rating', operator='>=', threshold=4.0)


def _feature(name, belongs_to, **options):
  options.setdefault('kind', 'hash')
  if options['kind'] == 'hash':
    options.setdefault('vocab_size', 10)
  return Feature(name=name, column_type='string' if options['kind'] == 'multi_hot'
                 else 'int', embedding_dim=4, belongs_to=belongs_to, **options)


def _tables(model):
  """{table name: its values}."""
  return {v.name.split('/')[-1][:-len('_table:0')]: v.numpy()
          for v in model.embedding.variables if v.name.endswith('_table:0')}


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize('combiner', ['mean', 'sum'])
def test_towers_sum_their_features_and_lists_are_combined(combiner):
  model_inputs = ModelInputs(features=(
      _feature('userId', 'user'), _feature('age', 'user', kind='numeric', num_buckets=3),
      _feature('movieId', 'item'),
      _feature('genres', 'item', kind='multi_hot', combiner=combiner)), label=LABEL)
  model = ranking.RankingModel(model_inputs, {'userId': 10, 'age': 4, 'movieId': 10,
                                                'genres': 6}, optimizer=None)
  ranking.build(model, model_inputs)
  batch = {'userId': tf.constant([1, 2, 3], tf.int64), 'age': tf.constant([0, 3, 1], tf.int64),
           'movieId': tf.constant([4, 4, 9], tf.int64),
           'genres': tf.ragged.constant([[0, 2], [5], [1, 2, 3]], tf.int64)}
  probabilities = model(batch).numpy()[:, 0]

  tables = _tables(model)
  combine = np.mean if combiner == 'mean' else np.sum
  for row, probability in enumerate(probabilities):
    user = (tables['userId'][batch['userId'][row]] + tables['age'][batch['age'][row]])
    item = (tables['movieId'][batch['movieId'][row]]
            + combine(tables['genres'][batch['genres'][row].numpy()], axis=0))
    expected = _sigmoid(user[:-1] @ item[:-1] + user[-1] + item[-1])
    assert probability == pytest.approx(expected, rel=1e-5)


def test_features_naming_one_table_share_its_variable():
  model_inputs = ModelInputs(features=(
      _feature('userId', 'user'), _feature('favourite', 'user', table='genre'),
      _feature('movieId', 'item'), _feature('genres', 'item', table='genre')), label=LABEL)
  assert list(model_inputs.tables()) == ['userId', 'genre', 'movieId']
  model = ranking.RankingModel(model_inputs, {'userId': 10, 'genre': 10, 'movieId': 10},
                                 optimizer=None)
  ranking.build(model, model_inputs)
  assert sorted(_tables(model)) == ['genre', 'movieId', 'userId']


def test_a_sparse_batch_scores_as_the_ragged_one():
  """tf.Example input (training.input_format: tf_example) gives multi-valued features
  as SparseTensors, columnar input as RaggedTensors: the same scores."""
  model_inputs = ModelInputs(features=(
      _feature('userId', 'user'), _feature('movieId', 'item'),
      _feature('genres', 'item', kind='multi_hot')), label=LABEL)
  model = ranking.RankingModel(model_inputs, {'userId': 10, 'movieId': 10, 'genres': 6},
                                 optimizer=None)
  ranking.build(model, model_inputs)
  genres = tf.ragged.constant([[0, 2], [5], [1, 2, 3]], tf.int64)
  batch = {'userId': tf.constant([1, 2, 3], tf.int64),
           'movieId': tf.constant([4, 4, 9], tf.int64)}
  ragged = model({**batch, 'genres': genres}).numpy()
  sparse = model({**batch, 'genres': genres.to_sparse()}).numpy()
  np.testing.assert_allclose(ragged, sparse, rtol=1e-6)


def test_each_tower_alone_gives_the_joint_models_vectors():
  model_inputs = ModelInputs(features=(
      _feature('userId', 'user'), _feature('age', 'user', kind='numeric', num_buckets=3),
      _feature('movieId', 'item'), _feature('genres', 'item', kind='multi_hot')),
      label=LABEL)
  model = ranking.RankingModel(model_inputs, {'userId': 10, 'age': 4, 'movieId': 10,
                                                'genres': 6}, optimizer=None)
  ranking.build(model, model_inputs)
  user = model.tower('user', {'userId': tf.constant([1, 2], tf.int64),
                              'age': tf.constant([0, 3], tf.int64)}).numpy()
  item = model.tower('item', {'movieId': tf.constant([4, 9], tf.int64),
                              'genres': tf.ragged.constant([[0, 2], [5]], tf.int64)}).numpy()
  joint = model({'userId': tf.constant([1, 2], tf.int64), 'age': tf.constant([0, 3], tf.int64),
                 'movieId': tf.constant([4, 9], tf.int64),
                 'genres': tf.ragged.constant([[0, 2], [5]], tf.int64)}).numpy()[:, 0]
  logits = (user[:, :-1] * item[:, :-1]).sum(axis=1) + user[:, -1] + item[:, -1]
  np.testing.assert_allclose(_sigmoid(logits), joint, rtol=1e-5)


@pytest.mark.parametrize('optimizer', ['adagrad', 'adam', 'sgd'])
def test_every_optimizer_fits_a_batch(optimizer):
  """Each shipped optimizer trains the tables (the multi-worker test runs the ones with
  slots across processes): a batch's loss falls as it is fitted again and again."""
  model_inputs = ModelInputs(features=(_feature('userId', 'user'), _feature('movieId', 'item')),
                             label=LABEL)
  training = TrainingOptions(
      batch_size=40, steps=30, optimizer=optimizer, steps_per_execution=1,
      learning_rate={'adagrad': 0.5, 'adam': 0.05, 'sgd': 2.0}[optimizer])
  tf.keras.utils.set_random_seed(1)
  # Built and compiled as the Trainer builds it.
  model, _ = loop.make_model(model_inputs, training, {'userId': 10, 'movieId': 10},
                                tf.distribute.get_strategy())
  ids = np.arange(40) % 10
  batch = {'userId': tf.constant(ids, tf.int64), 'movieId': tf.constant((ids * 3) % 10, tf.int64),
           'label': tf.constant(ids % 2, tf.int64)}
  losses = model.fit(tf.data.Dataset.from_tensors(batch).repeat(training.steps), epochs=1,
                     verbose=0).history['loss']
  after = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
  assert after['loss'] < 0.5 * np.log(2), (losses, after)


def _batch_logits(model, batch):
  """(user [rows, dim], item [rows, dim], logits [rows]) from the tables, in numpy."""
  tables = _tables(model)
  user = tables['userId'][batch['userId'].numpy()]
  item = tables['movieId'][batch['movieId'].numpy()]
  return user, item, (user[:, :-1] * item[:, :-1]).sum(1) + user[:, -1] + item[:, -1]


def _ids_model(**losses):
  model_inputs = ModelInputs(features=(_feature('userId', 'user'), _feature('movieId', 'item')),
                             label=LABEL)
  counts = np.array([0, 5, 1, 9, 2, 2, 7, 1, 3, 4])
  model = ranking.RankingModel(model_inputs, {'userId': 10, 'movieId': 10}, optimizer=None,
                               losses=LossWeights(**losses), item_counts=counts)
  ranking.build(model, model_inputs)
  return model, counts


# Row 2 and row 4 hold the same item (4): neither is the other's negative.
BATCH = {'userId': tf.constant([1, 2, 3, 1, 7], tf.int64),
         'movieId': tf.constant([4, 0, 9, 3, 4], tf.int64),
         'label': tf.constant([1, 0, 1, 1, 0], tf.int64),
         'label_value': tf.constant([4.5, 2.0, float('nan'), 5.0, 3.0], tf.float32)}


def _cross_entropy(labels, logits):
  p = _sigmoid(logits)
  return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def test_the_label_value_loss_fits_the_value_through_the_probabilitys_own_score():
  model, _ = _ids_model(label=0.5, label_value=2.0)
  _, _, logits = _batch_logits(model, BATCH)
  labels, values = BATCH['label'].numpy(), BATCH['label_value'].numpy()
  # The line starts as value = logit + threshold; the row without a value adds nothing.
  predicted = logits + LABEL.threshold
  squared = np.where(np.isnan(values), 0.0, (values - predicted) ** 2)
  expected = (0.5 * _cross_entropy(labels, logits).sum() + 2.0 * squared.sum()) / 5
  assert model.compute_loss(BATCH).numpy() == pytest.approx(expected, rel=1e-4)


def _randomize_retrieval_bias(model, rng):
  """The retrieval bias table starts at zero: random values show where it is used."""
  table, = [v for v in model.embedding.variables
            if v.name.endswith(f'movieId{ranking.RETRIEVAL_BIAS_SUFFIX}_table:0')]
  table.assign(rng.normal(0, 1, table.shape))
  return table.numpy()[:, 0]


def test_the_retrieval_loss_is_an_in_batch_softmax_of_every_row_corrected_for_item_frequency():
  model, counts = _ids_model(label=0.0, retrieval=1.0)
  retrieval_bias = _randomize_retrieval_bias(model, np.random.default_rng(0))
  user, item, _ = _batch_logits(model, BATCH)
  items = BATCH['movieId'].numpy()
  # top_k's score of each row's user for each row's item (the retrieval bias, not the
  # item bias), less the item's log count.
  scores = (user[:, :-1] @ item[:, :-1].T + retrieval_bias[items][None, :]
            - np.log1p(counts[items])[None, :])
  expected = 0.0
  # Every row, whatever its label: a rated item is a picked one.
  for row in range(5):
    negatives = [j for j in range(5) if j == row or items[j] != items[row]]
    row_scores = scores[row, negatives]
    own = row_scores[negatives.index(row)]
    expected += np.log(np.exp(row_scores).sum()) - own
  assert model.compute_loss(BATCH).numpy() == pytest.approx(expected / 5, rel=1e-4)


@pytest.mark.parametrize('retrieval', [0.0, 0.5])
def test_search_vectors_rank_by_the_retrieval_bias_and_offsets_give_back_the_logit(retrieval):
  model, _ = _ids_model(retrieval=retrieval)
  rng = np.random.default_rng(1)
  if retrieval:
    retrieval_bias = _randomize_retrieval_bias(model, rng)
  items = tf.constant([4, 0, 9], tf.int64)
  vectors, offsets = (t.numpy() for t in model.search_vectors({'movieId': items}))
  item = _tables(model)['movieId'][items.numpy()]
  np.testing.assert_allclose(vectors[:, :-1], item[:, :-1])
  # Without the retrieval loss the item's own bias; with it, the retrieval bias.
  search_bias = retrieval_bias[items.numpy()] if retrieval else item[:, -1]
  np.testing.assert_allclose(vectors[:, -1], search_bias, rtol=1e-6)
  user = _tables(model)['userId'][[1]]
  folded = np.concatenate([user[:, :-1], [[1.0]]], axis=1)
  logits = folded @ vectors.T + user[:, -1:] + offsets[None, :]
  probabilities = model({'userId': tf.constant([1, 1, 1], tf.int64), 'movieId': items})
  np.testing.assert_allclose(_sigmoid(logits[0]), probabilities.numpy()[:, 0], rtol=1e-5)


def test_the_retrieval_loss_needs_item_counts_and_some_loss_must_be_fitted():
  model_inputs = ModelInputs(features=(_feature('userId', 'user'), _feature('movieId', 'item')),
                             label=LABEL)
  with pytest.raises(ValueError, match='needs the training rows of each item'):
    ranking.RankingModel(model_inputs, {'userId': 10, 'movieId': 10},
                         optimizer=tf.keras.optimizers.legacy.Adagrad(0.1),
                         losses=LossWeights(retrieval=1.0))
  with pytest.raises(ValueError, match='every loss weight is 0'):
    LossWeights(label=0.0)
