"""Reads a run's ML Metadata store the way tests ask about it: by component."""

import collections
from typing import Dict, List

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata


class RunRecord:
  """Executions and artifacts of one pipeline's store, grouped by component id."""

  def __init__(self, sqlite_path: str, pipeline_name: str):
    self.store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(sqlite_path))
    self.pipeline_name = pipeline_name
    self._execution_types = {t.id: t.name for t in self.store.get_execution_types()}
    self._artifact_types = {t.id: t.name for t in self.store.get_artifact_types()}

  def executions_by_component(self) -> Dict[str, List[metadata_store_pb2.Execution]]:
    prefix = self.pipeline_name + '.'
    by_component = {}
    for context in self.store.get_contexts_by_type('node'):
      if context.name.startswith(prefix):
        by_component[context.name[len(prefix):]] = sorted(
            self.store.get_executions_by_context(context.id), key=lambda e: e.id)
    return by_component

  def outputs_of(self, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    return self._artifacts_of(execution_id, metadata_store_pb2.Event.OUTPUT)

  def inputs_of(self, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    return self._artifacts_of(execution_id, metadata_store_pb2.Event.INPUT)

  def _artifacts_of(self, execution_id: int, event_type
                    ) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    events = [e for e in self.store.get_events_by_execution_ids([execution_id])
              if e.type == event_type]
    artifacts = {a.id: a for a in self.store.get_artifacts_by_id(
        [e.artifact_id for e in events])}
    outputs = collections.defaultdict(list)
    for event in events:
      outputs[event.path.steps[0].key].append(artifacts[event.artifact_id])
    return dict(outputs)

  def artifact_type(self, artifact: metadata_store_pb2.Artifact) -> str:
    return self._artifact_types[artifact.type_id]
