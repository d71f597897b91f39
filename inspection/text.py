"""Runs, artifacts, lineage and evaluations as text tables for a terminal."""

import json
from typing import Any, Dict, List, Sequence

from inspection.as_data import describe_artifact, execution_facts, stop_reason, time_text
from inspection.run_store import ArtifactRecord, LineageNode, RunRecord, RunStore


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  cells = [list(map(str, headers))] + [[_cell(v) for v in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
  lines = ['  '.join(value.ljust(width) for value, width in zip(row, widths)).rstrip()
           for row in cells]
  lines.insert(1, '  '.join('-' * width for width in widths))
  return '\n'.join(lines)


def _cell(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.4f}' if abs(value) < 1000 else f'{value:,.0f}'
  if value is None:
    return '-'
  return str(value)


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(round(seconds), 60)
  return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


def runs_text(store: RunStore, runs: List[RunRecord]) -> str:
  """Args: the store and its runs. Returns: a table per run of its components."""
  parts = [f'Pipeline {store.pipeline} in {store.where}: {len(runs)} run(s)']
  for run in runs:
    parts.append(f'\nRun {run.id}  started {time_text(run.start)}  took {_duration(run.seconds)}')
    parts.append(text_table(
        ('component', 'execution', 'state', 'started', 'seconds'),
        [(e.component, e.id, e.state, e.start.strftime('%H:%M:%S'), f'{e.seconds:.1f}')
         for e in run.executions]))
    parts.extend(stop_reason(store, run))
  return '\n'.join(parts)


def _properties_text(properties: Dict[str, Any], limit: int = 70) -> str:
  text = ', '.join(f'{k}={v}' for k, v in properties.items())
  return text if len(text) <= limit else text[:limit - 3] + '...'


def artifacts_text(artifacts: List[ArtifactRecord]) -> str:
  """Args: artifacts read from the store. Returns: a line or two per artifact."""
  if not artifacts:
    return 'No artifacts.'
  parts = []
  for type_name in sorted({a.type for a in artifacts}):
    of_type = [describe_artifact(a) for a in artifacts if a.type == type_name]
    parts.append(f'{type_name} ({len(of_type)})')
    parts.append(text_table(('id', 'produced by', 'key', 'uri', 'properties'),
                        [(a['id'], a['produced_by'], a['output_key'], a['uri'],
                          _properties_text(a['properties'])) for a in of_type]))
    parts.append('')
  return '\n'.join(parts).rstrip()


def lineage_text(node: LineageNode) -> str:
  """Args: an artifact's lineage node. Returns: the tree of what it was made from."""
  lines: List[str] = []
  shown = set()

  def walk(node: LineageNode, key: str, depth: int) -> None:
    artifact = node.artifact
    producer = artifact.producer
    made_by = f'{producer.component} (execution {producer.id})' if producer else 'no producer'
    indent = '  ' * depth
    label = f'{key}: ' if key else ''
    if artifact.id in shown:
      lines.append(f'{indent}{label}{artifact.type} #{artifact.id} (shown above)')
      return
    shown.add(artifact.id)
    lines.append(f'{indent}{label}{artifact.type} #{artifact.id} <- {made_by}')
    lines.append(f'{indent}    {artifact.uri}')
    for name, value in execution_facts(artifact).items():
      lines.append(f'{indent}    {name}: {json.dumps(value) if isinstance(value, dict) else value}')
    for input_key, nodes in node.inputs.items():
      for upstream in nodes:
        walk(upstream, input_key, depth + 1)

  walk(node, '', 0)
  return '\n'.join(lines)


def evaluation_text(described: Dict[str, Any]) -> str:
  """Args: as_data.describe_evaluation's result. Returns: metrics and blessing as text."""
  parts = [f'Run {described["run_id"]}']
  evaluation = described['evaluation']
  if evaluation is None:
    parts.append('No evaluation: the Evaluator did not run in this run.')
  else:
    blessing = described['blessing']
    verdict = 'BLESSED' if blessing['blessed'] else 'NOT BLESSED'
    parts.append(f'\nModel #{blessing["candidate_model_id"]}: {verdict} ({blessing["reason"]})')
    if blessing['thresholds']:
      parts.append('Thresholds: ' + '; '.join(blessing['thresholds']))
    if blessing['baseline_model_id']:
      parts.append(f'Baseline: model #{blessing["baseline_model_id"]}')
    overall = evaluation['overall']
    names = [n for n in overall if not n.endswith('_diff')]
    parts.append('\nOverall')
    parts.append(text_table(('metric', 'value', 'change vs baseline'),
                        [(n, overall[n], overall.get(f'{n}_diff')) for n in names]))
    if evaluation['slices']:
      columns = [n for n in ('example_count', 'auc', 'mean_label', 'mean_prediction')
                 if n in names]
      parts.append(f'\nSlices ({len(evaluation["slices"])} of {evaluation["slice_count"]}, '
                   'largest first)')
      parts.append(text_table(['slice'] + columns,
                          [[s['slice']] + [s['metrics'].get(c) for c in columns]
                           for s in evaluation['slices']]))
  anomalies = described['anomalies']
  if anomalies is None:
    parts.append('\nAnomalies: ExampleValidator did not run in this run.')
  else:
    found = [(split, feature, text) for split, by_feature in anomalies.items()
             for feature, text in by_feature.items()]
    parts.append('\nAnomalies: ' + ('none' if not found else ''))
    if found:
      parts.append(text_table(('split', 'feature', 'anomaly'), found))
  return '\n'.join(parts)


def _spans_text(spans) -> str:
  if spans == [0]:
    return '-'  # an input without spans
  if len(spans) > 2 and spans == list(range(spans[0], spans[-1] + 1)):
    return f'{spans[0]}-{spans[-1]}'
  return ','.join(map(str, spans))


def models_text(models) -> str:
  """A line per trained model, oldest first; the one serving now is marked."""
  if not models:
    return 'No model trained yet.'
  def yes_no(value):
    return '-' if value is None else 'yes' if value else 'no'
  rows = [(f'#{m.model_id}', m.run_id, m.trained, _spans_text(m.spans),
           f'#{m.warm_started_from}' if m.warm_started_from else '-',
           '-' if m.auc is None else f'{m.auc:.4f}', yes_no(m.blessed), yes_no(m.pushed),
           'serving' if m.serving else '') for m in models]
  return text_table(('model', 'run', 'trained (UTC)', 'spans', 'warm start', 'AUC',
                     'blessed', 'pushed', 'now'), rows).rstrip()
