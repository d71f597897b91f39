"""What a config's `vertex` section means to TFX's Google Cloud components.

The pipeline graph is the one `local_runner.py` runs; on Vertex AI Pipelines the Trainer
becomes a Vertex custom job on the configured machines, the Beam components may run on
Dataflow, and the Pusher may deploy to a Vertex AI Endpoint. Everything here is plain
data: nothing needs credentials or network until the pipeline is submitted.
"""

import os
from typing import Any, Dict, List

from tfx.v1.extensions import google_cloud_ai_platform as vertex_ext

from contract.options import TrainingOptions, known_table_values, table_bytes
from pipeline import config as config_lib
from pipeline import paths
from pipeline.config.vertex import VertexConfig

# The Dockerfile's WORKDIR: where the project, its configs and schema live in the image.
IMAGE_PROJECT_DIR = '/pipeline'
_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_image(path: str) -> str:
  """A path inside this project, as the pipeline image sees it; URIs are unchanged."""
  if paths.is_uri(path):
    return path
  relative = os.path.relpath(os.path.abspath(path), _PROJECT_DIR)
  if relative.startswith('..'):
    raise ValueError(f'{path} is outside the project, so the image does not have it')
  return f'{IMAGE_PROJECT_DIR}/{relative}'


def check_runs_on_vertex(config: config_lib.RunConfig) -> VertexConfig:
  """The config's Vertex settings, once everything a Vertex run needs is there.

  Raises ConfigError naming the key: containers on Vertex see only Cloud Storage and
  the files baked into the image, so local paths outside the project cannot work.
  """
  def error(key: str, problem: str) -> config_lib.ConfigError:
    return config_lib.ConfigError(config.source, key, problem)

  vertex = config.vertex
  if vertex is None:
    raise error('vertex', 'is required to run on Vertex AI (project, region, trainer '
                'machines); see configs/vertex_movielens_1m.yaml')
  if not vertex.image:
    raise error('vertex.image', 'is required (the pipeline image built from the '
                'Dockerfile): set it in the config or pass --image')
  if not config.paths.output_root.startswith('gs://'):
    raise error('paths.output_root', 'must be a gs:// URI on Vertex AI (the pipeline '
                f'root of every artifact), got {config.paths.output_root!r}')
  if vertex.endpoint is None and not config.paths.serving_dir.startswith('gs://'):
    raise error('paths.serving_dir', 'must be a gs:// URI on Vertex AI (or configure '
                f'vertex.endpoint), got {config.paths.serving_dir!r}')
  tpu = vertex.trainer.tpu
  if tpu and not vertex.trainer.image:
    raise error('vertex.trainer.image', 'is required on a TPU: the image built with '
                '--build-arg ACCELERATOR=tpu (tensorflow-tpu and libtpu); the pipeline '
                'image has no TPU runtime')
  if tpu:
    _check_tables_fit(config, vertex.trainer.machine_type, tpu, error)
  if tpu and config.training.batch_size % tpu.replicas:
    raise error('training.batch_size', f'must split evenly over the TPU\'s {tpu.replicas} '
                f'cores (every replica takes the same share), got '
                f'{config.training.batch_size}')
  for key, path in (('paths.input', config.paths.input),
                    ('paths.schema', config.paths.schema_file)):
    if path is None:
      continue
    try:
      in_image(path)
    except ValueError:
      raise error(key, f'{path} is neither a gs:// URI nor inside the project (which '
                  'the image holds)') from None
  return vertex


def _check_tables_fit(config: config_lib.RunConfig, machine: str, tpu, error) -> None:
  """The tables the config sizes, and their optimizer slots, fit the TPU's memory as
  TFRS places them there (on v5e every chip holds them all)."""
  needed = table_bytes(config.model_inputs, config.training.optimizer,
                       bool(config.training.losses.retrieval))
  if needed <= tpu.table_memory:
    return
  tables = known_table_values(config.model_inputs)
  largest = max(tables, key=tables.get)
  advice = ('lower vocab_size or embedding_dim' if tpu.tables_sharded else
            'lower vocab_size or embedding_dim, or choose TPUs whose embedding hardware '
            'shards the tables (vertex.trainer.machine_type: cloud-tpu, '
            'accelerator_type: TPU_V3)')
  raise error('features', f'the embedding tables and their {config.training.optimizer} '
              f'slots need {needed / 1e9:.1f} GB; on {machine} the tables are '
              f'{tpu.placement}, which leaves them {tpu.table_memory / 1e9:.1f} GB: '
              f'{advice} (largest: features.{largest})')


def for_image(config: config_lib.RunConfig) -> config_lib.RunConfig:
  """The config with its project-relative paths rewritten to the image's."""
  schema_file = config.paths.schema_file
  image_paths = config.paths.model_copy(update={
      'input': in_image(config.paths.input),
      'schema_file': in_image(schema_file) if schema_file else None})
  return config.model_copy(update={'paths': image_paths})


def training(config: config_lib.RunConfig) -> TrainingOptions:
  """Training options for the custom job: whether there is a TPU follows from its
  machines. On Vertex the TPU is attached to the training VM itself, hence 'local'."""
  tpu = 'local' if config.vertex.trainer.uses_tpu else ''
  return config.training.model_copy(update={'tpu': tpu})


# TensorFlow on TPU v5e runs on the PJRT runtime: TensorFlow loads libtpu as a pluggable
# device from this path (where Vertex AI expects libtpu.so; the Dockerfile's TPU variant
# links it there), and the C API flag selects PJRT (Cloud TPU's "TensorFlow PJRT support").
LIBTPU_PATH = '/lib/libtpu.so'
PJRT_ENV = {'NEXT_PLUGGABLE_DEVICE_USE_C_API': 'true',
            'TF_PLUGGABLE_DEVICE_LIBRARY_PATH': LIBTPU_PATH}


def machine_spec(vertex: VertexConfig) -> Dict[str, Any]:
  """The Trainer's Vertex AI MachineSpec; a TPU's accelerator follows from its machine."""
  trainer = vertex.trainer
  spec: Dict[str, Any] = {'machine_type': trainer.machine_type}
  tpu = trainer.tpu
  if tpu:
    spec.update(accelerator_type=tpu.accelerator_type,
                accelerator_count=tpu.accelerator_count)
    if tpu.topology:
      spec['tpu_topology'] = tpu.topology
  elif trainer.accelerator_type:
    spec.update(accelerator_type=trainer.accelerator_type,
                accelerator_count=trainer.accelerator_count or 1)
  return spec


def trainer_custom_config(vertex: VertexConfig) -> Dict[str, Any]:
  """custom_config entries that make the Trainer a Vertex AI custom job."""
  trainer = vertex.trainer
  container: Dict[str, Any] = {'image_uri': trainer.image or vertex.image}
  if trainer.tpu and trainer.tpu.needs_pjrt:
    container['env'] = [{'name': name, 'value': value} for name, value in PJRT_ENV.items()]
  chief = {'machine_spec': machine_spec(vertex), 'replica_count': 1,
           'container_spec': container}
  # Vertex sets TF_CONFIG from the pools: the first is the chief, the second its workers.
  pools = [chief]
  if trainer.replica_count > 1:
    pools.append({**chief, 'replica_count': trainer.replica_count - 1})
  job_spec: Dict[str, Any] = {'worker_pool_specs': pools}
  if vertex.service_account:
    job_spec['service_account'] = vertex.service_account
  return {
      vertex_ext.ENABLE_VERTEX_KEY: True,
      vertex_ext.VERTEX_REGION_KEY: vertex.region,
      vertex_ext.TRAINING_ARGS_KEY: {'project': vertex.project, 'job_spec': job_spec},
  }


def pusher_custom_config(vertex: VertexConfig) -> Dict[str, Any]:
  """custom_config of the Pusher that deploys to the configured Vertex AI Endpoint."""
  endpoint = vertex.endpoint
  return {
      vertex_ext.ENABLE_VERTEX_KEY: True,
      vertex_ext.VERTEX_REGION_KEY: vertex.region,
      vertex_ext.VERTEX_CONTAINER_IMAGE_URI_KEY: endpoint.serving_image,
      vertex_ext.SERVING_ARGS_KEY: {
          'project_id': vertex.project,
          'endpoint_name': endpoint.name,
          'machine_type': endpoint.machine_type,
          'min_replica_count': endpoint.min_replicas,
          'max_replica_count': endpoint.max_replicas,
      },
  }


def beam_pipeline_args(config: config_lib.RunConfig) -> List[str]:
  """Dataflow when configured; otherwise Beam's DirectRunner inside each component's pod."""
  vertex = config.vertex
  dataflow = vertex.dataflow
  if dataflow is None:
    return config.beam.pipeline_args(setup_file=in_image(os.path.join(_PROJECT_DIR, 'setup.py')))
  args = [
      '--runner=DataflowRunner',
      f'--project={vertex.project}',
      f'--region={dataflow.region or vertex.region}',
      f'--temp_location={dataflow.temp_location}',
      f'--machine_type={dataflow.machine_type}',
      f'--max_num_workers={dataflow.max_workers}',
      # Workers import the preprocessing module, so they run the pipeline image too.
      f'--sdk_container_image={vertex.image}',
      '--experiments=use_runner_v2',
  ]
  if dataflow.disk_size_gb:
    args.append(f'--disk_size_gb={dataflow.disk_size_gb}')
  if vertex.service_account:
    args.append(f'--service_account_email={vertex.service_account}')
  return args + list(config.beam.extra_args)
