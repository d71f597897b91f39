"""Inspect pipeline runs in ML Metadata: runs, artifacts, lineage, evaluation, a report.

    python -m pipeline.inspect runs                      # the default config's store
    python -m pipeline.inspect artifacts --type Model
    python -m pipeline.inspect lineage                   # of the latest pushed model
    python -m pipeline.inspect evaluation --slices 5
    python -m pipeline.inspect report                    # an HTML page for the latest run
    python -m pipeline.inspect runs --config configs/movielens_100k.yaml --json
    python -m pipeline.inspect runs --store path/to/metadata.sqlite

Readable tables by default, JSON with --json. A missing or empty store, another
pipeline's store or an unknown run is an error message and exit status 1.
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from pipeline import artifact_contents
from pipeline import config as config_lib
from pipeline import run_store
from pipeline.run_store import ArtifactRecord, LineageNode, RunRecord, RunStore

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(_PROJECT_DIR, 'configs', 'sample.yaml')
ARTIFACT_TYPES = ('Examples', 'ExampleStatistics', 'Schema', 'ExampleAnomalies',
                  'TransformGraph', 'TransformCache', 'Model', 'ModelRun', 'ModelEvaluation',
                  'ModelBlessing', 'PushedModel')
# Properties every TFX artifact has, which say nothing about this one.
_BOILERPLATE = frozenset({'tfx_version', 'is_external', 'state', 'name',
                          'producer_component', 'stats_dashboard_link',
                          'sample_rate_by_split'})
_SHOWN_EXECUTION_PROPERTIES = ('input_base', 'input_fingerprint', 'schema_file',
                               'preprocessing_fn', 'run_fn', 'push_destination')


# Plain data (what --json prints, and what the report is made of). ----------------------

def _time(value) -> str:
  return value.strftime('%Y-%m-%d %H:%M:%S UTC')


def describe_run(run: RunRecord) -> Dict[str, Any]:
  return {
      'run_id': run.id,
      'started': _time(run.start),
      'ended': _time(run.end),
      'seconds': round(run.seconds, 1),
      'components': [{'component': e.component, 'execution_id': e.id, 'state': e.state,
                      'started': _time(e.start), 'ended': _time(e.end),
                      'seconds': round(e.seconds, 1)} for e in run.executions],
  }


def describe_artifact(artifact: ArtifactRecord) -> Dict[str, Any]:
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


def _execution_facts(artifact: ArtifactRecord) -> Dict[str, Any]:
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
  if config_lib.MODEL_INPUTS_KEY in custom_config:
    inputs = config_lib.ModelInputs.from_dict(custom_config[config_lib.MODEL_INPUTS_KEY])
    facts['features'] = ', '.join(
        f'{f.name} ({f.belongs_to}, {f.vocab_size} x {f.embedding_dim})'
        for f in inputs.features)
    facts['label'] = inputs.label.expression
  for key in ('module_fingerprint', 'training'):
    if key in custom_config:
      facts[key] = custom_config[key]
  return facts


def describe_lineage(node: LineageNode) -> Dict[str, Any]:
  return {**describe_artifact(node.artifact),
          'execution': _execution_facts(node.artifact),
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
      for threshold in thresholds:
        value = threshold.get('valueThreshold', {})
        if 'lowerBound' in value:
          described.append(f'{metric["className"]} >= {value["lowerBound"]:g}')
        if 'upperBound' in value:
          described.append(f'{metric["className"]} <= {value["upperBound"]:g}')
        change = threshold.get('changeThreshold', {})
        if 'absolute' in change:
          described.append(f'{metric["className"]} change against the baseline >= '
                           f'{change["absolute"]:g}')
  return described


def describe_evaluation(store: RunStore, run: RunRecord,
                        max_slices: Optional[int] = None) -> Dict[str, Any]:
  """The run's metrics, blessing decision with its reason, and the anomalies found."""
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
    if blessed:
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
  described['anomalies'] = (artifact_contents.anomalies(anomalies.uri)
                            if anomalies is not None else None)
  return described


# Text. ----------------------------------------------------------------------------------

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
  parts = [f'Pipeline {store.pipeline} in {store.where}: {len(runs)} run(s)']
  for run in runs:
    parts.append(f'\nRun {run.id}  started {_time(run.start)}  took {_duration(run.seconds)}')
    parts.append(text_table(
        ('component', 'execution', 'state', 'started', 'seconds'),
        [(e.component, e.id, e.state, e.start.strftime('%H:%M:%S'), f'{e.seconds:.1f}')
         for e in run.executions]))
  return '\n'.join(parts)


def _properties_text(properties: Dict[str, Any], limit: int = 70) -> str:
  text = ', '.join(f'{k}={v}' for k, v in properties.items())
  return text if len(text) <= limit else text[:limit - 3] + '...'


def artifacts_text(artifacts: List[ArtifactRecord]) -> str:
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
    for name, value in _execution_facts(artifact).items():
      lines.append(f'{indent}    {name}: {json.dumps(value) if isinstance(value, dict) else value}')
    for input_key, nodes in node.inputs.items():
      for upstream in nodes:
        walk(upstream, input_key, depth + 1)

  walk(node, '', 0)
  return '\n'.join(lines)


def evaluation_text(described: Dict[str, Any]) -> str:
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


# Command line. -----------------------------------------------------------------------

def _open_store(args: argparse.Namespace) -> RunStore:
  if args.mysql_host:
    connection = run_store.mysql_connection(
        args.mysql_host, args.mysql_port, args.mysql_database, args.mysql_user,
        os.environ.get('MLMD_MYSQL_PASSWORD', ''))
    return RunStore(connection, args.pipeline)
  if args.store:
    return RunStore(run_store.sqlite_connection(args.store), args.pipeline)
  try:
    config = config_lib.load_config(args.config)
  except config_lib.ConfigError as e:
    raise run_store.StoreError(str(e)) from None
  return RunStore(run_store.sqlite_connection(config.paths.metadata_path),
                  args.pipeline or config.pipeline_name)


def _parser() -> argparse.ArgumentParser:
  common = argparse.ArgumentParser(add_help=False)
  where = common.add_argument_group('which store')
  where.add_argument('--config', default=DEFAULT_CONFIG,
                     help='run config whose store and pipeline to read (default: %(default)s)')
  where.add_argument('--store', help='path of a metadata.sqlite (instead of --config)')
  where.add_argument('--pipeline', help='pipeline name, when the store holds several')
  where.add_argument('--mysql-host', help='a shared MySQL store (password from '
                     '$MLMD_MYSQL_PASSWORD)')
  where.add_argument('--mysql-port', type=int, default=3306)
  where.add_argument('--mysql-database', default='mlmd')
  where.add_argument('--mysql-user', default='root')
  common.add_argument('--json', action='store_true', help='print JSON instead of tables')

  parser = argparse.ArgumentParser(prog='python -m pipeline.inspect',
                                   description=__doc__.split('\n\n')[0])
  commands = parser.add_subparsers(dest='command', required=True)
  runs = commands.add_parser('runs', parents=[common], help='runs and their components')
  runs.add_argument('--run', help='only this run id')
  artifacts = commands.add_parser('artifacts', parents=[common], help='artifacts by type')
  artifacts.add_argument('--type', choices=ARTIFACT_TYPES, help='only artifacts of this type')
  artifacts.add_argument('--run', help='only what this run id output')
  lineage = commands.add_parser('lineage', parents=[common],
                                help='where an artifact came from (default: the latest '
                                'pushed model)')
  lineage.add_argument('artifact_id', nargs='?', type=int)
  evaluation = commands.add_parser('evaluation', parents=[common],
                                   help='metrics, blessing and anomalies of a run')
  evaluation.add_argument('--run', help='run id (default: the latest)')
  evaluation.add_argument('--slices', type=int, default=10,
                          help='how many slices to list, largest first (default: 10)')
  report = commands.add_parser('report', parents=[common], help='write an HTML run report')
  report.add_argument('--run', help='run id (default: the latest)')
  report.add_argument('--output', help='HTML file to write (default: report-<run>.html '
                      'beside the store)')
  return parser


def _latest_pushed_model(store: RunStore) -> ArtifactRecord:
  pushed = store.artifacts(type_name='PushedModel')
  if not pushed:
    raise run_store.StoreError(f'no PushedModel in {store.where}: the pipeline has not '
                               'reached its Pusher; pass an artifact id')
  return pushed[-1]


def run_command(args: argparse.Namespace) -> str:
  """What the command prints; raises StoreError."""
  store = _open_store(args)
  if args.command == 'runs':
    runs = [store.run(args.run)] if args.run else store.runs()
    if args.json:
      return json.dumps({'pipeline': store.pipeline, 'store': store.where,
                         'runs': [describe_run(r) for r in runs]}, indent=2)
    return runs_text(store, runs)
  if args.command == 'artifacts':
    run = store.run(args.run) if args.run else None
    artifacts = store.artifacts(run, args.type)
    if args.json:
      return json.dumps([describe_artifact(a) for a in artifacts], indent=2)
    return artifacts_text(artifacts)
  if args.command == 'lineage':
    artifact = (store.artifact(args.artifact_id) if args.artifact_id is not None
                else _latest_pushed_model(store))
    lineage = store.lineage(artifact)
    return json.dumps(describe_lineage(lineage), indent=2) if args.json else lineage_text(
        lineage)
  if args.command == 'evaluation':
    described = describe_evaluation(store, store.run(args.run), args.slices)
    return json.dumps(described, indent=2) if args.json else evaluation_text(described)
  if args.command == 'report':
    from pipeline import report  # pylint: disable=g-import-not-at-top
    run = store.run(args.run)
    output = args.output or report.default_path(store, run)
    report.write(store, run, output)
    return json.dumps({'report': output}) if args.json else f'wrote {output}'
  raise AssertionError(args.command)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  try:
    print(run_command(args))
  except run_store.StoreError as e:
    print(f'inspect: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
