"""training.window_spans: the last N spans as one Examples artifact, each span read once
by the run that first saw it, its files linked into later windows (never parsed again)."""

import csv
import glob
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import PROJECT_DIR, SAMPLE_CONFIG
from contract import names
from pipeline import config as config_lib
from pipeline.components import span_window

SPANS_TOOL = os.path.join(PROJECT_DIR, 'data', 'spans.py')
SAMPLE_DATA = os.path.join(PROJECT_DIR, 'data', 'sample', 'ratings.csv')


def _entry(span, uri='/x', splits=('train', 'eval')):
  return dict(span=span, version=0, uri=f'{uri}/{span}', splits=list(splits))


def test_the_history_keeps_every_span_once_and_other_pipelines_untouched():
  history = {'other /their/{SPAN}': [_entry(9)]}
  for span in (1, 2, 4):
    history = span_window.extend(history, 'mine', _entry(span))
  history = span_window.extend(history, 'mine', _entry(2, uri='/again'))
  assert [(e['span'], e['uri']) for e in history['mine']] == [
      (1, '/x/1'), (2, '/again/2'), (4, '/x/4')]
  assert history['other /their/{SPAN}'] == [_entry(9)]
  assert [e['span'] for e in span_window.last_spans(history['mine'], 4, 3)] == [2, 4]
  # A run that goes back to span 2 trains on spans up to 2 only.
  assert [e['span'] for e in span_window.last_spans(history['mine'], 2, 3)] == [1, 2]


def test_spans_split_differently_are_refused_naming_the_span(tmp_path):
  for span, split in ((1, 'eval'), (2, 'validation')):
    os.makedirs(tmp_path / str(span) / f'Split-{split}')
  members = [_entry(1, str(tmp_path), ('train', 'eval')),
             _entry(2, str(tmp_path), ('train', 'validation'))]
  with pytest.raises(span_window.WindowError, match=r'^span 1 was read with splits '
                     r'train,eval, the newest span with train,validation: .*paths.span'):
    span_window.write_window(members, ['train', 'validation'], str(tmp_path / 'window'))


def test_the_config_needs_spans_for_a_window(tmp_path):
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(SAMPLE_CONFIG, ['training.window_spans=2'])
  assert 'training.window_spans' in str(caught.value) and '{SPAN}' in str(caught.value)


def test_the_window_feeds_transform_and_the_columnar_examples_not_the_evaluator():
  from pipeline import graph  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config(SAMPLE_CONFIG, [
      'paths.input=/data/span-{SPAN}/ratings.csv', 'training.window_spans=3'])
  components = {c.id: c for c in graph.create_pipeline(
      config, pipeline_root='/tmp/unused').components}
  window = components['SpanWindow']
  assert window.exec_properties['window_spans'] == 3
  assert (window.inputs['previous_history'].producer_component_id
          == 'latest_span_history_resolver')
  for consumer, key in (('Transform', 'examples'), ('ColumnarExamplesGen', 'examples')):
    assert components[consumer].inputs[key].producer_component_id == 'SpanWindow'
  assert components['Evaluator'].inputs['examples'].producer_component_id == 'CsvExampleGen'
  assert 'SpanWindow' not in {c.id for c in graph.create_pipeline(
      config_lib.load_config(SAMPLE_CONFIG), pipeline_root='/tmp/unused').components}


def _records(pattern):
  return sum(1 for path in glob.glob(pattern)
             for _ in tf.data.TFRecordDataset(path, compression_type='GZIP'))


@pytest.mark.slow
def test_a_window_of_three_spans_holds_exactly_their_rows_each_read_once(tmp_path):
  """The pipeline's CsvExampleGen and SpanWindow under TFX's local runner, span after
  span of the sample cut by year."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import graph  # pylint: disable=g-import-not-at-top
  from pipeline.local import metadata_store  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'yearly'
  subprocess.run([sys.executable, SPANS_TOOL, SAMPLE_DATA, '--by', 'year', '--out',
                  str(out)], check=True, capture_output=True)
  with open(out / 'spans.csv') as f:
    rows = {int(r['span']): int(r['rows']) for r in csv.DictReader(f)}
  assert sorted(rows) == [1, 2, 3, 4]
  pattern = str(out / 'span-{SPAN:3}' / 'ratings.csv')
  connection = metadata_store.sqlite_connection(str(tmp_path / 'metadata.sqlite'))
  for span in (1, 2, 3, 4):
    config = config_lib.load_config(SAMPLE_CONFIG, [
        f'paths.input={pattern}', f'paths.output_root={tmp_path}', f'paths.span={span}'])
    example_gen = graph._example_gen(config, code_fingerprint='test')  # pylint: disable=protected-access
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        history=tfx.dsl.Channel(type=span_window.HISTORY_TYPE)).with_id('history')
    window = span_window.SpanWindow(
        examples=example_gen.outputs['examples'],
        previous_history=resolver.outputs['history'], window_spans=3,
        pipeline_key=f'spans {pattern}')
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name='spans', pipeline_root=str(tmp_path / 'root'),
        components=[example_gen, resolver, window], metadata_connection_config=connection,
        beam_pipeline_args=['--direct_num_workers=1']))
  store = metadata_store.open_store(connection)
  examples = store.get_artifacts_by_type('Examples')
  read = [a for a in examples if '/CsvExampleGen/' in a.uri]
  assert sorted(a.custom_properties['span'].int_value for a in read) == [1, 2, 3, 4]
  newest = max((a for a in examples if '/SpanWindow/' in a.uri), key=lambda a: a.id)
  assert newest.custom_properties[names.WINDOW_SPANS_KEY].string_value == '2,3,4'
  assert _records(os.path.join(newest.uri, 'Split-*', '*')) == rows[2] + rows[3] + rows[4]
  # Linked, not copied: the window's files are span 2-4's own.
  linked = glob.glob(os.path.join(newest.uri, 'Split-train', '*'))
  originals = {os.stat(f).st_ino for a in read for f in glob.glob(
      os.path.join(a.uri, 'Split-train', '*'))}
  assert len(linked) == 3 and {os.stat(f).st_ino for f in linked} <= originals
  history = max(store.get_artifacts_by_type(span_window.HISTORY_TYPE.TYPE_NAME),
                key=lambda a: a.id)
  assert [e['span'] for e in span_window.read_history(history.uri)[f'spans {pattern}']] == [
      1, 2, 3, 4]
