"""What a local run prints as it goes: a line per component, with its result.

TFX's local runner logs `Component <id> is running.` and `... is finished.` around each
component. `RunProgress` is a logging handler that turns those two records into lines
for a person: when it started, how long it took or that it was cached, and its headline
(rows per split, anomalies, the final AUC, blessed or not, where the model went), read
from what the component recorded in ML Metadata.
"""

import logging
import math
import os
import re
import time
from typing import Callable, Dict, List, Optional, TextIO, Tuple

from contract.names import (ALREADY_PUSHED_KEY, PREVIOUSLY_SERVING_KEY,
                            REUSED_EVALUATION_KEY, WINDOW_SPANS_KEY)
from inspection import artifact_contents
from inspection.run_store import ArtifactRecord, ExecutionRecord, RunStore, StoreError
from pipeline.components.validation_gate import anomalies as anomalies_lib

_STARTED = 'Component %s is running.'
_FINISHED = 'Component %s is finished.'
_NAME_WIDTH = len('latest_blessed_model_resolver')


def _count(value: float) -> str:
  return f'{value:,.0f}'


def _bytes(value: float) -> str:
  for unit in ('B', 'KB', 'MB', 'GB'):
    if value < 1024 or unit == 'GB':
      return f'{value:,.0f} {unit}' if unit == 'B' else f'{value:,.1f} {unit}'
    value /= 1024
  raise AssertionError(value)


def _rows(counts: Dict[str, float]) -> str:
  order = {'train': 0, 'validation': 1, 'eval': 1, 'test': 2}
  ordered = sorted(counts, key=lambda split: (order.get(split, 3), split))
  return ', '.join(f'{split} {_count(counts[split])}' for split in ordered)


def _first(outputs: Dict[str, List[ArtifactRecord]], key: str) -> Optional[ArtifactRecord]:
  found = outputs.get(key) or []
  return found[0] if found else None


def _example_gen(execution, outputs) -> str:
  # e.g. 'split:single_split,num_files:1,total_bytes:180000,xor_checksum:...'
  fingerprint = str(execution.properties.get('input_fingerprint', ''))
  files = re.search(r'num_files:(\d+)', fingerprint)
  size = re.search(r'total_bytes:(\d+)', fingerprint)
  examples = _first(outputs, 'examples')
  splits = str(examples.properties.get('split_names', '')) if examples else ''
  text = 'splits ' + ', '.join(re.findall(r'"([^"]+)"', splits)) if splits else ''
  if files and size:
    text += f' from {files.group(1)} file(s), {_bytes(int(size.group(1)))}'
  # Which span the driver read; an input without {SPAN} or a date is span 0.
  span = int(examples.properties.get('span', 0)) if examples else 0
  if span:
    text = f'span {span}: {text}'
  return text.strip()


def _span_window(execution, outputs) -> str:
  window = _first(outputs, 'window')
  spans = str(window.properties.get(WINDOW_SPANS_KEY, '')) if window else ''
  wanted = execution.properties.get('window_spans')
  held = len(spans.split(',')) if spans else 0
  text = f'trains on span{"s" if held > 1 else ""} {spans.replace(",", ", ")}'
  if wanted and held < int(wanted):
    text += f' ({held} of {wanted}: no earlier run read the others)'
  return text


def _history_resolver(execution, outputs) -> str:
  history = _first(outputs, 'history')
  if history is None:
    return 'no span read before'
  return f'{history.properties.get("spans", 0)} span(s) read before'


def _statistics(execution, outputs) -> str:
  statistics = _first(outputs, 'statistics')
  protos = artifact_contents.statistics_protos(statistics.uri)
  counts = _rows({split: proto.datasets[0].num_examples for split, proto in protos.items()})
  sample_rate = artifact_contents.statistics_sample_rate(execution.properties)
  if sample_rate is not None:
    return f'rows in a {sample_rate:.0%} sample: {counts}'
  return f'rows: {counts}'


def _schema(execution, outputs) -> str:
  schema_file = execution.properties.get('schema_file')
  return f'schema {os.path.basename(schema_file)}' if schema_file else 'schema inferred'


def _anomalies(execution, outputs) -> str:
  problems = anomalies_lib.lines(anomalies_lib.read(_first(outputs, 'anomalies').uri))
  if not problems:
    return 'no anomalies'
  return f'{len(problems)} anomalies, e.g. {problems[0]}'


def _verdict(execution, outputs) -> str:
  verdict = _first(outputs, 'verdict')
  count = verdict.properties.get('anomalies', 0) if verdict else 0
  if not count:
    return 'data valid'
  return f'{count} anomalies, continuing (validation.on_anomalies: warn)'


def _transform(execution, outputs) -> str:
  graph = _first(outputs, 'transform_graph')
  sizes = artifact_contents.bucket_counts(graph.uri)
  return 'table rows: ' + ', '.join(f'{name} {_count(rows)}' for name, rows in sizes.items())


def _columnar(execution, outputs) -> str:
  examples = _first(outputs, 'columnar_examples')
  return 'rows: ' + _rows({name[:-len('_rows')]: value
                           for name, value in examples.properties.items()
                           if name.endswith('_rows')})


def _tuner(execution, outputs) -> str:
  results = _first(outputs, 'tuner_results')
  trials = artifact_contents.tuner_trials(results.uri) if results else []
  if not trials:
    return 'no completed trial'
  best = trials[0]
  chosen = ', '.join(f'{name} {value}' for name, value in best['values'].items())
  return (f'best of {len(trials)} trial(s): {artifact_contents.tuner_objective(execution.properties)} '
          f'{best["score"]:.4f} with {chosen}')


def _trainer(execution, outputs) -> str:
  model_run = _first(outputs, 'model_run')
  record = artifact_contents.training_record(model_run.uri) if model_run else None
  if not record:
    return ''
  final = record.get('eval', {})
  epochs = len(next(iter(record.get('history', {}).values()), []))
  parts = [f'eval AUC {final["auc"]:.4f}' if 'auc' in final else '',
           f'after {epochs} epoch(s)' if epochs else '']
  return ' '.join(p for p in parts if p)


def _metric(value) -> str:
  """A metric's value; an AUC of rows of one label class is undefined (NaN, which TFMA
  may record as the string 'NaN')."""
  number = float(value)
  return 'undefined' if math.isnan(number) else f'{number:.4f}'


def _evaluator(execution, outputs) -> str:
  blessing = _first(outputs, 'blessing')
  blessed = blessing is not None and blessing.properties.get('blessed') == 1
  contents = artifact_contents.evaluation(_first(outputs, 'evaluation').uri)
  overall = contents['slices'][0]['metrics'] if contents['slices'] else {}
  auc = ''
  if 'auc' in overall:
    value = _metric(overall['auc'])
    auc = f'AUC {value}{" (one label class)" if value == "undefined" else ""}, '
  if _first(outputs, 'evaluation').properties.get(REUSED_EVALUATION_KEY):
    return auc + 'blessed: the candidate is the blessed baseline, not evaluated again'
  if blessed:
    return auc + 'blessed'
  failures = contents['validation']['failures']
  reason = (f'{failures[0]["metric"]} {_metric(failures[0]["value"])} on '
            f'{failures[0]["slice"]}' if failures else 'thresholds not met')
  return auc + f'NOT blessed ({reason})'


def _pusher(execution, outputs) -> str:
  pushed = _first(outputs, 'pushed_model')
  already = pushed.properties.get(ALREADY_PUSHED_KEY) if pushed else None
  if already:
    return f'not pushed: {already} already serves this model'
  before = pushed.properties.get(PREVIOUSLY_SERVING_KEY) if pushed else None
  if pushed is None or pushed.properties.get('pushed') != 1:
    return 'not pushed (the model was not blessed)' + (
        f': {before} still serves' if before else '')
  return f'pushed to {pushed.properties.get("pushed_destination", pushed.uri)}' + (
      f', replacing {os.path.basename(before)}' if before else '')


def _resolver(execution, outputs) -> str:
  models = outputs.get('model') or []
  return f'baseline: model #{models[0].id}' if models else 'baseline: none yet'


# What each component of the pipeline (by id) reports when it is done.
HEADLINES: Dict[str, Callable[[ExecutionRecord, Dict[str, List[ArtifactRecord]]], str]] = {
    'CsvExampleGen': _example_gen,
    'StatisticsGen': _statistics,
    'ImportSchemaGen': _schema,
    'SchemaGen': _schema,
    'ExampleValidator': _anomalies,
    'DataValidationGate': _verdict,
    'latest_span_history_resolver': _history_resolver,
    'SpanWindow': _span_window,
    'Transform': _transform,
    'ColumnarExamplesGen': _columnar,
    'Tuner': _tuner,
    'Trainer': _trainer,
    'latest_blessed_model_resolver': _resolver,
    'Evaluator': _evaluator,
    'Pusher': _pusher,
}


def headline(store: RunStore, execution: ExecutionRecord) -> str:
  """The one-phrase result of an execution; '' when there is nothing to say, and a
  pointer to the log when its artifacts cannot be read (the line is a summary: it
  must never fail the run)."""
  describe = HEADLINES.get(execution.component)
  if describe is None:
    return ''
  try:
    return describe(execution, store.outputs(execution, resolved=True))
  except Exception as e:  # pylint: disable=broad-except
    logging.getLogger(__name__).warning('no headline for %s: %r', execution.component, e)
    return f'done; its summary could not be read ({type(e).__name__}: see the log)'


class RunProgress(logging.Handler):
  """Prints a line as each component starts and another as it ends.

  On a terminal the start line is rewritten in place by the end line, so a run takes
  one line per component; elsewhere (a pipe, a CI log) both are printed.
  """

  def __init__(self, console: TextIO, open_store: Callable[[], RunStore]):
    super().__init__(level=logging.INFO)
    self._console = console
    self._open_store = open_store
    self._store: Optional[RunStore] = None
    self._in_place = console.isatty()
    self.component: Optional[str] = None
    self._started = 0.0

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg not in (_STARTED, _FINISHED) or not record.args:
      return
    component = str(record.args[0])
    if record.msg == _STARTED:
      self.component, self._started = component, time.monotonic()
      line = f'  {component:<{_NAME_WIDTH}} ...'
      self._console.write(line if self._in_place else line + '\n')
      self._console.flush()
      return
    self.component = None
    execution, summary = self._result(component)
    cached = execution is not None and execution.state == 'CACHED'
    took = 'cached' if cached else f'{time.monotonic() - self._started:.1f}s'
    line = f'  {component:<{_NAME_WIDTH}} {took:>7}  {summary}'.rstrip()
    self._console.write(('\r\033[K' if self._in_place else '') + line + '\n')
    self._console.flush()

  def _result(self, component: str):
    try:
      if self._store is None:
        self._store = self._open_store()
      execution = self._store.latest_execution(component)
    except StoreError as e:
      logging.getLogger(__name__).warning('cannot read the run back: %s', e)
      return None, ''
    return execution, headline(self._store, execution) if execution else ''

  def failed(self) -> str:
    """`<component> failed after <seconds>`, for the component that was running when
    the run failed ('' between components)."""
    running = self._stop()
    return f'{running[0]} failed after {running[1]:.1f}s' if running else ''

  def interrupted(self) -> str:
    """`interrupted during <component> after <seconds>` (or just `interrupted`)."""
    running = self._stop()
    return (f'interrupted during {running[0]} after {running[1]:.1f}s' if running
            else 'interrupted')

  def _stop(self) -> Optional[Tuple[str, float]]:
    """The running component and its seconds so far; clears its line on a terminal."""
    if self.component is None:
      return None
    if self._in_place:
      self._console.write('\r\033[K')
    return self.component, time.monotonic() - self._started
