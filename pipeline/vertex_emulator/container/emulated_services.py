"""The Vertex AI services TFX's Google Cloud components call, answered on this machine.

Custom jobs: the job request TFX's Vertex trainer sends (`JobServiceClient.create_custom_job`) is written to the jobs folder and
its worker pools run as local processes, chief and workers with CLUSTER_SPEC and TF_CONFIG
as Vertex AI sets them, on 127.0.0.1 ports free at the time.

A TPU pool trains on CPU: its PJRT settings are dropped and the project's Trainer is told
there is no TPU (`training.tpu` in its custom_config). The emulator prints both.

Endpoints: the deployment TFX's Vertex pusher asks for is written to the endpoints folder
and not made (the model is still copied to the PushedModel artifact, as TFX does first).
"""

import json
import os
import signal
import socket
import subprocess
import time
from typing import Any, Dict, List

SETTINGS_VARIABLE = 'VERTEX_EMULATOR_SERVICES'
# Vertex AI's TF_CONFIG task types of the first four worker pools.
_POOL_TASK_TYPES = ('chief', 'worker', 'ps', 'evaluator')
_PJRT_VARIABLES = ('NEXT_PLUGGABLE_DEVICE_USE_C_API', 'TF_PLUGGABLE_DEVICE_LIBRARY_PATH')


def install() -> None:
  """Puts the local services where TFX's trainer and pusher look them up at call time."""
  from google.cloud.aiplatform import gapic  # pylint: disable=g-import-not-at-top
  from tfx.extensions.google_cloud_ai_platform import runner  # pylint: disable=g-import-not-at-top
  gapic.JobServiceClient = LocalJobService
  runner.deploy_model_for_aip_prediction = record_deployment


def record_deployment(serving_container_image_uri: str, model_version_name: str,
                      ai_platform_serving_args: Dict[str, Any], endpoint_region: str,
                      labels: Dict[str, str], serving_path: str, **_) -> str:
  """Writes the deployment Vertex AI would make; returns the endpoint's resource name."""
  folder = json.loads(os.environ[SETTINGS_VARIABLE])['endpoints_dir']
  os.makedirs(folder, exist_ok=True)
  request = {'serving_container_image_uri': serving_container_image_uri,
             'model_version_name': model_version_name, 'region': endpoint_region,
             'serving_args': ai_platform_serving_args, 'labels': labels,
             'serving_path': serving_path}
  with open(os.path.join(folder, f'{model_version_name}.json'), 'w') as f:
    json.dump(request, f, indent=2)
  return (f'projects/{ai_platform_serving_args.get("project_id")}/locations/'
          f'{endpoint_region}/endpoints/{ai_platform_serving_args.get("endpoint_name")}')


def free_ports(count: int) -> List[int]:
  """`count` ports on 127.0.0.1 that nothing listens on now."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def is_tpu_pool(pool: Dict[str, Any]) -> bool:
  return pool.get('machine_spec', {}).get('accelerator_type', '').startswith('TPU')


def on_cpu(command: List[str]) -> List[str]:
  """The run_executor command with the project's Trainer told there is no TPU."""
  command = list(command)
  index = command.index('--exec-properties') + 1
  properties = json.loads(command[index])
  custom_config = properties['custom_config']
  parsed = json.loads(custom_config) if isinstance(custom_config, str) else custom_config
  parsed['training']['tpu'] = ''
  properties['custom_config'] = (json.dumps(parsed) if isinstance(custom_config, str)
                                 else parsed)
  command[index] = json.dumps(properties, sort_keys=True)
  return command


def replicas(job_spec: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Every replica of the job: its pool, index, command and the environment Vertex AI
  gives it."""
  pools = job_spec['worker_pool_specs']
  counts = [int(pool.get('replica_count', 1)) for pool in pools]
  ports = iter(free_ports(sum(counts)))
  addresses = [[f'127.0.0.1:{next(ports)}' for _ in range(count)] for count in counts]
  cluster = {_POOL_TASK_TYPES[i]: hosts for i, hosts in enumerate(addresses) if hosts}
  pool_cluster = {f'workerpool{i}': hosts for i, hosts in enumerate(addresses) if hosts}
  found = []
  for pool_index, (pool, count) in enumerate(zip(pools, counts)):
    container = pool['container_spec']
    env = {item['name']: item['value'] for item in container.get('env', [])}
    command = list(container['command']) + list(container.get('args', []))
    if is_tpu_pool(pool):
      env = {k: v for k, v in env.items() if k not in _PJRT_VARIABLES}
      command = on_cpu(command)
    for index in range(count):
      task = {'type': _POOL_TASK_TYPES[pool_index], 'index': index}
      found.append({
          'name': f'workerpool{pool_index}-{index}',
          'command': command,
          'env': {**env,
                  'CLUSTER_SPEC': json.dumps({
                      'cluster': pool_cluster, 'environment': 'cloud',
                      'task': {'type': f'workerpool{pool_index}', 'index': index}}),
                  'TF_CONFIG': json.dumps({'cluster': cluster, 'task': task,
                                           'environment': 'cloud'})}})
  return found


class LocalJobService:
  """The two calls TFX's VertexJobClient makes; get_custom_job answers once the job ended
  (so TFX's 30 s polling never waits)."""

  def __init__(self, client_options=None, **_):
    self._endpoint = (client_options or {}).get('api_endpoint', '')
    self._settings = json.loads(os.environ[SETTINGS_VARIABLE])
    self._jobs: Dict[str, Dict[str, subprocess.Popen]] = {}
    self._folders: Dict[str, str] = {}

  def create_custom_job(self, parent: str, custom_job: Dict[str, Any]):
    from google.cloud.aiplatform_v1.types import custom_job as custom_job_types  # pylint: disable=g-import-not-at-top
    from google.cloud.aiplatform_v1.types import job_state  # pylint: disable=g-import-not-at-top
    number = len(os.listdir(self._settings['jobs_dir'])) + 1
    name = f'{parent}/customJobs/{number}'
    folder = os.path.join(self._settings['jobs_dir'], str(number))
    os.makedirs(folder)
    with open(os.path.join(folder, 'request.json'), 'w') as f:
      json.dump({'endpoint': self._endpoint, 'parent': parent, 'custom_job': custom_job},
                f, indent=2)
    environment = {k: v for k, v in os.environ.items() if k != SETTINGS_VARIABLE}
    processes = {}
    for replica in replicas(custom_job['job_spec']):
      with open(os.path.join(folder, replica['name'] + '.log'), 'w') as log:
        processes[replica['name']] = subprocess.Popen(
            replica['command'], env={**environment, **replica['env']}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    self._jobs[name], self._folders[name] = processes, folder
    return custom_job_types.CustomJob(name=name, display_name=custom_job['display_name'],
                                      state=job_state.JobState.JOB_STATE_RUNNING)

  def get_custom_job(self, name: str, retry=None):
    del retry
    from google.cloud.aiplatform_v1.types import custom_job as custom_job_types  # pylint: disable=g-import-not-at-top
    from google.cloud.aiplatform_v1.types import job_state  # pylint: disable=g-import-not-at-top
    failed = _wait(self._jobs[name], self._settings['deadline_seconds'])
    if failed is None:
      return custom_job_types.CustomJob(name=name,
                                        state=job_state.JobState.JOB_STATE_SUCCEEDED)
    replica, why = failed
    log = os.path.join(self._folders[name], f'{replica}.log')
    return custom_job_types.CustomJob(
        name=name, state=job_state.JobState.JOB_STATE_FAILED,
        error={'code': 13, 'message': f'replica {replica} {why}; its log: {log}'})


def _wait(processes: Dict[str, subprocess.Popen], deadline_seconds: float):
  """None once every replica exited 0; else (the first failed replica, why), the others
  stopped, as Vertex AI ends a job one of whose replicas failed."""
  deadline = time.monotonic() + deadline_seconds
  try:
    while True:
      codes = {name: p.poll() for name, p in processes.items()}
      for name, code in codes.items():
        if code not in (None, 0):
          return name, f'exited with {code}'
      if all(code == 0 for code in codes.values()):
        return None
      if time.monotonic() > deadline:
        running = next(name for name, code in codes.items() if code is None)
        return running, f'still ran after {deadline_seconds:.0f} s'
      time.sleep(0.5)
  finally:
    for process in processes.values():
      if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
