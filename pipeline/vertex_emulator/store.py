"""The ML Metadata store an emulated Vertex AI keeps under its folder: the artifacts every
task produced (typed by schema title, with their metadata), the resolver queries of the
spec answered from them, and each task's cache entry."""

import json
import re
from typing import Any, Dict, List, Optional

from ml_metadata import ListOptions, OrderByField
from ml_metadata.proto import metadata_store_pb2

from pipeline.local import metadata_store
from pipeline.vertex_emulator.spec import SpecError, schema_title

RuntimeArtifact = Dict[str, Any]  # ExecutorInput's RuntimeArtifact as JSON
_TASK_TYPE = 'vertex_emulator.Task'

# The clauses TFX compiles into resolver filters (latest blessed model, latest artifact),
# in Vertex AI's filter syntax, and their ML Metadata filter_query equivalents.
_CLAUSES = (
    (re.compile(r'schema_title="([^"]+)"'), lambda m: f"type = '{m[1]}'"),
    (re.compile(r'state=LIVE'), lambda m: 'state = LIVE'),
    (re.compile(r'name="([^"]+)"'), lambda m: f"name = '{m[1]}'"),
    (re.compile(r'uri="([^"]+)"'), lambda m: f"uri = '{m[1]}'"),
    (re.compile(r'metadata\.(\w+)\.number_value=(-?[\d.]+)'),
     lambda m: f'custom_properties.{m[1]}.double_value = {m[2]}'),
    (re.compile(r'metadata\.(\w+)\.string_value="([^"]*)"'),
     lambda m: f"custom_properties.{m[1]}.string_value = '{m[2]}'"),
)


def mlmd_filter(task: str, vertex_filter: str) -> str:
  """The ML Metadata filter_query of a resolver's Vertex AI filter."""
  clauses = []
  for clause in re.split(r'\s+AND\s+', vertex_filter.strip()):
    for pattern, translate in _CLAUSES:
      match = pattern.fullmatch(clause)
      if match:
        clauses.append(translate(match))
        break
    else:
      raise SpecError(task, f'resolver filter clause {clause!r} is not one the emulator '
                      'knows (from TFX\'s latest-blessed-model and latest-artifact resolvers)')
  return ' AND '.join(clauses)


class EmulatorStore:
  """Artifacts and task cache entries in SQLite at `path`."""

  def __init__(self, path: str):
    self._store = metadata_store.open_store(metadata_store.sqlite_connection(path))
    self._task_type = self._store.put_execution_type(metadata_store_pb2.ExecutionType(
        name=_TASK_TYPE, properties={'task': metadata_store_pb2.STRING,
                                     'cache_key': metadata_store_pb2.STRING}))

  def put(self, artifacts: List[RuntimeArtifact]) -> None:
    """Records task outputs (uri, name, type and metadata as Vertex AI keeps them)."""
    for runtime in artifacts:
      title = schema_title(runtime['type'])
      type_id = self._store.put_artifact_type(metadata_store_pb2.ArtifactType(name=title))
      artifact = metadata_store_pb2.Artifact(
          type_id=type_id, uri=runtime['uri'], name=runtime['name'],
          state=metadata_store_pb2.Artifact.LIVE)
      for key, value in runtime.get('metadata', {}).items():
        _set(artifact.custom_properties[key], value)
      artifact.custom_properties['vertex_type'].string_value = json.dumps(runtime['type'])
      self._store.put_artifacts([artifact])

  def query(self, task: str, vertex_filter: str, limit: int = 1) -> List[RuntimeArtifact]:
    """The newest artifacts matching a resolver's filter (Vertex's default limit is 1)."""
    options = ListOptions(limit=limit, order_by=OrderByField.CREATE_TIME, is_asc=False,
                          filter_query=mlmd_filter(task, vertex_filter))
    return [_runtime(a) for a in self._store.get_artifacts(list_options=options)]

  def cached(self, cache_key: str) -> Optional[Dict[str, List[RuntimeArtifact]]]:
    """The outputs of an earlier task run with this cache key, if any."""
    options = ListOptions(limit=1, order_by=OrderByField.CREATE_TIME, is_asc=False,
                          filter_query=f"properties.cache_key.string_value = '{cache_key}'")
    found = self._store.get_executions(list_options=options)
    if not found:
      return None
    return json.loads(found[0].custom_properties['outputs'].string_value)

  def put_cache_entry(self, task: str, cache_key: str,
                      outputs: Dict[str, List[RuntimeArtifact]]) -> None:
    execution = metadata_store_pb2.Execution(
        type_id=self._task_type, last_known_state=metadata_store_pb2.Execution.COMPLETE)
    execution.properties['task'].string_value = task
    execution.properties['cache_key'].string_value = cache_key
    execution.custom_properties['outputs'].string_value = json.dumps(outputs)
    self._store.put_executions([execution])


_JSON = 'json:'  # a metadata value neither number nor string, kept as JSON text


def _set(value: metadata_store_pb2.Value, item: Any) -> None:
  if isinstance(item, str):
    value.string_value = item
  elif isinstance(item, (int, float)) and not isinstance(item, bool):
    value.double_value = float(item)
  else:
    value.string_value = _JSON + json.dumps(item)


def _runtime(artifact: metadata_store_pb2.Artifact) -> RuntimeArtifact:
  metadata = {}
  for key, value in artifact.custom_properties.items():
    if key == 'vertex_type':
      continue
    if value.HasField('double_value'):
      metadata[key] = value.double_value
    elif value.string_value.startswith(_JSON):
      metadata[key] = json.loads(value.string_value[len(_JSON):])
    else:
      metadata[key] = value.string_value
  return {'name': artifact.name, 'uri': artifact.uri, 'metadata': metadata,
          'type': json.loads(artifact.custom_properties['vertex_type'].string_value)}
