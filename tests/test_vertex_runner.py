"""vertex_runner.py compiles the pipeline for Vertex AI offline; the spec says what will run.

The assertions read the compiled pipeline JSON (what Vertex AI Pipelines executes), not
the Python objects that produced it.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import PROJECT_DIR
from pipeline import vertex as vertex_lib
import vertex_runner

VERTEX_CONFIG = os.path.join(PROJECT_DIR, 'configs', 'vertex_movielens_1m.yaml')
IMAGE = 'us-docker.pkg.dev/my-gcp-project/ranker/pipeline:1.0'
TPU_IMAGE = 'us-docker.pkg.dev/my-gcp-project/ranker/pipeline-tpu:1.0'
BEAM_COMPONENTS = ('CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
                   'Transform', 'Evaluator')


def _variant(tmp_path, **overrides) -> str:
  """A config extending the shipped Vertex config with `overrides` on top."""
  path = tmp_path / 'variant.yaml'
  path.write_text(yaml.safe_dump({'extends': VERTEX_CONFIG, **overrides}))
  return str(path)


def _compile(tmp_path, config_path, *flags):
  output = tmp_path / 'pipeline.json'
  code = vertex_runner.main(['--config', config_path, '--output', str(output), *flags])
  return code, (json.loads(output.read_text()) if code == 0 else None)


def _tasks(spec):
  return spec['pipelineSpec']['root']['dag']['tasks']


def _parameter(spec, task, name):
  value = _tasks(spec)[task]['inputs']['parameters'][name]['runtimeValue']['constantValue']
  return value['stringValue']


def _executor(spec, task):
  return spec['pipelineSpec']['deploymentSpec']['executors'][f'{task}_executor']['container']


@pytest.fixture(scope='module')
def tpu_spec(tmp_path_factory):
  code, spec = _compile(tmp_path_factory.mktemp('tpu'), VERTEX_CONFIG)
  assert code == 0
  return spec


def test_every_component_runs_after_what_it_reads(tpu_spec):
  tasks = _tasks(tpu_spec)
  depends = {name: set(task.get('dependentTasks', [])) for name, task in tasks.items()}
  assert depends['CsvExampleGen'] == set() and depends['ImportSchemaGen'] == set()
  assert depends['StatisticsGen'] == {'CsvExampleGen'}
  assert depends['ExampleValidator'] == {'StatisticsGen', 'ImportSchemaGen'}
  assert depends['DataValidationGate'] == {'ExampleValidator', 'StatisticsGen'}
  # Transform waits for the gate, though it reads nothing of it.
  assert depends['Transform'] == {'CsvExampleGen', 'ImportSchemaGen', 'DataValidationGate'}
  assert depends['ColumnarExamplesGen'] == {'CsvExampleGen', 'Transform'}
  assert depends['Trainer'] == {'Transform', 'ColumnarExamplesGen'}
  assert {'Trainer', 'CsvExampleGen'} < depends['Evaluator']
  assert any(name.startswith('latest_blessed_model_resolver') for name in depends['Evaluator'])
  assert depends['Pusher'] == {'Trainer', 'Evaluator'}


def _worker_pools(spec):
  custom_config = json.loads(_parameter(spec, 'Trainer', 'custom_config'))
  return custom_config['ai_platform_training_args']['job_spec']['worker_pool_specs']


def test_the_trainer_is_a_tpu_v5e_custom_job_told_to_use_its_tpu(tpu_spec):
  assert _executor(tpu_spec, 'Trainer')['args'][1] == (
      'tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor')
  custom_config = json.loads(_parameter(tpu_spec, 'Trainer', 'custom_config'))
  assert custom_config['ai_platform_enable_vertex'] is True
  assert custom_config['ai_platform_vertex_region'] == 'us-central1'
  job = custom_config['ai_platform_training_args']
  assert job['project'] == 'my-gcp-project'
  # One v5e host: its accelerator, chips and topology follow from the machine type, and
  # TensorFlow is pointed at libtpu as its PJRT device, where the TPU image links it.
  assert job['job_spec']['worker_pool_specs'] == [{
      'machine_spec': {'machine_type': 'ct5lp-hightpu-4t',
                       'accelerator_type': 'TPU_V5_LITEPOD', 'accelerator_count': 4,
                       'tpu_topology': '2x2'},
      'replica_count': 1,
      'container_spec': {'image_uri': TPU_IMAGE, 'env': [
          {'name': 'NEXT_PLUGGABLE_DEVICE_USE_C_API', 'value': 'true'},
          {'name': 'TF_PLUGGABLE_DEVICE_LIBRARY_PATH', 'value': '/lib/libtpu.so'}]}}]
  assert custom_config['training']['tpu'] == 'local'
  assert custom_config['training']['batch_size'] == 1024
  assert _parameter(tpu_spec, 'Trainer', 'run_fn') == 'modules.training.trainer.run_fn'


def test_the_job_spec_is_one_vertex_ai_accepts(tpu_spec):
  """The custom job spec as the installed Vertex AI client types read it: a misspelled
  or misplaced field fails here rather than at submission."""
  from google.cloud.aiplatform_v1.types import CustomJobSpec  # pylint: disable=g-import-not-at-top
  job_spec = json.loads(_parameter(tpu_spec, 'Trainer', 'custom_config'))[
      'ai_platform_training_args']['job_spec']
  pool, = CustomJobSpec(job_spec).worker_pool_specs
  assert pool.machine_spec.accelerator_type.name == 'TPU_V5_LITEPOD'
  assert pool.machine_spec.tpu_topology == '2x2'
  assert {env.name: env.value for env in pool.container_spec.env} == {
      'NEXT_PLUGGABLE_DEVICE_USE_C_API': 'true',
      'TF_PLUGGABLE_DEVICE_LIBRARY_PATH': vertex_lib.LIBTPU_PATH}


def test_the_legacy_tpu_v3_stays_selectable(tmp_path):
  config = _variant(tmp_path, vertex={'trainer': {
      'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V3'}})
  code, spec = _compile(tmp_path, config)
  assert code == 0
  # Eight cores on one host; TensorFlow's default (stream executor) TPU runtime.
  assert _worker_pools(spec) == [{
      'machine_spec': {'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V3',
                       'accelerator_count': 8},
      'replica_count': 1,
      'container_spec': {'image_uri': TPU_IMAGE}}]
  assert json.loads(_parameter(spec, 'Trainer', 'custom_config'))['training']['tpu'] == (
      'local')


def test_a_multi_host_tpu_slice_is_refused_before_anything_runs(tmp_path, capsys):
  """TPUStrategy with `tpu: local` trains on the chips of its own host: a 4x4 v5e slice's
  other three hosts (and their input pipelines, one per host) would sit idle or hang."""
  config = _variant(tmp_path, vertex={'trainer': {'tpu_topology': '4x4'}})
  code, _ = _compile(tmp_path, config)
  assert code == 2
  assert capsys.readouterr().err == (
      f"vertex_runner.py: {config}: vertex.trainer.tpu_topology: 4x4 is 16 chips on 4 "
      "hosts; the Trainer drives one host's TPU, so choose a single-host slice (1x1 on "
      "ct5lp-hightpu-1t, 2x2 on ct5lp-hightpu-4t, 2x4 on ct5lp-hightpu-8t)\n")
  assert not (tmp_path / 'pipeline.json').exists()


def test_beam_components_run_on_dataflow_in_the_pipeline_image(tpu_spec):
  for component in BEAM_COMPONENTS:
    container = _executor(tpu_spec, component)
    assert container['image'] == IMAGE
    args = container['args']
    assert '--runner=DataflowRunner' in args, component
    assert {'--project=my-gcp-project', '--region=us-central1',
            '--temp_location=gs://my-bucket/dataflow-tmp', '--machine_type=n1-standard-4',
            '--max_num_workers=8', f'--sdk_container_image={IMAGE}'} <= set(args)


def test_artifacts_go_under_the_gcs_root_and_project_files_come_from_the_image(tpu_spec):
  assert tpu_spec['runtimeConfig']['gcsOutputDirectory'] == (
      'gs://my-bucket/ranker/movielens-1m/pipeline_root')
  assert tpu_spec['displayName'] == 'movielens-1m'
  assert _parameter(tpu_spec, 'ImportSchemaGen', 'schema_file') == (
      f'{vertex_lib.IMAGE_PROJECT_DIR}/configs/schema/movielens_ratings.pbtxt')
  assert _parameter(tpu_spec, 'CsvExampleGen', 'input_base') == 'gs://my-bucket/movielens-1m'
  push = json.loads(_parameter(tpu_spec, 'Pusher', 'push_destination'))
  assert push == {'filesystem': {'base_directory': 'gs://my-bucket/ranker/movielens-1m/serving'}}


def test_a_tuned_config_compiles_the_tuner_before_the_trainer(tmp_path):
  config = _variant(tmp_path, tuning={'max_trials': 4, 'learning_rate': [0.5, 2.0]})
  code, spec = _compile(tmp_path, config)
  assert code == 0
  tasks = _tasks(spec)
  assert set(tasks['Tuner']['dependentTasks']) == {'ColumnarExamplesGen', 'Transform'}
  assert 'Tuner' in tasks['Trainer']['dependentTasks']
  tuning = json.loads(_parameter(spec, 'Tuner', 'custom_config'))['tuning']
  assert tuning['max_trials'] == 4 and tuning['learning_rate'] == [0.5, 2.0]


def test_gpu_workers_without_dataflow_and_an_endpoint(tmp_path):
  config = _variant(tmp_path, vertex={
      'trainer': {'machine_type': 'n1-standard-8', 'accelerator_type': 'NVIDIA_TESLA_T4',
                  'accelerator_count': 2, 'replica_count': 3, 'image': None},
      'dataflow': None,
      'service_account': 'runner@my-gcp-project.iam.gserviceaccount.com',
      'endpoint': {'name': 'ranker', 'serving_image': 'serving:1', 'max_replicas': 2}},
      beam={'direct_running_mode': 'multi_processing', 'direct_num_workers': 0})
  code, spec = _compile(tmp_path, config, '--image', 'gcr.io/other/image:2')
  assert code == 0
  custom_config = json.loads(_parameter(spec, 'Trainer', 'custom_config'))
  job_spec = custom_config['ai_platform_training_args']['job_spec']
  pools = job_spec['worker_pool_specs']
  assert [pool['replica_count'] for pool in pools] == [1, 2]
  assert pools[1]['machine_spec'] == {'machine_type': 'n1-standard-8',
                                      'accelerator_type': 'NVIDIA_TESLA_T4',
                                      'accelerator_count': 2}
  # --image replaces the config's, and without its own the Trainer uses it too.
  assert pools[0]['container_spec'] == {'image_uri': 'gcr.io/other/image:2'}
  assert job_spec['service_account'] == 'runner@my-gcp-project.iam.gserviceaccount.com'
  assert custom_config['training']['tpu'] == ''
  # No Dataflow: Beam runs in each component's own container, as the config's beam says.
  args = _executor(spec, 'Transform')['args']
  assert '--direct_running_mode=multi_processing' in args
  assert not any(arg.startswith('--runner') for arg in args)
  assert _executor(spec, 'Pusher')['args'][1] == (
      'tfx.extensions.google_cloud_ai_platform.pusher.executor.Executor')
  pusher_config = json.loads(_parameter(spec, 'Pusher', 'custom_config'))
  assert pusher_config['ai_platform_vertex_container_image_uri'] == 'serving:1'
  assert pusher_config['ai_platform_serving_args'] == {
      'project_id': 'my-gcp-project', 'endpoint_name': 'ranker',
      'machine_type': 'n1-standard-2', 'min_replica_count': 1, 'max_replica_count': 2}


def test_flags_override_project_and_region(tmp_path):
  code, spec = _compile(tmp_path, VERTEX_CONFIG, '--project', 'prod-project',
                        '--region', 'europe-west4')
  assert code == 0
  custom_config = json.loads(_parameter(spec, 'Trainer', 'custom_config'))
  assert custom_config['ai_platform_training_args']['project'] == 'prod-project'
  assert custom_config['ai_platform_vertex_region'] == 'europe-west4'
  assert '--region=europe-west4' in _executor(spec, 'Transform')['args']


def test_set_overrides_any_key_typed_by_the_config(tmp_path, capsys):
  code, spec = _compile(tmp_path, VERTEX_CONFIG, '--set', 'training.batch_size=512',
                        '--set', 'vertex.trainer.tpu_topology=2x2')
  assert code == 0
  custom_config = json.loads(_parameter(spec, 'Trainer', 'custom_config'))
  assert custom_config['training']['batch_size'] == 512
  pool, = custom_config['ai_platform_training_args']['job_spec']['worker_pool_specs']
  assert pool['machine_spec']['tpu_topology'] == '2x2'
  code, _ = _compile(tmp_path, VERTEX_CONFIG, '--set', 'training.batch_size=big')
  assert code == 2
  assert capsys.readouterr().err == (f"vertex_runner.py: {VERTEX_CONFIG}: training.batch_size: "
                                     "must be an integer, got str 'big'\n")


@pytest.mark.parametrize('overrides, message', [
    ({'vertex': {'region': None}}, 'vertex.region: is required'),
    ({'vertex': {'trainer': {'accelerator_type': 'TPU_V9'}}},
     "vertex.trainer.accelerator_type: must be one of TPU_V2, TPU_V3, TPU_V5_LITEPOD"),
    ({'vertex': {'image': None, 'trainer': {'image': None}}},
     'vertex.image: is required (the pipeline image built from the Dockerfile)'),
    ({'vertex': {'trainer': {'image': None}}},
     'vertex.trainer.image: is required on a TPU: the image built with --build-arg '
     'ACCELERATOR=tpu'),
    ({'training': {'batch_size': 1022}},
     "training.batch_size: must split evenly over the TPU's 4 cores"),
    ({'paths': {'output_root': '/tmp/ranker'}}, 'paths.output_root: must be a gs:// URI'),
    ({'paths': {'input': '/srv/ratings/*.csv'}},
     'paths.input: /srv/ratings/*.csv is neither a gs:// URI nor inside the project'),
    ({'vertex': None}, 'vertex: is required to run on Vertex AI'),
])
def test_a_config_that_cannot_run_on_vertex_is_refused_by_key(tmp_path, capsys, overrides,
                                                               message):
  config = _variant(tmp_path, **overrides)
  code, _ = _compile(tmp_path, config)
  assert code == 2
  assert f'vertex_runner.py: {config}: {message}' in capsys.readouterr().err
  assert not (tmp_path / 'pipeline.json').exists()


def test_submitting_without_credentials_fails_cleanly_after_compiling(tmp_path):
  output = tmp_path / 'pipeline.json'
  result = subprocess.run(
      [sys.executable, os.path.join(PROJECT_DIR, 'vertex_runner.py'), '--config',
       VERTEX_CONFIG, '--output', str(output), '--submit'],
      capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, 'GOOGLE_APPLICATION_CREDENTIALS': str(tmp_path / 'none.json')})
  assert result.returncode == 1, result.stderr
  assert 'submitting to Vertex AI failed (DefaultCredentialsError)' in result.stderr
  assert 'Traceback' not in result.stderr
  assert json.loads(output.read_text())['displayName'] == 'movielens-1m'


def test_the_dockerfile_builds_on_the_pinned_versions():
  with open(os.path.join(PROJECT_DIR, 'Dockerfile')) as f:
    dockerfile = f.read()
  with open(os.path.join(PROJECT_DIR, 'requirements.txt')) as f:
    pins = dict(re.findall(r'^([\w-]+)(?:\[[\w,]+\])?==(\S+)$', f.read(), re.MULTILINE))
  assert f'FROM gcr.io/tfx-oss-public/tfx:{pins["tfx"]}\n' in dockerfile
  assert f'tensorflow-tpu=={pins["tensorflow"]} ' in dockerfile
  # Where Vertex AI looks for libtpu, and where the v5e trainer's PJRT setting points.
  assert f'        {vertex_lib.LIBTPU_PATH} && \\\n' in dockerfile
  assert f'WORKDIR {vertex_lib.IMAGE_PROJECT_DIR}\n' in dockerfile
  assert 'ENV TF_USE_LEGACY_KERAS=1\n' in dockerfile


def test_the_image_holds_every_package_the_components_import():
  """Executors import the pipeline, the component code and their contract by name."""
  with open(os.path.join(PROJECT_DIR, 'Dockerfile')) as f:
    dockerfile = f.read()
  for package in ('contract', 'modules', 'pipeline'):
    assert f'COPY {package}/ {package}/\n' in dockerfile


def test_tables_that_cannot_fit_one_v5e_chip_are_refused_naming_the_key(tmp_path, capsys):
  """On v5e (no embedding hardware) TFRS keeps every table and its slots on each chip:
  200M users x 16 floats and Adagrad's accumulator are 25.6 GB, more than one chip's
  16 GiB holds; a v3-8 shards them over its eight cores, where they fit."""
  big = {'features': {'userId': {'vocab_size': 200_000_000}}}
  config = _variant(tmp_path, **big)
  code, _ = _compile(tmp_path, config)
  assert code == 2
  assert capsys.readouterr().err == (
      f'vertex_runner.py: {config}: features: the embedding tables and their adagrad slots '
      'need 25.6 GB; on ct5lp-hightpu-4t the tables are replicated whole on each of its 4 '
      'chip(s) (TPUEmbeddingV0), which leaves them 13.7 GB: lower vocab_size or '
      'embedding_dim, or choose TPUs whose embedding hardware shards the tables '
      '(vertex.trainer.machine_type: cloud-tpu, accelerator_type: TPU_V3) (largest: '
      'features.userId)\n')
  sharded = _variant(tmp_path, vertex={'trainer': {'machine_type': 'cloud-tpu',
                                                   'accelerator_type': 'TPU_V3'}}, **big)
  assert _compile(tmp_path, sharded)[0] == 0


@pytest.mark.parametrize('machine, api, placement, table_gb', [
    ({'machine_type': 'ct5lp-hightpu-4t'}, 'TPUEmbeddingV0', 'replicated', 13.7),
    ({'machine_type': 'ct5lp-hightpu-8t'}, 'TPUEmbeddingV0', 'replicated', 13.7),
    ({'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V2'}, 'TPUEmbedding', 'sharded',
     55.0),
    ({'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V3'}, 'TPUEmbedding', 'sharded',
     110.0),
])
def test_each_tpu_machine_knows_its_embedding_api_and_table_memory(machine, api, placement,
                                                                    table_gb):
  from pipeline.config import vertex as vertex_config  # pylint: disable=g-import-not-at-top
  tpu = vertex_config.VertexTrainerConfig(**machine).tpu
  assert tpu.embedding_api == api
  assert tpu.tables_sharded == (placement == 'sharded')
  assert round(tpu.table_memory / 1e9, 1) == table_gb


def test_the_shipped_large_scale_tables_fit_a_v5e_chip(tmp_path):
  """configs/large_scale.yaml's 25M + 5M rows of 16 floats and Adagrad's slots: 3.8 GB."""
  with open(os.path.join(PROJECT_DIR, 'configs', 'large_scale.yaml')) as f:
    large = yaml.safe_load(f)
  config = _variant(tmp_path, features=large['features'])
  assert _compile(tmp_path, config)[0] == 0


def test_a_schedule_request_starts_the_compiled_spec_one_run_at_a_time(tpu_spec, tmp_path):
  from google.cloud.aiplatform_v1.types import schedule as schedule_types  # pylint: disable=g-import-not-at-top
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  spec_path = tmp_path / 'pipeline.json'
  spec_path.write_text(json.dumps(tpu_spec))
  config = config_lib.load_config(VERTEX_CONFIG)
  request = vertex_runner.schedule_request(config, str(spec_path), ' 0 3 * * * ')
  assert request.cron == '0 3 * * *' and request.max_concurrent_run_count == 1
  create = request.create_pipeline_job_request
  assert create.parent == 'projects/my-gcp-project/locations/us-central1'
  assert create.pipeline_job.runtime_config.gcs_output_directory == (
      'gs://my-bucket/ranker/movielens-1m/pipeline_root')
  # The spec Vertex AI would run is the compiled one, unchanged.
  sent = schedule_types.Schedule.to_dict(request)['create_pipeline_job_request']
  assert sent['pipeline_job']['pipeline_spec'] == json.loads(json.dumps(
      tpu_spec['pipelineSpec']))
  assert vertex_runner.schedule_request(
      config, str(spec_path), 'TZ=Europe/Paris 30 2 * * 1').cron == (
          'TZ=Europe/Paris 30 2 * * 1')


@pytest.mark.parametrize('cron', ['daily', '0 3 * *', '* * * * * *'])
def test_a_bad_schedule_is_one_line_before_compiling(tmp_path, capsys, cron):
  output = tmp_path / 'pipeline.json'
  code = vertex_runner.main(['--config', VERTEX_CONFIG, '--output', str(output),
                             '--schedule', cron])
  assert code == 2
  assert capsys.readouterr().err.strip() == (
      f'vertex_runner.py: --schedule: {cron!r} is not a cron expression (five fields, '
      'e.g. "0 3 * * *" for 03:00 UTC daily, optionally led by TZ=<zone>)')
  assert not output.exists()


def test_scheduling_without_credentials_fails_cleanly_after_compiling(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(PROJECT_DIR, 'vertex_runner.py'), '--config',
       VERTEX_CONFIG, '--output', str(tmp_path / 'pipeline.json'), '--schedule',
       '0 3 * * *'],
      capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, 'GOOGLE_APPLICATION_CREDENTIALS': str(tmp_path / 'none.json')})
  assert result.returncode == 1, result.stderr
  assert 'scheduling movielens-1m at 0 3 * * *' in result.stdout
  assert 'submitting to Vertex AI failed (DefaultCredentialsError)' in result.stderr
  assert 'Traceback' not in result.stderr


def test_the_span_is_a_pipeline_parameter_and_the_window_a_latest_artifact_query(tmp_path):
  """The window's history resolver is the latest-artifact query Vertex AI compiles (a
  RollingRange resolver would not compile), and the span ExampleGen reads is a pipeline
  parameter: the latest by default, `--span` sets another default."""
  from pipeline import graph  # pylint: disable=g-import-not-at-top
  from pipeline.vertex_emulator import spec as spec_lib  # pylint: disable=g-import-not-at-top
  windowed = _variant(tmp_path, paths={
      'input': 'gs://my-bucket/ratings/span-{SPAN:3}/ratings.csv',
      'output_root': 'gs://my-bucket/ranker/movielens-1m'}, training={'window_spans': 3})
  code, spec = _compile(tmp_path, windowed)
  assert code == 0
  tasks = _tasks(spec)
  parameter = tasks['CsvExampleGen']['inputs']['parameters']['range_config']
  assert parameter == {'componentInputParameter': graph.SPAN_PARAMETER}
  values = spec_lib.pipeline_parameters(spec)
  assert json.loads(values['range_config']['stringValue']) == {
      'rollingRange': {'numSpans': 1}}
  resolver = spec['pipelineSpec']['deploymentSpec']['executors'][
      'latest_span_history_resolver_executor']['resolver']
  assert resolver['outputArtifactQueries']['history']['filter'] == (
      'schema_title="tfx.File" AND state=LIVE')
  window_inputs = tasks['SpanWindow']['inputs']['artifacts']
  assert window_inputs['previous_history']['taskOutputArtifact']['producerTask'] == (
      'latest_span_history_resolver')
  assert tasks['Transform']['inputs']['artifacts']['examples']['taskOutputArtifact'][
      'producerTask'] == 'SpanWindow'
  # The emulator hands ExampleGen the parameter's value.
  job = spec_lib.load(str(tmp_path / 'pipeline.json'))
  example_gen, = [t for t in job.tasks if t.name == 'CsvExampleGen']
  assert example_gen.parameters()['range_config'] == values['range_config']

  code, spec = _compile(tmp_path, windowed, '--span', '42')
  assert code == 0
  assert json.loads(spec_lib.pipeline_parameters(spec)['range_config']['stringValue']) == {
      'staticRange': {'startSpanNumber': 42, 'endSpanNumber': 42}}
