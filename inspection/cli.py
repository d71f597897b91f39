"""Inspect pipeline runs in ML Metadata: runs, artifacts, lineage, evaluation, a report.

    python -m inspection runs                      # the default config's store
    python -m inspection artifacts --type Model
    python -m inspection lineage                   # of the latest pushed model
    python -m inspection evaluation --slices 5
    python -m inspection report                    # an HTML page for the latest run
    python -m inspection models                    # every trained model, which serves
    python -m inspection runs --config configs/movielens_100k.yaml --json
    python -m inspection runs --store path/to/metadata.sqlite

Readable tables by default, JSON with --json. A missing or empty store, another
pipeline's store or an unknown run is an error message and exit status 1.
"""

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from inspection import as_data
from inspection import run_store
from inspection import text
from inspection.run_store import ArtifactRecord, RunStore
from pipeline import config as config_lib
from pipeline.local import metadata_store

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(_PROJECT_DIR, 'configs', 'sample.yaml')
ARTIFACT_TYPES = ('Examples', 'ExampleStatistics', 'Schema', 'ExampleAnomalies',
                  'TransformGraph', 'TransformCache', 'Model', 'ModelRun', 'ModelEvaluation',
                  'ModelBlessing', 'PushedModel')


def _open_store(args: argparse.Namespace) -> RunStore:
  # The output root is known for a SQLite store (it lives there); a shared MySQL store
  # holds runs of many roots, so its RUNNING executions are shown as recorded.
  mysql = metadata_store.mysql_connection(args)
  if mysql is not None:
    return RunStore(mysql, args.pipeline)
  if args.store:
    return RunStore(run_store.existing_sqlite_store(args.store), args.pipeline,
                    output_root=os.path.dirname(os.path.abspath(args.store)))
  try:
    config = config_lib.load_config(args.config)
  except config_lib.ConfigError as e:
    raise run_store.StoreError(str(e)) from None
  return RunStore(run_store.existing_sqlite_store(config.paths.metadata_path),
                  args.pipeline or config.pipeline_name,
                  output_root=config.paths.output_root)


def _parser() -> argparse.ArgumentParser:
  common = argparse.ArgumentParser(add_help=False)
  where = common.add_argument_group('which store')
  where.add_argument('--config', default=DEFAULT_CONFIG,
                     help='run config whose store and pipeline to read (default: %(default)s)')
  where.add_argument('--store', help='path of a metadata.sqlite (instead of --config)')
  where.add_argument('--pipeline', help='pipeline name, when the store holds several')
  metadata_store.add_arguments(common)
  common.add_argument('--json', action='store_true', help='print JSON instead of tables')

  parser = argparse.ArgumentParser(prog='python -m inspection',
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
  commands.add_parser('models', parents=[common],
                      help='every trained model: spans seen, warm start, AUC, blessed, '
                      'pushed, which serves now')
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
                         'runs': [{**as_data.describe_run(r),
                                   'stopped': as_data.stop_reason(store, r)}
                                  for r in runs]}, indent=2)
    return text.runs_text(store, runs)
  if args.command == 'artifacts':
    run = store.run(args.run) if args.run else None
    artifacts = store.artifacts(run, args.type)
    if args.json:
      return json.dumps([as_data.describe_artifact(a) for a in artifacts], indent=2)
    return text.artifacts_text(artifacts)
  if args.command == 'lineage':
    artifact = (store.artifact(args.artifact_id) if args.artifact_id is not None
                else _latest_pushed_model(store))
    lineage = store.lineage(artifact)
    if args.json:
      return json.dumps(as_data.describe_lineage(lineage), indent=2)
    return text.lineage_text(lineage)
  if args.command == 'evaluation':
    described = as_data.describe_evaluation(store, store.run(args.run), args.slices)
    return json.dumps(described, indent=2) if args.json else text.evaluation_text(described)
  if args.command == 'models':
    from inspection import models  # pylint: disable=g-import-not-at-top
    found = models.history(store)
    if args.json:
      return json.dumps([m.as_dict() for m in found], indent=2)
    return text.models_text(found)
  if args.command == 'report':
    from inspection import report  # pylint: disable=g-import-not-at-top
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
