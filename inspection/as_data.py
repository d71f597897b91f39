"""Runs, artifacts, lineage and evaluations as plain data: what `--json` prints and what
the text tables and the HTML report are made of."""

import json
import os
from typing import Any, Dict, List, Optional

from contract.model_inputs import ModelInputs
from contract.names import (CODE_FINGERPRINT_KEY, MODEL_INPUTS_KEY, REUSED_EVALUATION_KEY,
                            TRAINING_KEY)
from inspection import artifact_contents
from inspection import run_store
from inspection.run_store import ArtifactRecord, LineageNode, RunRecord, RunStore
from pipeline.components.validation_gate import anomalies as anomalies_lib

# Properties every TFX artifact has, which say nothing about this one.
_BOILERPLATE = frozenset({'tfx_version', 'is_external', 'state', 'name',
                          'producer_component', 'stats_dashboard_link',
                          'sample_rate_by_split'})
_SHOWN_EXECUTION_PROPERTIES = ('input_base', 'input_fingerprint', 'schema_file',
                               'preprocessing_fn', 'run_fn', 'push_destination')


def time_text(value) -> str:
  return value.strftime('%Y-%m-%d %H:%M:%S UTC')


def describe_run(run: RunRecord) -> Dict[str, Any]:
  """One run as plain data (what `runs --json` prints).

  Args:
    run: a run read from the store.

  Returns:
    Its id, start and end times, seconds and executions, JSON-ready.
  """
  return {
      'run_id': run.id,
      'started': time_text(run.start),
      'ended': time_text(run.end),
      'seconds': round(run.seconds, 1),
      'components': [{'component': e.component, 'execution_id': e.id, 'state': e.state,
                      'started': time_text(e.start), 'ended': time_text(e.end),
                      'seconds': round(e.seconds, 1)} for e in run.executions],
  }


def stop_reason(store: RunStore, run: RunRecord) -> List[str]:
  """Why a run did not finish.

  Args:
    store: the store the run is in (its failed component's outputs are read there).
    run: the run.

  Returns:
    A line per reason; empty when the run finished (or is still going).
  """
  failed = [e for e in run.executions if e.state in ('FAILED', 'INTERRUPTED')]
  if not failed:
    return []
  execution = failed[0]
  if execution.state == 'INTERRUPTED':
    return [f'interrupted during {execution.component} (the run was stopped or killed)']
  if execution.component != 'DataValidationGate':
    return [f'stopped: {execution.component} failed (its error is in the run\'s log)']
  anomalies = store.output(run, 'ExampleValidator', 'anomalies')
  statistics = store.output(run, 'StatisticsGen', 'statistics')
  gate = execution.properties
  judgement = anomalies_lib.judge(anomalies.uri if anomalies else None,
                                  statistics.uri if statistics else None,
                                  gate.get('trained_splits', ''), gate.get('batch_size', 0),
                                  gate.get('label', ''))
  if judgement.too_few_rows:
    return [f'stopped by DataValidationGate: {judgement.too_few_rows}']
  return ['stopped by DataValidationGate: the data broke the schema '
          '(validation.on_anomalies: fail)'] + [f'  {line}' for line in judgement.anomalies]


def describe_artifact(artifact: ArtifactRecord) -> Dict[str, Any]:
  """One artifact as plain data (what `artifacts --json` prints).

  Args:
    artifact: an artifact read from the store.

  Returns:
    Its id, type, URI, producing component and what its files hold, JSON-ready.
  """
  producer = artifact.producer
  return {
      'id': artifact.id,
      'type': artifact.type,
      'uri': artifact.uri,
      'produced_by': producer.component if producer else None,
      'execution_id': producer.id if producer else None,
      'output_key': artifact.output_key,
      'properties': {k: v for k, v in sorted(artifact.properties.items())
                     if k not in _BOILERPLATE},
  }


def execution_facts(artifact: ArtifactRecord) -> Dict[str, Any]:
  """What the producer was told: input data, schema file, code and training options."""
  if artifact.producer is None:
    return {}
  facts = {}
  for key in _SHOWN_EXECUTION_PROPERTIES:
    value = artifact.producer.properties.get(key)
    if isinstance(value, str) and value.startswith('{'):
      value = json.loads(value)  # a proto as JSON, e.g. the push destination
    if value is not None:
      facts[key] = value
  custom_config = run_store.custom_config(artifact.producer)
  if MODEL_INPUTS_KEY in custom_config:
    inputs = ModelInputs.from_dict(custom_config[MODEL_INPUTS_KEY])
    facts['features'] = ', '.join(
        f'{f.name} ({f.belongs_to}, {f.kind}, '
        f'{f.max_rows if f.max_rows is not None else "vocabulary"} x {f.embedding_dim})'
        for f in inputs.features)
    facts['label'] = inputs.label.expression
  for key in (CODE_FINGERPRINT_KEY, TRAINING_KEY):
    if key in custom_config:
      facts[key] = custom_config[key]
  return facts


def describe_lineage(node: LineageNode) -> Dict[str, Any]:
  """An artifact and, recursively, the inputs it was made from (`lineage --json`).

  Args:
    node: the artifact's node of the lineage graph.

  Returns:
    describe_artifact's fields, its execution's facts and `inputs`: {key: [nodes]}.
  """
  return {**describe_artifact(node.artifact),
          'execution': execution_facts(node.artifact),
          'inputs': {key: [describe_lineage(n) for n in nodes]
                     for key, nodes in node.inputs.items()}}


def _thresholds(evaluation_uri: str) -> List[str]:
  """The evaluation's thresholds in words, from the eval_config TFMA wrote beside it."""
  try:
    with open(os.path.join(evaluation_uri, 'eval_config.json')) as f:
      eval_config = json.load(f)['evalConfig']
  except (OSError, ValueError, KeyError):
    return []
  described = []
  for spec in eval_config.get('metricsSpecs', []):
    for metric in spec.get('metrics', []):
      thresholds = [t['threshold'] for t in metric.get('perSliceThresholds', [])]
      if 'threshold' in metric:
        thresholds.append(metric['threshold'])
      # The name the metric reports under (as the metrics tables show it), if given.
      name = json.loads(metric.get('config') or '{}').get('name') or metric['className']
      for threshold in thresholds:
        value = threshold.get('valueThreshold', {})
        if 'lowerBound' in value:
          described.append(f'{name} >= {value["lowerBound"]:g}')
        if 'upperBound' in value:
          described.append(f'{name} <= {value["upperBound"]:g}')
        change = threshold.get('changeThreshold', {})
        if 'absolute' in change:
          described.append(f'{name} change against the baseline >= {change["absolute"]:g}')
  return described


def describe_evaluation(store: RunStore, run: RunRecord,
                        max_slices: Optional[int] = None) -> Dict[str, Any]:
  """The run's evaluation (what `evaluation` prints).

  Args:
    store: the store the run is in.
    run: the run.
    max_slices: at most this many slices besides the overall one; None: all.

  Returns:
    Its metrics overall and per slice, the blessing decision with its reason, and the
    anomalies found, JSON-ready.
  """
  evaluation = store.output(run, 'Evaluator', 'evaluation')
  blessing = store.output(run, 'Evaluator', 'blessing')
  anomalies = store.output(run, 'ExampleValidator', 'anomalies')
  described: Dict[str, Any] = {'run_id': run.id}
  if evaluation is None:
    described['evaluation'] = None
  else:
    contents = artifact_contents.evaluation(evaluation.uri)
    slices = contents['slices']
    described['evaluation'] = {
        'artifact_id': evaluation.id, 'uri': evaluation.uri,
        'overall': slices[0]['metrics'] if slices else {},
        'slices': slices[1:] if max_slices is None else slices[1:1 + max_slices],
        'slice_count': max(len(slices) - 1, 0),
    }
    validation = contents['validation']
    blessed = blessing is not None and blessing.properties.get('blessed') == 1
    reused_from = evaluation.properties.get(REUSED_EVALUATION_KEY)
    if blessed and reused_from:
      reason = ('the candidate is its blessed baseline, on the same examples and '
                f'thresholds: not evaluated again (the metrics are those of {reused_from})')
    elif blessed:
      reason = 'passed every threshold'
    elif validation['failures']:
      reason = '; '.join(f'{f["metric"]} = {f["value"]:.4f} on {f["slice"]}: {f["message"]}'
                         for f in validation['failures'])
    else:
      reason = validation.get('error') or 'the Evaluator did not bless it'
    described['blessing'] = {
        'blessed': blessed, 'reason': reason,
        'thresholds': _thresholds(evaluation.uri),
        'candidate_model_id': blessing.properties.get('current_model_id') if blessing else None,
        'baseline_model_id': blessing.properties.get('baseline_model_id') if blessing else None,
    }
  described['anomalies'] = (anomalies_lib.read(anomalies.uri)
                            if anomalies is not None else None)
  return described
