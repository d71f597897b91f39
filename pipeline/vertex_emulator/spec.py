"""A compiled PipelineJob JSON read as Vertex AI Pipelines reads it: the tasks in the order
their inputs allow, each with its component and executor, and the checks Vertex AI makes
before anything runs."""

import dataclasses
import json
import re
from typing import Any, Dict, List

import yaml

# Vertex AI ML Metadata refuses any other artifact type name ("MetadataSchema must include
# a schema title that satisfies the following regex"; tfx#5404, #6102).
SCHEMA_TITLE = re.compile(r'^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$')


class SpecError(ValueError):
  """The spec cannot run; the message names the task."""

  def __init__(self, task: str, problem: str):
    super().__init__(f'task {task}: {problem}')
    self.task = task


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  spec: Dict[str, Any]       # root.dag.tasks[name]
  component: Dict[str, Any]  # components[componentRef]
  executor: Dict[str, Any]   # deploymentSpec.executors[executorLabel]
  # The run's pipeline parameters (runtimeConfig), as Values: what a task input naming
  # one (`componentInputParameter`) gets.
  pipeline_parameters: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)

  @property
  def depends_on(self) -> List[str]:
    producers = [a['taskOutputArtifact']['producerTask']
                 for a in self.spec.get('inputs', {}).get('artifacts', {}).values()
                 if 'taskOutputArtifact' in a]
    return sorted(set(self.spec.get('dependentTasks', [])) | set(producers))

  @property
  def caching(self) -> bool:
    return bool(self.spec.get('cachingOptions', {}).get('enableCache'))

  def parameters(self) -> Dict[str, Dict[str, Any]]:
    """Each input parameter's Value ({'stringValue': ...} or {'intValue': ...}): a
    constant, or the pipeline parameter it names."""
    found = {}
    for key, value in self.spec.get('inputs', {}).get('parameters', {}).items():
      if 'runtimeValue' in value:
        found[key] = value['runtimeValue']['constantValue']
      elif value.get('componentInputParameter') in self.pipeline_parameters:
        found[key] = self.pipeline_parameters[value['componentInputParameter']]
      else:
        raise SpecError(self.name, f'parameter {key} is neither a constant nor a pipeline '
                        f'parameter with a value: {json.dumps(value)}')
    return found

  def artifact_type(self, direction: str, key: str) -> Dict[str, Any]:
    """The artifactType of an input ('inputDefinitions') or output ('outputDefinitions')."""
    return self.component[direction]['artifacts'][key]['artifactType']


@dataclasses.dataclass(frozen=True)
class PipelineJob:
  name: str
  pipeline_root: str
  tasks: List[Task]  # in an order that runs every producer before its consumers


def schema_title(artifact_type: Dict[str, Any]) -> str:
  if 'schemaTitle' in artifact_type:
    return artifact_type['schemaTitle']
  return yaml.safe_load(artifact_type['instanceSchema']).get('title', 'tfx.Artifact')


def load(path: str) -> PipelineJob:
  """The job at `path`, checked as Vertex AI checks it on submission."""
  with open(path) as f:
    job = json.load(f)
  spec = job['pipelineSpec']
  executors = spec['deploymentSpec']['executors']
  parameters = pipeline_parameters(job)
  tasks = {}
  for name, task in spec['root']['dag']['tasks'].items():
    component = spec['components'][task['componentRef']['name']]
    tasks[name] = Task(name, task, component, executors[component['executorLabel']],
                       parameters)
  for task in tasks.values():
    _check_types(task)
  return PipelineJob(spec['pipelineInfo']['name'],
                     job['runtimeConfig']['gcsOutputDirectory'], _ordered(tasks))


def pipeline_parameters(job: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  """The job's runtimeConfig parameters as Values, whichever form the spec uses: the
  old `parameters` ({name: {'stringValue': ...}}) or `parameterValues` (plain values)."""
  runtime = job.get('runtimeConfig', {})
  found = dict(runtime.get('parameters', {}))
  for name, value in runtime.get('parameterValues', {}).items():
    kind = ('stringValue' if isinstance(value, str) else 'intValue'
            if isinstance(value, int) else 'doubleValue')
    found[name] = {kind: value}
  return found


def _check_types(task: Task) -> None:
  for direction in ('inputDefinitions', 'outputDefinitions'):
    for key in task.component.get(direction, {}).get('artifacts', {}):
      title = schema_title(task.artifact_type(direction, key))
      if not SCHEMA_TITLE.match(title):
        raise SpecError(task.name, f'artifact {key} has type {title!r}: Vertex AI refuses '
                        'it (MetadataSchema must include a schema title that satisfies '
                        f'the regex {SCHEMA_TITLE.pattern})')


def _ordered(tasks: Dict[str, Task]) -> List[Task]:
  """Kahn's order, ties by name, so every run goes the same way."""
  done: List[Task] = []
  waiting = dict(tasks)
  while waiting:
    ready = sorted(name for name, task in waiting.items()
                   if all(d in {t.name for t in done} for d in task.depends_on))
    if not ready:
      missing = {n: [d for d in t.depends_on if d not in tasks] for n, t in waiting.items()}
      name = sorted(waiting)[0]
      raise SpecError(name, f'waits for tasks that never run: {missing[name] or "a cycle"}')
    for name in ready:
      done.append(waiting.pop(name))
  return done
