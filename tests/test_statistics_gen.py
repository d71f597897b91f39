"""The project's StatisticsGen: what it writes of an empty split, and what it refuses.
(That its statistics are TFX's own on the same examples: test_features_pipeline.py, on
a run's examples; bench/statistics_gen.py, at 1M rows.)"""

import os

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from conftest import PROJECT_DIR
from inspection import artifact_contents
from pipeline.components import statistics_gen

EXECUTOR = statistics_gen.StatisticsGen.EXECUTOR_SPEC.executor_class


def _example(user: int, movie: int) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
      'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[movie])),
  })).SerializeToString()


def _examples(root, rows_by_split, payload=example_gen_pb2.FORMAT_TF_EXAMPLE):
  """An Examples artifact as CsvExampleGen writes one: a gzipped file per split, an empty
  one for a split no row went to."""
  examples = standard_artifacts.Examples()
  examples.uri = str(root)
  examples.split_names = artifact_utils.encode_split_names(list(rows_by_split))
  examples.span = 7
  examples_utils.set_payload_format(examples, payload)
  for split, rows in rows_by_split.items():
    os.makedirs(root / f'Split-{split}')
    with tf.io.TFRecordWriter(str(root / f'Split-{split}' / 'data_tfrecord-00000.gz'),
                              tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
      for row in rows:
        writer.write(_example(*row))
  return examples


def _run(examples, output, **properties):
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = str(output)
  EXECUTOR(EXECUTOR.Context(
      beam_pipeline_args=['--direct_num_workers=1', f'--setup_file={PROJECT_DIR}/setup.py'],
      tmp_dir=str(output) + '-tmp')).Do(
          {'examples': [examples]}, {'statistics': [statistics]},
          {'sample_rate': 1.0, 'code_fingerprint': 'test', **properties})
  return statistics


def test_each_split_is_counted_and_an_empty_split_is_an_empty_dataset(tmp_path):
  examples = _examples(tmp_path / 'examples', {
      'train': [(u, u % 7) for u in range(1, 2_501)], 'eval': [(3, 4)], 'test': []})
  statistics = _run(examples, tmp_path / 'statistics')
  assert artifact_utils.decode_split_names(statistics.split_names) == ['train', 'eval', 'test']
  assert statistics.span == 7
  protos = artifact_contents.statistics_protos(statistics.uri)
  assert {split: p.datasets[0].num_examples for split, p in protos.items()} == {
      'train': 2_500, 'eval': 1, 'test': 0}
  train = {f.path.step[0]: f.num_stats for f in protos['train'].datasets[0].features}
  assert (train['userId'].min, train['userId'].max, train['userId'].mean) == (1, 2_500, 1_250.5)
  assert (train['movieId'].min, train['movieId'].max) == (0, 6)
  # What TFX's StatisticsGen writes of an empty split: one dataset, with nothing in it.
  assert protos['test'] == statistics_pb2.DatasetFeatureStatisticsList(
      datasets=[statistics_pb2.DatasetFeatureStatistics()])


def test_examples_that_are_not_tf_examples_are_refused_before_reading(tmp_path):
  examples = _examples(tmp_path / 'examples', {'train': [(1, 2)]},
                       payload=example_gen_pb2.FORMAT_PARQUET)
  with pytest.raises(ValueError, match='StatisticsGen reads tf.Examples; .* holds '
                     'FORMAT_PARQUET. Use tfx.components.StatisticsGen'):
    _run(examples, tmp_path / 'statistics')
  assert not (tmp_path / 'statistics').exists()


def test_a_sample_rate_reads_a_share_of_the_batches(tmp_path):
  # TFDV samples a whole batch of rows at a time: at a rate of 1e-9 none is kept.
  examples = _examples(tmp_path / 'examples', {'train': [(u, 1) for u in range(1, 101)]})
  statistics = _run(examples, tmp_path / 'statistics', sample_rate=1e-9)
  protos = artifact_contents.statistics_protos(statistics.uri)
  assert protos['train'].datasets[0].num_examples == 0
