"""Compiles the pipeline for Vertex AI Pipelines and, with --submit, starts a run there.

    python vertex_runner.py --config configs/vertex_movielens_1m.yaml \
        --image us-docker.pkg.dev/PROJECT/ranker/pipeline:1 --output ranker_pipeline.json
    python vertex_runner.py --config configs/vertex_movielens_1m.yaml --image ... --submit
    python vertex_runner.py --config configs/vertex_sample.yaml --emulate /tmp/vertex-sample
    python vertex_runner.py --config configs/vertex_movielens_1m.yaml --schedule "0 3 * * *"
    python vertex_runner.py --config configs/vertex_movielens_1m.yaml --span 42 --submit

The graph is the one `local_runner.py` runs. The config's `vertex` section says where:
project and region, the Trainer's machines (TPUs, GPUs or CPUs), Dataflow for the Beam
components, and an optional Vertex AI Endpoint. Compiling needs no credentials and no
network; submitting uses Application Default Credentials (`gcloud auth application-default
login`). Vertex AI brings its own ML Metadata store, so none is configured here.

--emulate DIR runs the compiled spec on this machine as Vertex AI would (the tasks'
container commands in a folder laid out as the image, gs:// under DIR, the Trainer's custom
job as local processes); see pipeline/vertex_emulator.

With {SPAN} or a date in paths.input, the span ExampleGen reads is the pipeline parameter
`range_config` (a RangeConfig as JSON): the latest span unless `--span` or paths.span
sets another default, and any run may be started with its own value.
"""

import argparse
import json
import os
import re
import sys

from pipeline import process_env

process_env.configure()

from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
from pipeline import paths  # pylint: disable=g-import-not-at-top
from pipeline.local import preflight  # pylint: disable=g-import-not-at-top

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))


def with_overrides(config: config_lib.RunConfig, args: argparse.Namespace
                   ) -> config_lib.RunConfig:
  """The config with the Vertex settings given on the command line in place."""
  if config.vertex is None:
    return config
  overrides = {name: getattr(args, name)
               for name in ('project', 'region', 'image', 'service_account')
               if getattr(args, name)}
  vertex = config.vertex.model_copy(update=overrides)
  return config.model_copy(update={'vertex': vertex})


def compile_pipeline(config: config_lib.RunConfig, output_path: str,
                     enable_cache: bool = True) -> None:
  """Writes the Vertex pipeline spec; raises ConfigError if the config cannot run there."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import graph  # pylint: disable=g-import-not-at-top
  # create_pipeline checks the config for Vertex (the one place that does).
  pipeline = graph.create_pipeline(config, enable_cache=enable_cache, on_vertex=True)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=config.vertex.image),
      output_filename=output_path)
  runner.run(pipeline, parameter_values=graph.vertex_parameter_values(config))


def submit(config: config_lib.RunConfig, spec_path: str, enable_cache: bool) -> str:
  """Starts a run of the compiled spec on Vertex AI Pipelines; returns its resource name."""
  from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  vertex = config.vertex
  aiplatform.init(project=vertex.project, location=vertex.region)
  job = aiplatform.PipelineJob(
      display_name=config.pipeline_name,
      template_path=spec_path,
      pipeline_root=config.paths.pipeline_root,
      enable_caching=enable_cache,
      project=vertex.project,
      location=vertex.region)
  job.submit(service_account=vertex.service_account)
  return job.resource_name


# Five cron fields, optionally led by a time zone ("TZ=Europe/Paris 0 3 * * *").
_CRON = re.compile(r'^((CRON_)?TZ=\S+\s+)?(\S+\s+){4}\S+$')


def check_cron(cron: str) -> None:
  """Raises ValueError unless `cron` is an expression Vertex AI schedules take."""
  if not _CRON.match(cron.strip()):
    raise ValueError(f'--schedule: {cron!r} is not a cron expression (five fields, e.g. '
                     '"0 3 * * *" for 03:00 UTC daily, optionally led by TZ=<zone>)')


def schedule_request(config: config_lib.RunConfig, spec_path: str, cron: str):
  """The Vertex AI Schedule that starts the compiled pipeline at each `cron` time, one
  run at a time (a retrain still going when the next is due makes that one wait). Built
  offline; `schedule` sends it."""
  from google.cloud.aiplatform_v1.types import pipeline_job  # pylint: disable=g-import-not-at-top
  from google.cloud.aiplatform_v1.types import schedule  # pylint: disable=g-import-not-at-top
  check_cron(cron)
  with open(spec_path) as f:
    spec = json.load(f)
  vertex = config.vertex
  job = pipeline_job.PipelineJob(
      display_name=config.pipeline_name, pipeline_spec=spec['pipelineSpec'],
      labels=spec.get('labels', {}),
      # The spec's parameter values (the span: the latest) go with every scheduled run.
      runtime_config=pipeline_job.PipelineJob.RuntimeConfig(
          gcs_output_directory=spec['runtimeConfig']['gcsOutputDirectory'],
          parameter_values=spec['runtimeConfig'].get('parameterValues', {}),
          parameters=spec['runtimeConfig'].get('parameters', {})),
      service_account=vertex.service_account or '')
  return schedule.Schedule(
      display_name=f'{config.pipeline_name} at {cron.strip()}', cron=cron.strip(),
      max_concurrent_run_count=1,
      create_pipeline_job_request={
          'parent': f'projects/{vertex.project}/locations/{vertex.region}',
          'pipeline_job': job})


def create_schedule(config: config_lib.RunConfig, request) -> str:
  """Creates the schedule on Vertex AI; returns its resource name."""
  from google.cloud import aiplatform_v1  # pylint: disable=g-import-not-at-top
  region = config.vertex.region
  client = aiplatform_v1.ScheduleServiceClient(
      client_options={'api_endpoint': f'{region}-aiplatform.googleapis.com'})
  created = client.create_schedule(
      parent=request.create_pipeline_job_request.parent, schedule=request)
  return created.name


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', required=True, help='run config (YAML) with a vertex section')
  config_lib.add_override_argument(parser)
  parser.add_argument('--image', help='pipeline image (overrides vertex.image)')
  parser.add_argument('--project', help='GCP project (overrides vertex.project)')
  parser.add_argument('--region', help='Vertex AI region (overrides vertex.region)')
  parser.add_argument('--service-account', dest='service_account',
                      help='service account the run uses (overrides vertex.service_account)')
  parser.add_argument('--output', help='pipeline spec to write (default: pipeline.json)')
  parser.add_argument('--submit', action='store_true',
                      help='start a run on Vertex AI Pipelines after compiling')
  parser.add_argument('--schedule', metavar='CRON',
                      help='create a Vertex AI schedule that runs the compiled pipeline at '
                      'these times, e.g. "0 3 * * *" (daily, 03:00 UTC)')
  parser.add_argument('--emulate', metavar='DIR',
                      help='run the compiled spec on this machine as Vertex AI would, '
                      'gs:// standing for DIR/gcs (the spec is written to DIR/pipeline.json '
                      'unless --output is given)')
  parser.add_argument('--span', type=int, metavar='N',
                      help='with {SPAN} or a date in paths.input: the span a run reads by '
                      'default (the pipeline parameter range_config; without it, the '
                      'latest); the same as --set paths.span=N')
  parser.add_argument('--no-cache', action='store_true',
                      help='rerun every component even when its inputs are unchanged')
  args = parser.parse_args(argv)
  if sum(map(bool, (args.submit, args.emulate, args.schedule))) > 1:
    parser.error('--submit, --schedule and --emulate exclude each other')
  if args.output is None:
    args.output = (os.path.join(args.emulate, 'pipeline.json') if args.emulate
                   else 'pipeline.json')
  output = os.path.abspath(args.output)
  os.makedirs(os.path.dirname(output), exist_ok=True)
  try:
    if args.schedule:
      check_cron(args.schedule)
    overrides = args.overrides + ([f'paths.span={args.span}'] if args.span is not None
                                  else [])
    config = with_overrides(config_lib.load_config(args.config, overrides), args)
    if config.paths.schema_file and not paths.is_uri(config.paths.schema_file):
      preflight.check_schema(config)  # in the project, so readable here
    compile_pipeline(config, output, enable_cache=not args.no_cache)
  except ValueError as e:
    print(f'vertex_runner.py: {e}', file=sys.stderr)
    return 2
  print(f'wrote {args.output}')
  if args.emulate:
    from pipeline.vertex_emulator import run as emulator  # pylint: disable=g-import-not-at-top
    return emulator.emulate(output, args.emulate, PROJECT_DIR,
                            enable_cache=not args.no_cache)
  if not (args.submit or args.schedule):
    return 0
  # Imported here: compiling must work without the Google auth stack being usable.
  from google.api_core import exceptions as api_exceptions  # pylint: disable=g-import-not-at-top
  from google.auth import exceptions as auth_exceptions  # pylint: disable=g-import-not-at-top
  try:
    if args.schedule:
      request = schedule_request(config, output, args.schedule)
      print(f'scheduling {request.display_name}: {request.create_pipeline_job_request.parent}')
      name = create_schedule(config, request)
    else:
      name = submit(config, output, enable_cache=not args.no_cache)
  except (auth_exceptions.GoogleAuthError, api_exceptions.GoogleAPIError) as e:
    print(f'vertex_runner.py: submitting to Vertex AI failed ({type(e).__name__}): {e}\n'
          f'  The compiled spec is {args.output}; check `gcloud auth application-default '
          'login`, the project and the region.', file=sys.stderr)
    return 1
  print(f'{"scheduled" if args.schedule else "submitted"} {name}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
