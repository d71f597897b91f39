"""The emulated run: every task of a compiled PipelineJob, in order, as Vertex AI runs it."""

import dataclasses
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List, Optional, TextIO, Tuple

from pipeline.vertex_emulator import image as image_lib
from pipeline.vertex_emulator import spec as spec_lib
from pipeline.vertex_emulator.container import emulated_services
from pipeline.vertex_emulator.store import EmulatorStore, RuntimeArtifact

CONTAINER_HOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'container')
_PLACEHOLDER = '{{$}}'
_INPUT_METADATA = re.compile(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}")
# Beam options only Dataflow reads; the DirectRunner stands in for it.
_DATAFLOW_ONLY = ('--project', '--region', '--temp_location', '--staging_location',
                  '--machine_type', '--worker_machine_type', '--max_num_workers',
                  '--num_workers', '--sdk_container_image', '--experiments', '--disk_size_gb',
                  '--service_account_email', '--subnetwork', '--network', '--worker_zone',
                  '--dataflow_service_options')
_VERTEX_TRAINER = 'tfx.extensions.google_cloud_ai_platform.trainer.executor.'
_VERTEX_PUSHER = 'tfx.extensions.google_cloud_ai_platform.pusher.executor.'
_NAME_WIDTH = len('latest_blessed_model_resolver-model-blessing-resolver')


class TaskFailed(RuntimeError):
  """A task ended badly; the message is the console's account of it."""


@dataclasses.dataclass(frozen=True)
class Places:
  """What stands for what: DIR/gcs for gs://, the image folder for the image's paths."""
  gcs: str
  image: image_lib.ImageFolder

  def local(self, text: str) -> str:
    workdir = re.escape(self.image.workdir)
    text = re.sub(rf'(?<![\w.-]){workdir}(?=[/"\'\\\s]|$)', self.image.local_workdir, text)
    return text.replace('gs://', self.gcs + '/')


def direct_runner(args: List[str], setup_file: str) -> Tuple[List[str], List[str]]:
  """(the args with Dataflow replaced by the DirectRunner, the options dropped).

  In place of Dataflow's worker image, the image's setup.py: as in local runs, it keeps
  TFX's Beam components from packaging TFX for workers that import what is installed.
  """
  if '--runner=DataflowRunner' not in args:
    return args, []
  kept, dropped = [], []
  for arg in args:
    flag = arg.split('=', 1)[0]
    if arg == '--runner=DataflowRunner':
      kept += ['--runner=DirectRunner', f'--setup_file={setup_file}']
    elif flag in _DATAFLOW_ONLY:
      dropped.append(flag)
    else:
      kept.append(arg)
  return kept, dropped


_EXCEPTION = re.compile(r'^[\w.]*(Error|Exception|Exit)\b')
_CHAINED = ('The above exception was the direct cause of the following exception:',
            'During handling of the above exception, another exception occurred:')


def root_cause(log_text: str) -> str:
  """The last exception of a log (Python's `Error: message` line), led by the first one
  of its chain when it was raised from another; else the log's last line."""
  lines = [line.strip() for line in log_text.splitlines() if line.strip()]
  raised = [i for i, line in enumerate(lines) if _EXCEPTION.match(line)]
  if not raised:
    return lines[-1] if lines else '(no output)'
  last = first = raised[-1]
  # Walk the chain back: each link is an exception line just before a chain marker.
  while first > 0:
    markers = [i for i in range(first) if lines[i] in _CHAINED]
    earlier = [i for i in raised if markers and i < markers[-1]]
    if not markers or not earlier or any(markers[-1] < i < first for i in raised):
      break
    first = earlier[-1]
  if first == last:
    return lines[last]
  return f'{lines[first]} (raised as {lines[last]})'


class Emulator:
  """One emulated run of a spec under `root`, printing a line per task to `out`."""

  def __init__(self, root: str, project_dir: str, out: Optional[TextIO] = None,
               enable_cache: bool = True, task_timeout_seconds: float = 3600):
    self.root = os.path.abspath(root)
    self.out = out  # None: whatever sys.stdout is when a line is printed
    self.enable_cache = enable_cache
    self.timeout = task_timeout_seconds
    os.makedirs(self.root, exist_ok=True)
    image = image_lib.lay_out(project_dir, os.path.join(self.root, 'image'))
    self.places = Places(os.path.join(self.root, 'gcs'), image)
    self.store = EmulatorStore(os.path.join(self.root, 'metadata.sqlite'))
    self._said: set = set()

  def say(self, line: str, once: bool = False) -> None:
    if once and line in self._said:
      return
    self._said.add(line)
    print(line, file=self.out, flush=True)

  def run(self, spec_path: str) -> int:
    """0 when every task succeeded, else 1 after the failing task's account."""
    try:
      job = spec_lib.load(spec_path)
    except spec_lib.SpecError as e:
      self.say(f'vertex emulator: the spec would be refused: {e}')
      return 1
    run_id = f'{job.name}-{datetime.datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}'
    self.say(f'Emulating {job.name} as run {run_id} in {self.root}\n'
             f'  gs:// is {self.places.gcs}/, the image\'s {self.places.image.workdir} is '
             f'{self.places.image.local_workdir}')
    outputs: Dict[str, Dict[str, List[RuntimeArtifact]]] = {}
    for task in job.tasks:
      started = time.monotonic()
      clock = datetime.datetime.now().strftime('%H:%M:%S')
      try:
        outputs[task.name], result = self._run_task(job, run_id, task, outputs)
      except (TaskFailed, spec_lib.SpecError) as e:
        self.say(f'{clock}  {task.name:<{_NAME_WIDTH}}  FAILED after '
                 f'{time.monotonic() - started:.1f} s\n{e}')
        return 1
      if result.startswith('ran'):
        result = f'ran in {time.monotonic() - started:.1f} s{result[len("ran"):]}'
      self.say(f'{clock}  {task.name:<{_NAME_WIDTH}}  {result}')
    return 0

  def _run_task(self, job, run_id, task: spec_lib.Task, outputs
                ) -> Tuple[Dict[str, List[RuntimeArtifact]], str]:
    inputs = {}
    for key, source in task.spec.get('inputs', {}).get('artifacts', {}).items():
      produced = source['taskOutputArtifact']
      found = outputs[produced['producerTask']].get(produced['outputArtifactKey'], [])
      if found:
        inputs[key] = found
    if 'resolver' in task.executor:
      return self._resolve(task, inputs)
    if 'importer' in task.executor:
      return self._import(run_id, task)
    return self._run_container(job, run_id, task, inputs)

  def _resolve(self, task, inputs):
    found = {}
    for key, query in task.executor['resolver']['outputArtifactQueries'].items():
      missing = []

      def metadata(match):
        artifacts = inputs.get(match[1])
        if not artifacts:
          missing.append(match[1])
          return ''
        return str(artifacts[0]['metadata'].get(match[2], ''))

      vertex_filter = _INPUT_METADATA.sub(metadata, query['filter'])
      found[key] = ([] if missing else
                    self.store.query(task.name, vertex_filter, int(query.get('limit', 1))))
    names = [a['name'].rsplit('/', 1)[-1] for artifacts in found.values() for a in artifacts]
    return found, f'resolved {", ".join(names)}' if names else 'resolved nothing'

  def _import(self, run_id, task):
    """An importer node: the artifact at its URI, the one already recorded unless the
    spec asks to reimport."""
    importer = task.executor['importer']
    key, = task.component['outputDefinitions']['artifacts']
    uri = self.places.local(importer['artifactUri']['constantValue']['stringValue'])
    title = spec_lib.schema_title(importer['typeSchema'])
    known = [] if importer.get('reimport') else self.store.query(
        task.name, f'schema_title="{title}" AND uri="{uri}"')
    if known:
      return {key: known}, f'imported {uri} (recorded before)'
    artifact = {'name': self._artifact_name(run_id, task.name, key), 'uri': uri,
                'type': importer['typeSchema'], 'metadata': importer.get('metadata', {})}
    self.store.put([artifact])
    return {key: [artifact]}, f'imported {uri}'

  def _artifact_name(self, run_id: str, task: str, key: str) -> str:
    """A resource name as Vertex AI ML Metadata gives each artifact."""
    artifact_id = f'{run_id}-{task}-{key}'.replace('_', '-').lower()
    return f'projects/emulated/locations/local/metadataStores/default/artifacts/{artifact_id}'

  def _run_container(self, job, run_id, task, inputs):
    container = task.executor['container']
    parameters = task.parameters()
    task_root = f'{job.pipeline_root}/{run_id}/{task.name}_{uuid.uuid4().hex[:8]}'
    output_artifacts = {
        key: {'artifacts': [{'name': self._artifact_name(run_id, task.name, key),
                             'uri': f'{task_root}/{key}',
                             'type': task.artifact_type('outputDefinitions', key),
                             'metadata': {}}]}
        for key in task.component.get('outputDefinitions', {}).get('artifacts', {})}
    executor_input = {
        'inputs': {'artifacts': {k: {'artifacts': v} for k, v in inputs.items()},
                   'parameters': parameters,
                   'parameterValues': {k: _plain(v) for k, v in parameters.items()}},
        'outputs': {'artifacts': output_artifacts,
                    'outputFile': f'{task_root}/executor_output.json'}}
    executor_input = json.loads(self.places.local(json.dumps(executor_input)))
    output_file = executor_input['outputs']['outputFile']
    logs = os.path.join(self.root, 'logs', run_id)
    os.makedirs(logs, exist_ok=True)

    driver_output = {}
    lifecycle = container.get('lifecycle', {}).get('preCacheCheck')
    if lifecycle:
      self._execute(task, lifecycle, executor_input, os.path.join(logs, f'{task.name}.driver.log'))
      driven = _read_json(output_file)
      driver_output = driven.get('parameterValues', {})
      # Vertex AI hands the executor what its driver resolved (ExampleGen's: the span, its
      # version and the span's file pattern), as parameters of either form, and starts
      # the outputs from the driver's (the span on the Examples).
      executor_input['inputs']['parameterValues'].update(driver_output)
      executor_input['inputs']['parameters'].update(
          {k: _value(v) for k, v in driver_output.items()})
      for key, listed in driven.get('artifacts', {}).items():
        outputs_of_key = executor_input['outputs']['artifacts'].get(key, {}).get('artifacts', [])
        for artifact, resolved in zip(outputs_of_key, listed.get('artifacts', [])):
          artifact['metadata'] = resolved.get('metadata', {})

    cache_key = hashlib.sha256(json.dumps({
        'component': task.component, 'executor': task.executor, 'parameters': parameters,
        'driver': driver_output,
        'inputs': {k: [a['name'] for a in v] for k, v in inputs.items()}},
        sort_keys=True).encode()).hexdigest()
    if self.enable_cache and task.caching:
      cached = self.store.cached(cache_key)
      if cached is not None:
        return cached, 'cached'

    self._execute(task, container, executor_input, os.path.join(logs, f'{task.name}.log'))
    written = _read_json(output_file).get('artifacts', {})
    produced = {}
    for key, listed in executor_input['outputs']['artifacts'].items():
      artifacts = [dict(a) for a in listed['artifacts']]
      for artifact, updated in zip(artifacts, written.get(key, {}).get('artifacts', [])):
        artifact['metadata'] = updated.get('metadata', {})
        artifact['uri'] = updated.get('uri', artifact['uri'])
      produced[key] = artifacts
    self.store.put([a for artifacts in produced.values() for a in artifacts])
    self.store.put_cache_entry(task.name, cache_key, produced)
    return produced, f'ran{_headline(produced)}'

  def _execute(self, task, container, executor_input, log_path) -> None:
    """Runs a container's command in the image folder; raises TaskFailed with the cause."""
    args = []
    for arg in list(container['command']) + list(container.get('args', [])):
      if _PLACEHOLDER in arg:
        arg = arg.replace(_PLACEHOLDER, json.dumps(executor_input))
      elif '{{$' in arg:
        raise spec_lib.SpecError(task.name, f'placeholder {arg} is not one the emulator '
                                 'fills ({{$}} only)')
      args.append(self.places.local(arg))
    args, dropped = direct_runner(
        args, os.path.join(self.places.image.local_workdir, 'setup.py'))
    if dropped:
      self.say(f'  (Dataflow stands aside: the Beam steps run on the DirectRunner, without '
               f'{" ".join(sorted(set(dropped)))})', once=True)
    env = self._environment(task, args)
    with open(log_path, 'w') as log:
      try:
        process = subprocess.run(args, cwd=self.places.image.local_workdir, env=env,
                                 stdout=log, stderr=subprocess.STDOUT,
                                 timeout=self.timeout, check=False)
        code = process.returncode
      except subprocess.TimeoutExpired:
        code = None
    text = open(log_path, errors='replace').read()
    if code == 0:
      return
    shown = ' '.join(a if len(a) < 120 else a[:60] + '...' for a in args)
    cause = (root_cause(text) if code is not None
             else f'still running after {self.timeout:.0f} s, stopped')
    account = f'  command: {shown}\n  cause: {cause}\n  log: {log_path}'
    replica_log = re.search(r'its log: (\S+\.log)', text)
    if replica_log and os.path.exists(replica_log[1]):
      account += (f'\n  replica cause: {root_cause(open(replica_log[1]).read())}\n'
                  f'  replica log: {replica_log[1]}')
    raise TaskFailed(account)

  def _environment(self, task, args) -> Dict[str, str]:
    """This environment standing in for the image's: its Python first on PATH, the
    image's WORKDIR and ENV, and for a Vertex training job the local job service."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'TF_CONFIG', 'CLUSTER_SPEC')}
    env.update(self.places.image.env)
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['PYTHONPATH'] = os.pathsep.join([self.places.image.local_workdir, CONTAINER_HOOKS])
    executor_class = args[args.index('--executor_class_path') + 1] \
        if '--executor_class_path' in args else ''
    if executor_class.startswith((_VERTEX_TRAINER, _VERTEX_PUSHER)):
      jobs = os.path.join(self.root, 'jobs')
      os.makedirs(jobs, exist_ok=True)
      env[emulated_services.SETTINGS_VARIABLE] = json.dumps(
          {'jobs_dir': jobs, 'endpoints_dir': os.path.join(self.root, 'endpoints'),
           'deadline_seconds': self.timeout})
    if executor_class.startswith(_VERTEX_TRAINER):
      self._describe_job(task)
    if executor_class.startswith(_VERTEX_PUSHER):
      self.say(f'  ({task.name}: the Endpoint deployment is written to '
               f'{self.root}/endpoints, not made)')
    return env

  def _describe_job(self, task) -> None:
    config = json.loads(task.parameters()['custom_config']['stringValue'])
    pools = config['ai_platform_training_args']['job_spec']['worker_pool_specs']
    for index, pool in enumerate(pools):
      machine = pool['machine_spec']
      accelerator = machine.get('accelerator_type')
      what = (f'{machine["machine_type"]}'
              + (f' with {accelerator} x{machine.get("accelerator_count", 1)}'
                 if accelerator else ''))
      note = ('; it trains on CPU here (no TPU): TPUEmbedding and the TPU runtime are '
              'not exercised' if emulated_services.is_tpu_pool(pool) else '')
      self.say(f'  ({task.name}: custom job worker pool {index}: '
               f'{pool.get("replica_count", 1)} x {what} as local processes{note})')


def _plain(value: Dict[str, Any]) -> Any:
  """A Value proto's JSON ({'stringValue': 'x'}) as the plain value of parameterValues."""
  if 'intValue' in value:
    return int(value['intValue'])
  if 'doubleValue' in value:
    return float(value['doubleValue'])
  return value.get('stringValue', '')


def _value(plain: Any) -> Dict[str, Any]:
  """A plain parameter value as the Value proto's JSON of the older `parameters` form."""
  if isinstance(plain, str):
    return {'stringValue': plain}
  if isinstance(plain, (int, float)) and float(plain).is_integer():
    return {'intValue': str(int(plain))}
  return {'doubleValue': plain}


def _read_json(path: str) -> Dict[str, Any]:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _headline(produced: Dict[str, List[RuntimeArtifact]]) -> str:
  """What a person looks for first: whether the model was blessed, where it went."""
  for artifacts in produced.values():
    for artifact in artifacts:
      metadata, title = artifact['metadata'], spec_lib.schema_title(artifact['type'])
      if title == 'tfx.ModelBlessing':
        return ': blessed' if metadata.get('blessed') == 1 else ': not blessed'
      if title == 'tfx.PushedModel':
        return (f': pushed to {metadata.get("pushed_destination")}'
                if metadata.get('pushed') == 1 else ': not pushed')
  return ''


def emulate(spec_path: str, root: str, project_dir: str, out: Optional[TextIO] = None,
            enable_cache: bool = True, task_timeout_seconds: float = 3600) -> int:
  """Runs the compiled spec at `spec_path` under `root`; 0 when every task succeeded."""
  return Emulator(root, project_dir, out, enable_cache, task_timeout_seconds).run(spec_path)
