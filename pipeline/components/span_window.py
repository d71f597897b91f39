"""SpanWindow: the last N spans' Examples as one Examples artifact, each span read once.

A run's CsvExampleGen reads only the newest span. This component keeps a history of every
span read so far (span -> the Examples that hold it, in a `File` artifact, HISTORY_TYPE)
and writes a window: one `Examples` artifact whose split folders hold the files of the
last `window_spans` spans' Examples, linked (hard links on a local disk, a copy elsewhere:
Cloud Storage has no links), never parsed again. Transform, ColumnarExamplesGen and the
Trainer read the window as they would read any Examples.

Each run's history extends the newest one before it, which a latest-artifact resolver
finds: the one resolver Vertex AI compiles besides the latest blessed model (TFX's
RollingRange resolver does not compile for Vertex). Vertex's compiled query names the
artifact type's title only, and only TFX's own types by theirs (any other type is queried
as `tfx.Artifact`, which matches nothing this pipeline writes), hence TFX's `File` type,
which nothing else here writes. The query is project-wide, so the history keeps every
pipeline's spans under its own key and carries the others' forward untouched.
"""

import json
import logging
import os
from typing import Dict, List

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.experimental import simple_artifacts

from contract import names

# What the history is recorded as (see above for why TFX's File), and its file.
HISTORY_TYPE = simple_artifacts.File
HISTORY_FILE = 'spans.json'
# The new span's Examples properties the window keeps: how its records are written.
_COPIED_PROPERTIES = ('payload_format', 'file_format')


class WindowError(ValueError):
  """The window's spans cannot be joined; the message says why and what to do."""


def read_history(uri: str) -> Dict[str, List[Dict]]:
  """{pipeline key: [{span, version, uri, splits}, ...] oldest span first}."""
  with tf.io.gfile.GFile(os.path.join(uri, HISTORY_FILE)) as f:
    return json.load(f)


def extend(history: Dict[str, List[Dict]], key: str, entry: Dict) -> Dict[str, List[Dict]]:
  """The history with `entry` as its span's Examples for `key` (a span read again
  replaces its earlier Examples)."""
  entries = [e for e in history.get(key, []) if e['span'] != entry['span']]
  return {**history, key: sorted(entries + [entry], key=lambda e: e['span'])}


def last_spans(entries: List[Dict], newest: int, window_spans: int) -> List[Dict]:
  """The entries of spans newest - window_spans + 1 .. newest, oldest first."""
  return [e for e in entries if newest - window_spans < e['span'] <= newest]


def int_property(artifact: tfx.dsl.Artifact, name: str) -> int:
  """An Examples' span or version: TFX declares both as properties, but its ExampleGen
  driver records them as custom properties."""
  value = getattr(artifact, name, 0)
  if not value and artifact.has_custom_property(name):
    value = artifact.get_int_custom_property(name)
  return int(value or 0)


def _link(source: str, target: str) -> None:
  if '://' not in source and '://' not in target:
    try:
      os.link(source, target)
      return
    except OSError:  # another file system, or one without hard links
      pass
  tf.io.gfile.copy(source, target, overwrite=True)


def write_window(members: List[Dict], split_names: List[str], window_uri: str) -> Dict[str, int]:
  """Links every member's split files into window_uri/Split-<name>/; files per split."""
  counts = {}
  for split in split_names:
    target_dir = os.path.join(window_uri, f'Split-{split}')
    tf.io.gfile.makedirs(target_dir)
    counts[split] = 0
    for member in members:
      if split not in member['splits']:
        raise WindowError(
            f'span {member["span"]} was read with splits {",".join(member["splits"])}, '
            f'the newest span with {",".join(split_names)}: a window joins spans split '
            f'alike; read span {member["span"]} again with this config (paths.span) or '
            'set training.window_spans: 1')
      source_dir = os.path.join(member['uri'], f'Split-{split}')
      for source in sorted(tf.io.gfile.glob(os.path.join(source_dir, '*'))):
        name = f'span-{member["span"]:06d}-{os.path.basename(source)}'
        _link(source, os.path.join(target_dir, name))
        counts[split] += 1
  return counts


@tfx.dsl.components.component
def SpanWindow(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    window: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    history: tfx.dsl.components.OutputArtifact[HISTORY_TYPE],
    previous_history: tfx.dsl.components.InputArtifact[HISTORY_TYPE] = None,
    window_spans: tfx.dsl.components.Parameter[int] = 1,
    # Whose spans these are: the pipeline's name and its input pattern.
    pipeline_key: tfx.dsl.components.Parameter[str] = '',
    # Not read: pipeline/fingerprint.py's hash, so that edited code reruns this component.
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Records the newest span and writes the window of the last `window_spans` spans.

  Args:
    examples: CsvExampleGen's Examples of the span this run read.
    window: the output: the window's spans' files under the newest span's split names.
    history: the output: `previous_history` with this span added.
    previous_history: the newest history of an earlier run (none on the first run).
    window_spans: how many spans, ending with this run's, the window holds.
    pipeline_key: whose spans these are, in a history many pipelines may share.
    code_fingerprint: pipeline/fingerprint.py's hash, for the cache key only.
  """
  del code_fingerprint
  newest = int_property(examples, 'span')
  split_names = artifact_utils.decode_split_names(examples.split_names)
  known = {}
  if previous_history is not None:
    try:
      known = read_history(previous_history.uri)
    except (OSError, ValueError, tf.errors.OpError):
      # Another pipeline's File in a store shared project-wide (Vertex AI).
      logging.warning('%s holds no span history; starting a new one.', previous_history.uri)
  ledger = extend(known, pipeline_key, dict(
      span=newest, version=int_property(examples, 'version'), uri=examples.uri,
      splits=split_names))
  tf.io.gfile.makedirs(history.uri)  # Vertex AI makes no output folder beforehand
  with tf.io.gfile.GFile(os.path.join(history.uri, HISTORY_FILE), 'w') as f:
    json.dump(ledger, f, indent=1, sort_keys=True)
  members = last_spans(ledger[pipeline_key], newest, window_spans)
  files = write_window(members, split_names, window.uri)
  spans = [m['span'] for m in members]
  missing = sorted(set(range(max(newest - window_spans + 1, 0), newest + 1)) - set(spans))
  if missing:
    logging.warning('The window lacks span(s) %s: no earlier run of this pipeline read '
                    'them.', ','.join(map(str, missing)))
  window.split_names = examples.split_names
  window.span = newest
  window.version = int_property(examples, 'version')
  for name in _COPIED_PROPERTIES:
    if examples.has_custom_property(name):
      window.set_string_custom_property(name, examples.get_string_custom_property(name))
  window.set_string_custom_property(names.WINDOW_SPANS_KEY, ','.join(map(str, spans)))
  window.set_int_custom_property('files', sum(files.values()))
  history.set_int_custom_property('spans', len(ledger[pipeline_key]))
