"""Reads what pipeline runs recorded in ML Metadata, as plain records.

TFX records a run as contexts (the pipeline, the run, each component node), executions
and artifacts joined by input/output events. This module answers the questions people
ask of them (which runs, what each component did, what was made, from what) without
anyone writing MLMD queries. It only reads: a SQLite store is opened read-only.
"""

import dataclasses
import datetime
import json
import os
from typing import Any, Dict, List, Optional

from google.protobuf import json_format
from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2

from pipeline.local import metadata_store as metadata_store_lib
from pipeline.local import run_lock

Execution = metadata_store_pb2.Execution
Event = metadata_store_pb2.Event


class StoreError(Exception):
  """The store or what was asked of it cannot be read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ExecutionRecord:
  id: int
  component: str
  state: str
  start: datetime.datetime
  end: datetime.datetime
  properties: Dict[str, Any]

  @property
  def seconds(self) -> float:
    return (self.end - self.start).total_seconds()


@dataclasses.dataclass(frozen=True)
class RunRecord:
  id: str
  pipeline: str
  executions: List[ExecutionRecord]

  @property
  def start(self) -> datetime.datetime:
    return min(e.start for e in self.executions)

  @property
  def end(self) -> datetime.datetime:
    return max(e.end for e in self.executions)

  @property
  def seconds(self) -> float:
    return (self.end - self.start).total_seconds()

  def execution(self, component: str) -> Optional[ExecutionRecord]:
    return next((e for e in self.executions if e.component == component), None)


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
  id: int
  type: str
  uri: str
  properties: Dict[str, Any]
  # The execution that made it (the first to output it: later cached ones reuse it).
  producer: Optional[ExecutionRecord]
  # Its output key in the producer, e.g. 'examples' or 'transformed_examples'.
  output_key: str


@dataclasses.dataclass(frozen=True)
class LineageNode:
  """An artifact and, recursively, the inputs of the execution that produced it."""
  artifact: ArtifactRecord
  inputs: Dict[str, List['LineageNode']]


def _time(milliseconds: int) -> datetime.datetime:
  return datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc)


def _value(value: metadata_store_pb2.Value) -> Any:
  kind = value.WhichOneof('value')
  if kind == 'struct_value':
    return json_format.MessageToDict(value.struct_value)
  if kind == 'proto_value':
    return value.proto_value.type_url
  return getattr(value, kind) if kind else None


def _properties(node) -> Dict[str, Any]:
  values = {k: _value(v) for k, v in node.properties.items()}
  values.update({k: _value(v) for k, v in node.custom_properties.items()})
  return values


def existing_sqlite_store(path: str) -> metadata_store_pb2.ConnectionConfig:
  """A read-only connection to the store a run recorded at `path`; StoreError when there
  is none."""
  if not os.path.isfile(path):
    raise StoreError(f'no ML Metadata store at {path}: run the pipeline first '
                     '(python local_runner.py), or pass --store with the path of '
                     'its metadata.sqlite')
  if os.path.getsize(path) == 0:
    raise StoreError(f'{path} is empty: the pipeline has not recorded anything there yet')
  return metadata_store_lib.sqlite_connection(path, read_only=True)


class RunStore:
  """One pipeline's runs in an ML Metadata store."""

  def __init__(self, connection: metadata_store_pb2.ConnectionConfig,
               pipeline: Optional[str] = None, output_root: Optional[str] = None):
    """`output_root`, when known, is where this store's runs write: an execution still
    RUNNING there while no run holds the root's lock was interrupted (a killed run's
    executions stay RUNNING in ML Metadata), and is shown as INTERRUPTED."""
    where = metadata_store_lib.describe(connection)
    self._interrupted = output_root is not None and not run_lock.is_held(output_root)
    try:
      self._store = metadata_store_lib.open_store(connection)
      pipelines = sorted(c.name for c in self._store.get_contexts_by_type('pipeline'))
    except (mlmd_errors.StatusError, RuntimeError) as e:
      hint = (f'; check the --mysql-* flags and ${metadata_store_lib.PASSWORD_VARIABLE}'
              if connection.HasField('mysql') else '')
      raise StoreError(f'{where} is not a readable ML Metadata store: {e}{hint}') from None
    if not pipelines:
      raise StoreError(f'{where} holds no pipeline runs yet')
    if pipeline is None:
      if len(pipelines) > 1:
        raise StoreError(f'{where} holds several pipelines ({", ".join(pipelines)}): '
                         'choose one with --pipeline')
      pipeline = pipelines[0]
    elif pipeline not in pipelines:
      raise StoreError(f'{where} holds pipeline(s) {", ".join(pipelines)}, '
                       f'not {pipeline!r}: is this the right store?')
    self.where = where
    self.pipeline = pipeline
    self._pipeline_context = self._store.get_context_by_type_and_name('pipeline', pipeline)
    self._components = self._component_of_executions()
    self._artifact_types = {t.id: t.name for t in self._store.get_artifact_types()}
    self._executions: Dict[int, ExecutionRecord] = {}

  def _component_of_executions(self) -> Dict[int, str]:
    prefix = self.pipeline + '.'
    components = {}
    for node in self._store.get_contexts_by_type('node'):
      if node.name.startswith(prefix):
        for execution in self._store.get_executions_by_context(node.id):
          components[execution.id] = node.name[len(prefix):]
    return components

  def _state(self, execution: Execution) -> str:
    if execution.last_known_state == Execution.RUNNING and self._interrupted:
      return 'INTERRUPTED'
    return Execution.State.Name(execution.last_known_state)

  def _execution(self, execution: Execution) -> ExecutionRecord:
    if execution.id not in self._executions:
      self._executions[execution.id] = ExecutionRecord(
          id=execution.id,
          component=self._components.get(execution.id, execution.type),
          state=self._state(execution),
          start=_time(execution.create_time_since_epoch),
          end=_time(execution.last_update_time_since_epoch),
          properties=_properties(execution))
    return self._executions[execution.id]

  def runs(self) -> List[RunRecord]:
    """This pipeline's runs, oldest first."""
    runs = []
    for context in self._store.get_children_contexts_by_context(self._pipeline_context.id):
      if context.type != 'pipeline_run':
        continue
      executions = sorted(self._store.get_executions_by_context(context.id),
                          key=lambda e: e.id)
      if executions:
        runs.append(RunRecord(id=context.name, pipeline=self.pipeline,
                              executions=[self._execution(e) for e in executions]))
    return sorted(runs, key=lambda r: r.start)

  def run(self, run_id: Optional[str] = None) -> RunRecord:
    """The run with this id, or the latest."""
    runs = self.runs()
    if not runs:
      raise StoreError(f'{self.where} holds no runs of pipeline {self.pipeline!r}')
    if run_id is None:
      return runs[-1]
    for run in runs:
      if run.id == run_id:
        return run
    raise StoreError(f'no run {run_id!r} of pipeline {self.pipeline!r}; its runs are '
                     + ', '.join(r.id for r in runs))

  def _type_name(self, type_id: int) -> str:
    if type_id not in self._artifact_types:  # registered since this store was opened
      self._artifact_types = {t.id: t.name for t in self._store.get_artifact_types()}
    return self._artifact_types[type_id]

  def latest_execution(self, component: str) -> Optional[ExecutionRecord]:
    """The component's newest execution in any run (the one a live run just made)."""
    node = self._store.get_context_by_type_and_name('node', f'{self.pipeline}.{component}')
    executions = self._store.get_executions_by_context(node.id) if node else []
    if not executions:
      return None
    latest = max(executions, key=lambda e: e.id)
    self._components[latest.id] = component
    return self._execution(latest)

  def _artifact(self, artifact: metadata_store_pb2.Artifact) -> ArtifactRecord:
    outputs = sorted((e for e in self._store.get_events_by_artifact_ids([artifact.id])
                      if e.type == Event.OUTPUT), key=lambda e: e.execution_id)
    producer, key = None, ''
    if outputs:
      execution, = self._store.get_executions_by_id([outputs[0].execution_id])
      producer = self._execution(execution)
      key = outputs[0].path.steps[0].key if outputs[0].path.steps else ''
    return ArtifactRecord(id=artifact.id, type=self._type_name(artifact.type_id),
                          uri=artifact.uri, properties=_properties(artifact),
                          producer=producer, output_key=key)

  def artifacts(self, run: Optional[RunRecord] = None,
                type_name: Optional[str] = None) -> List[ArtifactRecord]:
    """Artifacts of this pipeline (or those a run's executions output), by id."""
    if run is None:
      found = self._store.get_artifacts_by_context(self._pipeline_context.id)
    else:
      events = self._store.get_events_by_execution_ids([e.id for e in run.executions])
      found = self._store.get_artifacts_by_id(sorted(
          {e.artifact_id for e in events if e.type == Event.OUTPUT}))
    records = [self._artifact(a) for a in sorted(found, key=lambda a: a.id)
               if type_name is None or self._type_name(a.type_id) == type_name]
    return records

  def artifact(self, artifact_id: int) -> ArtifactRecord:
    found = self._store.get_artifacts_by_id([artifact_id])
    if not found:
      raise StoreError(f'no artifact with id {artifact_id} in {self.where}')
    return self._artifact(found[0])

  def outputs(self, execution: ExecutionRecord, resolved: bool = False
              ) -> Dict[str, List[ArtifactRecord]]:
    """What an execution output (for a cached one: the earlier outputs it reused);
    with `resolved`, also what a resolver node picked (e.g. the baseline model)."""
    kinds = (Event.OUTPUT, Event.INTERNAL_OUTPUT) if resolved else (Event.OUTPUT,)
    events = [e for e in self._store.get_events_by_execution_ids([execution.id])
              if e.type in kinds]
    artifacts = {a.id: a for a in self._store.get_artifacts_by_id(
        [e.artifact_id for e in events])}
    outputs: Dict[str, List[ArtifactRecord]] = {}
    for event in sorted(events, key=lambda e: e.artifact_id):
      outputs.setdefault(event.path.steps[0].key, []).append(
          self._artifact(artifacts[event.artifact_id]))
    return outputs

  def output(self, run: RunRecord, component: str, key: str) -> Optional[ArtifactRecord]:
    """The one artifact a run's component output under `key`, if it ran and did."""
    execution = run.execution(component)
    if execution is None:
      return None
    found = self.outputs(execution).get(key, [])
    return found[0] if found else None

  def consumers(self, artifact: ArtifactRecord, component: str,
                key: Optional[str] = None) -> List[ExecutionRecord]:
    """The executions of `component` that took `artifact` as an input (as input `key`,
    when given), oldest first."""
    events = self._store.get_events_by_artifact_ids([artifact.id])
    ids = sorted({e.execution_id for e in events if e.type == Event.INPUT
                  and (key is None or (e.path.steps and e.path.steps[0].key == key))})
    found = [self._execution(e) for e in self._store.get_executions_by_id(ids)]
    return [e for e in found if e.component == component]

  def lineage(self, artifact: ArtifactRecord) -> LineageNode:
    """The artifact and everything upstream of it, through each producer's inputs."""
    memo: Dict[int, LineageNode] = {}

    def build(record: ArtifactRecord) -> LineageNode:
      if record.id in memo:
        return memo[record.id]
      inputs: Dict[str, List[LineageNode]] = {}
      if record.producer is not None:
        events = [e for e in self._store.get_events_by_execution_ids([record.producer.id])
                  if e.type == Event.INPUT]
        for event in sorted(events, key=lambda e: e.artifact_id):
          upstream = self.artifact(event.artifact_id)
          inputs.setdefault(event.path.steps[0].key, []).append(build(upstream))
      memo[record.id] = LineageNode(artifact=record, inputs=inputs)
      return memo[record.id]

    return build(artifact)


def custom_config(execution: ExecutionRecord) -> Dict[str, Any]:
  """A component's custom_config property, decoded ({} when it has none)."""
  return json.loads(execution.properties.get('custom_config') or 'null') or {}
