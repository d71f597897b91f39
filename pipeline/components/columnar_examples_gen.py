"""ColumnarExamplesGen: the raw examples through Transform's graph, as columnar blocks.

The Trainer reads these instead of parsing tf.Examples row by row (modules/data/columnar.py
says why and how). Transform's graph is applied here, in TensorFlow a chunk of rows at a
time, so that Transform itself need not write transformed tf.Examples (Beam, a Python
call per row: most of its time). The output is an ordinary `Examples` artifact with the
same splits, so ML Metadata records it, its lineage and its reuse like any other.
"""

import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.types import artifact_utils

from modules.data import catalogue
from modules.data import columnar

FILE_FORMAT = 'columnar_int64_blocks'


@tfx.dsl.components.component
def ColumnarExamplesGen(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    transform_graph: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.TransformGraph],
    columnar_examples: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Examples],
    # Comma-separated split names to write; all of `examples`' splits when empty.
    splits: tfx.dsl.components.Parameter[str] = '',
    # The item key column (the first item-side feature): one raw example per distinct
    # key of every split is written as the item catalogue; none when empty.
    catalogue_key: tfx.dsl.components.Parameter[str] = '',
    block_rows: tfx.dsl.components.Parameter[int] = columnar.DEFAULT_BLOCK_ROWS,
    seed: tfx.dsl.components.Parameter[int] = 0,
    # Not read: pipeline/fingerprint.py's hash, so that edited code reruns this component.
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Writes `splits` of `examples` (all by default), transformed, as columnar blocks.

  Args:
    examples: CsvExampleGen's raw examples.
    transform_graph: Transform's graph, applied here a chunk of rows at a time.
    columnar_examples: the output: Split-<name>/ block folders (and catalogue/).
    splits: comma-separated split names; empty: every split.
    catalogue_key: the item key column for the catalogue; empty: no catalogue.
    block_rows: rows per block.
    seed: the write-time shuffle's seed.
    code_fingerprint: pipeline/fingerprint.py's hash, for the cache key only.
  """
  del code_fingerprint
  tft_output = tft.TFTransformOutput(transform_graph.uri)
  try:
    columns = columnar.check_feature_spec(tft_output.transformed_feature_spec())
  except ValueError as e:
    raise ValueError(f'{e}. Set training.input_format: tf_example to train on the '
                     'tf.Examples instead.') from None

  def transform(raw_features):
    return tft_output.transform_raw_features(raw_features, drop_unused_features=True)

  raw_feature_spec = tft_output.raw_feature_spec()

  split_names = (splits.split(',') if splits
                 else artifact_utils.decode_split_names(examples.split_names))
  for split in split_names:
    split_uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, '*')))
    chunks = columnar.read_columns(files, raw_feature_spec, chunk_rows=16 * block_rows,
                                   transform=transform)
    manifest = columnar.write_split(
        chunks, columns.scalars, os.path.join(columnar_examples.uri, f'Split-{split}'),
        block_rows=block_rows, seed=seed, multi_valued=columns.multi_valued,
        floats=columns.floats)
    columnar_examples.set_int_custom_property(f'{split}_rows', manifest['rows'])
  if catalogue_key:
    every_split = artifact_utils.decode_split_names(examples.split_names)
    files = sorted(f for split in every_split for f in tf.io.gfile.glob(os.path.join(
        artifact_utils.get_split_uri([examples], split), '*')))
    items = catalogue.write(
        catalogue.distinct_items(files, catalogue_key, raw_feature_spec[catalogue_key]),
        columnar_examples.uri)
    columnar_examples.set_int_custom_property('catalogue_items', items)
  columnar_examples.split_names = artifact_utils.encode_split_names(split_names)
  columnar_examples.set_string_custom_property('file_format', FILE_FORMAT)
