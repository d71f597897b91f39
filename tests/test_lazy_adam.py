"""Lazy Adam: a step changes only the rows it touched, and those exactly as Adam would."""

import os

import numpy as np
import pytest
import tensorflow as tf

from modules.model import lazy_adam

ROWS, DIM = 50, 4
TOUCHED = [3, 7, 7, 20]  # 7 twice: repeated ids add their gradients, as in a batch


def _table_after_a_first_step(optimizer, seed=0):
  rng = np.random.default_rng(seed)
  table = tf.Variable(rng.normal(size=(ROWS, DIM)).astype(np.float32))
  # Non-zero moments, as after earlier steps, so that decay would show.
  optimizer.apply_gradients([(tf.IndexedSlices(
      tf.constant(rng.normal(size=(ROWS, DIM)), tf.float32), tf.range(ROWS)), table)])
  return table


def _step(optimizer, table):
  gradient = tf.IndexedSlices(
      tf.constant(np.arange(len(TOUCHED) * DIM, dtype=np.float32).reshape(-1, DIM) / 10),
      tf.constant(TOUCHED))
  optimizer.apply_gradients([(gradient, table)])


def _snapshot(optimizer, table):
  return {'table': table.numpy().copy(), 'm': optimizer.get_slot(table, 'm').numpy().copy(),
          'v': optimizer.get_slot(table, 'v').numpy().copy()}


def test_untouched_rows_and_their_moments_stay_bit_identical():
  optimizer = lazy_adam.Adam(learning_rate=0.1)
  table = _table_after_a_first_step(optimizer)
  before = _snapshot(optimizer, table)
  _step(optimizer, table)
  after = _snapshot(optimizer, table)
  untouched = np.setdiff1d(np.arange(ROWS), TOUCHED)
  for name in ('table', 'm', 'v'):
    np.testing.assert_array_equal(after[name][untouched], before[name][untouched])
    assert not np.array_equal(after[name][TOUCHED], before[name][TOUCHED]), name


def test_touched_rows_match_keras_adam_for_one_step():
  lazy, dense = lazy_adam.Adam(learning_rate=0.1), tf.keras.optimizers.legacy.Adam(0.1)
  lazy_table, dense_table = _table_after_a_first_step(lazy), _table_after_a_first_step(dense)
  np.testing.assert_array_equal(_snapshot(lazy, lazy_table)['m'],
                                _snapshot(dense, dense_table)['m'])
  _step(lazy, lazy_table)
  _step(dense, dense_table)
  rows = sorted(set(TOUCHED))
  lazy_after, dense_after = _snapshot(lazy, lazy_table), _snapshot(dense, dense_table)
  for name in ('table', 'm', 'v'):
    np.testing.assert_allclose(lazy_after[name][rows], dense_after[name][rows], rtol=1e-6,
                               atol=1e-7, err_msg=name)
  # Keras' Adam decays every row's moments; the lazy one leaves the others be.
  untouched = np.setdiff1d(np.arange(ROWS), TOUCHED)
  assert not np.allclose(lazy_after['m'][untouched], dense_after['m'][untouched])


def test_dense_variables_get_plain_adam():
  lazy, dense = lazy_adam.Adam(learning_rate=0.1), tf.keras.optimizers.legacy.Adam(0.1)
  variables = [tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])]
  for optimizer, variable in zip((lazy, dense), variables):
    optimizer.apply_gradients([(tf.constant([0.5, 0.25]), variable)])
  np.testing.assert_array_equal(variables[0].numpy(), variables[1].numpy())


def test_the_tpu_embedding_engine_sees_its_adam():
  from tensorflow_recommenders.layers.embedding import tpu_embedding_layer  # pylint: disable=g-import-not-at-top
  translated = tpu_embedding_layer.translate_keras_optimizer(lazy_adam.Adam(0.05))
  assert isinstance(translated, tf.tpu.experimental.embedding.Adam)
  assert translated.lazy_adam  # lazy on TPUs too: the same semantics everywhere


def test_amsgrad_is_refused():
  with pytest.raises(ValueError, match='no AMSGrad variant'):
    lazy_adam.Adam(amsgrad=True)


def test_the_tpu_layout_creates_its_slots_through_the_keras_optimizer():
  # Under TPUStrategy the embedding engine makes each table's slots with this function;
  # they land on the Keras optimizer as `m` and `v`, where a CPU run keeps them too.
  optimizer = lazy_adam.Adam(0.05)
  from tensorflow_recommenders.layers.embedding import tpu_embedding_layer  # pylint: disable=g-import-not-at-top
  translated = tpu_embedding_layer.translate_keras_optimizer(optimizer)
  table = tf.Variable(tf.zeros([ROWS, DIM]))
  slots = translated.slot_variable_creation_fn(
      table, translated._slot_names(), translated._slot_initializers())  # pylint: disable=protected-access
  # (NoDependency: the layer leaves tracking them to the optimizer, hence to checkpoints.)
  assert slots['momenta'].value is optimizer.get_slot(table, 'm')
  assert slots['velocities'].value is optimizer.get_slot(table, 'v')


def _trained_ranker(optimizer, checkpoint_dir=None):
  """A small ranker after two steps of `optimizer`; saved to `checkpoint_dir` if given."""
  from modules.model import ranking  # pylint: disable=g-import-not-at-top
  from contract.model_inputs import ModelInputs  # pylint: disable=g-import-not-at-top
  from test_preprocessing import ITEM, RATING_AT_LEAST_4, USER  # pylint: disable=g-import-not-at-top
  model_inputs = ModelInputs(features=(USER, ITEM), label=RATING_AT_LEAST_4)
  model = ranking.RankingModel(model_inputs, {USER.name: USER.vocab_size,
                                                ITEM.name: ITEM.vocab_size}, optimizer)
  model.compile(optimizer=optimizer)
  rng = np.random.default_rng(0)
  batch = {USER.name: rng.integers(0, USER.vocab_size, 64),
           ITEM.name: rng.integers(0, ITEM.vocab_size, 64),
           'label': rng.integers(0, 2, 64)}
  model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), verbose=0)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  path = checkpoint.save(os.path.join(checkpoint_dir, 'ckpt')) if checkpoint_dir else None
  return model, checkpoint, path


def _table_and_slot_values(model, optimizer):
  values = {}
  for config, table in model.embedding.embedding_tables.items():
    values[config.name] = table.numpy()
    for slot in ('m', 'v'):
      values[f'{config.name}/{slot}'] = optimizer.get_slot(table, slot).numpy()
  return values


@pytest.mark.parametrize('saved_with, restored_with', [
    (lazy_adam.Adam, tf.keras.optimizers.legacy.Adam),
    (tf.keras.optimizers.legacy.Adam, lazy_adam.Adam)])
def test_checkpoints_are_interchangeable_with_keras_adam(tmp_path, saved_with, restored_with):
  # Keras' Adam layout is the one TPUEmbedding checkpoints hold (see the test above),
  # so matching it object for object is what lets a run resume on the other device.
  saver_optimizer = saved_with(0.05)
  saved_model, _, path = _trained_ranker(saver_optimizer, str(tmp_path))
  restorer_optimizer = restored_with(0.05)
  restored_model, checkpoint, _ = _trained_ranker(restorer_optimizer)
  checkpoint.restore(path).assert_consumed()
  saved = _table_and_slot_values(saved_model, saver_optimizer)
  restored = _table_and_slot_values(restored_model, restorer_optimizer)
  assert sorted(saved) == sorted(restored) and len(saved) == 6
  for name, value in saved.items():
    np.testing.assert_array_equal(restored[name], value, err_msg=name)
  assert restorer_optimizer.iterations.numpy() == saver_optimizer.iterations.numpy() == 2
