"""Columnar examples hold exactly the transformed rows and batch them as the TPU needs."""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from modules.data import columnar
from modules.data import reader
from modules.data import tf_examples

SPEC = {name: tf.io.FixedLenFeature([], tf.int64) for name in ('userId', 'movieId', 'label')}


def _write_examples(path, rows):
  with tf.io.TFRecordWriter(str(path), options='GZIP') as writer:
    for row in rows:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          name: tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
          for name, value in row.items()})).SerializeToString())


def _write_columnar(files, split_dir, block_rows=columnar.DEFAULT_BLOCK_ROWS, seed=0):
  chunks = columnar.read_columns(files, SPEC, chunk_rows=16 * block_rows)
  return columnar.write_split(chunks, sorted(SPEC), split_dir, block_rows=block_rows,
                              seed=seed)


@pytest.fixture(scope='module')
def split(tmp_path_factory):
  """10,007 transformed rows in two tf.Example files, and the same as columnar blocks.
  User ids are unique, so that a row can be followed."""
  tmp = tmp_path_factory.mktemp('columnar')
  rng = np.random.default_rng(0)
  rows = [{'userId': int(u), 'movieId': int(m), 'label': int(l)}
          for u, m, l in zip(rng.permutation(10_007), rng.integers(0, 500, 10_007),
                             rng.integers(0, 2, 10_007))]
  files = [str(tmp / 'part-0.gz'), str(tmp / 'part-1.gz')]
  _write_examples(files[0], rows[:6000])
  _write_examples(files[1], rows[6000:])
  manifest = _write_columnar(files, str(tmp / 'Split-train'), block_rows=1000, seed=3)
  return files, str(tmp / 'Split-train'), manifest


def _multiset(dataset):
  rows = collections.Counter()
  for batch in dataset:
    rows.update(zip(*(batch[name].numpy().tolist() for name in ('userId', 'movieId',
                                                                  'label'))))
  return rows


def test_the_manifest_counts_every_row_in_full_blocks(split):
  _, split_dir, manifest = split
  assert manifest == {'columns': ['label', 'movieId', 'userId'], 'rows': 10_007,
                      'block_rows': 1000, 'blocks': 11}
  assert columnar.is_columnar(split_dir)
  assert len([f for f in os.listdir(split_dir) if f.startswith('block-')]) == 11


def test_an_epoch_yields_exactly_the_rows_of_the_tf_example_path(split):
  files, split_dir, _ = split
  expected = _multiset(tf_examples.make_dataset(files, SPEC, 1, shuffle=False, seed=0))
  assert sum(expected.values()) == 10_007
  assert _multiset(columnar.make_dataset(split_dir, 1, shuffle=True, seed=5)) == expected
  assert _multiset(columnar.make_dataset(split_dir, 1, shuffle=False, seed=5)) == expected


def test_batches_are_full_and_the_remainder_is_dropped(split):
  _, split_dir, _ = split
  dataset = columnar.make_dataset(split_dir, 64, shuffle=True, seed=1)
  assert all(spec.shape == (64,) for spec in dataset.element_spec.values())
  batches = list(dataset)
  assert len(batches) == 10_007 // 64
  assert all(b['userId'].shape == (64,) for b in batches)


def test_shuffling_changes_row_order_and_batch_mates_between_epochs(split):
  _, split_dir, _ = split
  dataset = columnar.make_dataset(split_dir, 100, shuffle=True, seed=1, repeat=True)
  iterator = iter(dataset)
  steps = 10_007 // 100
  first = np.concatenate([next(iterator)['userId'].numpy() for _ in range(steps)])
  second = np.concatenate([next(iterator)['userId'].numpy() for _ in range(steps)])
  assert not np.array_equal(first, second)
  manifest = columnar.read_manifest(split_dir)
  user_column = manifest['columns'].index('userId')
  block_of = {}
  for index in range(manifest['blocks']):
    block = tf.io.parse_tensor(tf.io.read_file(columnar.block_path(split_dir, index)),
                               tf.int64).numpy()
    block_of.update({user: index for user in block[user_column]})
  # A batch mixes rows of several blocks: rows move, not just blocks.
  assert len({block_of[user] for user in first[:100]}) >= 3


def test_only_int64_and_scalar_float_features_can_be_columnar():
  with pytest.raises(ValueError, match='variable-length int64 ones; tags'):
    columnar.check_feature_spec({'tags': tf.io.VarLenFeature(tf.string)})
  with pytest.raises(ValueError, match='variable-length int64 ones; scores'):
    columnar.check_feature_spec({'scores': tf.io.VarLenFeature(tf.float32)})
  with pytest.raises(ValueError, match='variable-length int64 ones; name'):
    columnar.check_feature_spec({'name': tf.io.FixedLenFeature([], tf.string)})


def test_a_float_column_comes_back_as_written(tmp_path):
  """The label's value (e.g. a rating) rides in the int64 blocks as its float bits."""
  spec = {'userId': tf.io.FixedLenFeature([], tf.int64),
          'label_value': tf.io.FixedLenFeature([], tf.float32)}
  assert columnar.check_feature_spec(spec) == (['label_value', 'userId'], [], ['label_value'])
  ratings = np.arange(1, 1001, dtype=np.float32) / 8 - 60.5  # negatives, fractions
  chunks = [{'userId': np.arange(1000), 'label_value': ratings}]
  split_dir = str(tmp_path / 'Split-train')
  manifest = columnar.write_split(chunks, ['label_value', 'userId'], split_dir,
                                  block_rows=300, seed=1, floats=['label_value'])
  assert manifest['floats'] == ['label_value']
  seen = {}
  for batch in columnar.make_dataset(split_dir, 100, shuffle=True, seed=2):
    assert batch['label_value'].dtype == tf.float32 and batch['userId'].dtype == tf.int64
    seen.update(zip(batch['userId'].numpy().tolist(), batch['label_value'].numpy().tolist()))
  assert seen == dict(zip(range(1000), ratings.tolist()))


# 2 pipelines: by block (11 blocks) and by file (2 files); 3: by block, and by record
# within each file (fewer files than pipelines); 16: by row within each block and file.
@pytest.mark.parametrize('num_pipelines', [2, 3, 16])
@pytest.mark.parametrize('input_format', ['columnar', 'tf_example'])
def test_input_pipelines_read_disjoint_parts_that_cover_the_split(split, input_format,
                                                                   num_pipelines):
  files, split_dir, _ = split
  patterns = [os.path.join(split_dir, '*')] if input_format == 'columnar' else files
  whole = _multiset(tf_examples.make_dataset(files, SPEC, 1, shuffle=False, seed=0))
  parts = [_multiset(reader.input_dataset(input_format, patterns, SPEC, 1, shuffle=True, seed=4,
                                          pipeline_id=i, num_pipelines=num_pipelines))
           for i in range(num_pipelines)]
  assert sum(parts, collections.Counter()) == whole
  assert [sum(p.values()) for p in parts] == reader.part_rows(input_format, patterns,
                                                                 num_pipelines)


def test_steps_per_pass_is_what_the_smallest_part_feeds_and_too_few_rows_is_named(split):
  files, split_dir, _ = split
  patterns = [os.path.join(split_dir, '*')]
  # 11 blocks over 2 pipelines: 6 blocks (the last one short) and 5; 32 rows a
  # pipeline per step.
  assert reader.part_rows('columnar', patterns, 2) == [5007, 5000]
  assert reader.steps_per_pass('columnar', patterns, 2, 64, 'train') == 5000 // 32
  with pytest.raises(ValueError, match=r'the eval split has 5000 rows per input pipeline '
                     r'\(2 pipelines\), fewer than one batch of 6000: lower '
                     r'training.batch_size'):
    reader.steps_per_pass('columnar', patterns, 2, 12_000, 'eval')
  assert reader.steps_per_pass('tf_example', files, 1, 1000, 'train') == 10


def test_one_block_reshuffles_every_pass_and_sees_every_row_before_repeating(tmp_path):
  rows = [{'userId': u, 'movieId': u % 7, 'label': u % 2} for u in range(600)]
  _write_examples(tmp_path / 'part-0.gz', rows)
  split_dir = str(tmp_path / 'Split-train')
  assert _write_columnar([str(tmp_path / 'part-0.gz')], split_dir)['blocks'] == 1
  iterator = iter(columnar.make_dataset(split_dir, 100, shuffle=True, seed=1, repeat=True))
  passes = [np.concatenate([next(iterator)['userId'].numpy() for _ in range(6)])
            for _ in range(3)]
  for seen in passes:
    assert sorted(seen.tolist()) == list(range(600))
  assert not np.array_equal(passes[0], passes[1])
  assert not np.array_equal(passes[1], passes[2])


def _write_list_examples(path, rows):
  with tf.io.TFRecordWriter(str(path), options='GZIP') as writer:
    for row in rows:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          name: tf.train.Feature(int64_list=tf.train.Int64List(
              value=value if isinstance(value, list) else [value]))
          for name, value in row.items()})).SerializeToString())


def _rows_with_lists(batch):
  genres = batch['genres']
  if isinstance(genres, tf.sparse.SparseTensor):
    genres = tf.RaggedTensor.from_sparse(genres)
  return list(zip(batch['userId'].numpy().tolist(), map(tuple, genres.to_list())))


@pytest.mark.parametrize('num_pipelines', [1, 2, 7])
def test_multi_valued_ids_survive_blocks_of_different_widths(tmp_path, num_pipelines):
  """A multi_hot column's lists come back as written, whatever each block's width and
  however the split is shared among input pipelines; the tf.Example path agrees."""
  rng = np.random.default_rng(2)
  # Lengths 1..3 in the first 700 rows, up to 6 after: blocks of different widths.
  rows = [{'userId': u, 'label': u % 2,
           'genres': rng.integers(0, 19, 1 + (u % 3 if u < 700 else u % 6)).tolist()}
          for u in range(1000)]
  _write_list_examples(tmp_path / 'part-0.gz', rows)
  spec = {'userId': tf.io.FixedLenFeature([], tf.int64),
          'label': tf.io.FixedLenFeature([], tf.int64),
          'genres': tf.io.VarLenFeature(tf.int64)}
  assert columnar.check_feature_spec(spec) == (['label', 'userId'], ['genres'], [])
  split_dir = str(tmp_path / 'Split-train')
  chunks = columnar.read_columns([str(tmp_path / 'part-0.gz')], spec, chunk_rows=300)
  manifest = columnar.write_split(chunks, ['label', 'userId'], split_dir, block_rows=250,
                                  seed=1, multi_valued=['genres'])
  assert manifest['multi_valued'] == {'genres': 6} and manifest['blocks'] == 4
  widths = [tf.io.parse_tensor(tf.io.read_file(columnar.block_path(split_dir, i, 'genres')),
                               tf.int64).shape[1] for i in range(4)]
  assert min(widths) < 6 == max(widths)
  expected = collections.Counter((r['userId'], tuple(r['genres'])) for r in rows)
  seen = collections.Counter()
  for i in range(num_pipelines):
    for batch in columnar.make_dataset(split_dir, 1, shuffle=True, seed=3, pipeline_id=i,
                                       num_pipelines=num_pipelines):
      assert isinstance(batch['genres'], tf.RaggedTensor)
      seen.update(_rows_with_lists(batch))
  assert seen == expected
  parsed = collections.Counter()
  for batch in tf_examples.make_dataset([str(tmp_path / 'part-0.gz')], spec, 10, shuffle=False,
                                    seed=0):
    parsed.update(_rows_with_lists(batch))
  assert parsed == expected
