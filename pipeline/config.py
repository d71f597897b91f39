"""One YAML file describes a run; this module turns it into typed, validated objects.

Everything is checked here, before any TFX component is built, so that a typo in a
config fails in a second with the file and the key named, not an hour into a run.
This module needs only PyYAML: the trainer and transform modules import it too.
"""

import dataclasses
import glob
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

COLUMN_TYPES = ('int', 'float', 'string')
SIDES = ('user', 'item')
# Each step updates only the rows the batch touched, so its cost does not grow with the
# tables; adam is the lazy Adam of modules/lazy_adam.py, as on TPUs.
OPTIMIZERS = ('adagrad', 'adam', 'sgd')
# How the Trainer reads Transform's output: columnar blocks (ColumnarExamplesGen) or
# the tf.Examples themselves, parsed row by row.
INPUT_FORMATS = ('columnar', 'tf_example')
DIRECT_RUNNING_MODES = ('in_memory', 'multi_threading', 'multi_processing')
LABEL_OPERATORS = ('>=', '>', '<=', '<', '==', '!=')
# Vertex AI's accelerator types (google.cloud.aiplatform_v1.AcceleratorType; a test keeps
# this list within the installed enum) for the Trainer's custom job.
TPU_ACCELERATORS = ('TPU_V2', 'TPU_V3', 'TPU_V4_POD', 'TPU_V5_LITEPOD')
GPU_ACCELERATORS = ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                    'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_A100', 'NVIDIA_A100_80GB', 'NVIDIA_L4',
                    'NVIDIA_H100_80GB', 'NVIDIA_H100_MEGA_80GB', 'NVIDIA_H200_141GB')
# Vertex machine types that come with their TPU chips (TPU VMs: v5e, v5p, v6e).
TPU_VM_MACHINE_PREFIXES = ('ct5lp-', 'ct5p-', 'ct6e-')

# Label tensor name in the transformed data; the raw columns keep their own names.
LABEL_KEY = 'label'
# custom_config key under which Transform and the Trainer receive ModelInputs.to_dict().
MODEL_INPUTS_KEY = 'model_inputs'

_NAME_PATTERN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_CONDITION_PATTERN = re.compile(r'^\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(\.\d*)?|[-+]?\.\d+)\s*$')


class ConfigError(ValueError):
  """A config that cannot describe a run; the message names the file and the key."""

  def __init__(self, source: str, key: str, problem: str):
    super().__init__(f'{source}: {key}: {problem}')
    self.source = source
    self.key = key


@dataclasses.dataclass(frozen=True)
class LabelSpec:
  """How the 0/1 training label is derived from a raw column, e.g. `rating >= 4`."""
  column: str
  operator: str
  threshold: float

  @property
  def expression(self) -> str:
    return f'{self.column} {self.operator} {self.threshold:g}'


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """One id column hashed into its own embedding table."""
  name: str
  column_type: str
  hash: bool
  vocab_size: int
  embedding_dim: int
  belongs_to: str


@dataclasses.dataclass(frozen=True)
class ModelInputs:
  """What Transform and the Trainer need: the features and the label, nothing else.

  Kept separate from the run's paths and options so that it can travel through a
  component's `custom_config` without tying the component's cache key to them.
  """
  features: Tuple[FeatureSpec, ...]
  label: LabelSpec

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> 'ModelInputs':
    return cls(
        features=tuple(FeatureSpec(**f) for f in data['features']),
        label=LabelSpec(**data['label']))

  def side(self, belongs_to: str) -> Tuple[FeatureSpec, ...]:
    return tuple(f for f in self.features if f.belongs_to == belongs_to)


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  columns: Dict[str, str]
  label: LabelSpec
  split: Dict[str, int]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  batch_size: int
  epochs: Optional[int]
  steps: Optional[int]
  learning_rate: float
  optimizer: str
  seed: int
  # Penalty on the squared norm of the looked-up embedding rows (user and item side).
  l2_regularization: float
  # '' trains on CPU/GPU; 'local' uses the TPU attached to this VM; else a TPU name.
  tpu: str
  input_format: str = 'columnar'

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> 'TrainingConfig':
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
  min_auc: float
  max_auc_regression: float
  slice_by: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PathsConfig:
  input: str
  schema: Optional[str]
  output_root: str
  serving_dir: str

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_root, 'pipeline_root')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_root, 'metadata.sqlite')


@dataclasses.dataclass(frozen=True)
class BeamConfig:
  direct_running_mode: str
  direct_num_workers: int
  extra_args: Tuple[str, ...]

  def pipeline_args(self) -> List[str]:
    return [
        f'--direct_running_mode={self.direct_running_mode}',
        f'--direct_num_workers={self.direct_num_workers}',
        *self.extra_args,
    ]


@dataclasses.dataclass(frozen=True)
class VertexTrainerConfig:
  """The machines of the Trainer's Vertex AI custom job."""
  machine_type: str
  accelerator_type: Optional[str]
  accelerator_count: int
  tpu_topology: Optional[str]
  # 1 trains on one machine; N > 1 adds N - 1 identical workers (multi-worker strategy).
  replica_count: int
  # Defaults to the pipeline image; TPU jobs need one built with tensorflow-tpu.
  image: Optional[str]

  @property
  def uses_tpu(self) -> bool:
    return (self.accelerator_type in TPU_ACCELERATORS
            or self.machine_type.startswith(TPU_VM_MACHINE_PREFIXES))


@dataclasses.dataclass(frozen=True)
class DataflowConfig:
  """Where the Beam components run on Google Cloud (Dataflow) instead of in their pod."""
  temp_location: str
  region: Optional[str]
  machine_type: str
  max_workers: int
  disk_size_gb: Optional[int]


@dataclasses.dataclass(frozen=True)
class EndpointConfig:
  """A Vertex AI Endpoint the Pusher deploys the blessed model to."""
  name: str
  serving_image: str
  machine_type: str
  min_replicas: int
  max_replicas: int


@dataclasses.dataclass(frozen=True)
class VertexConfig:
  """Google Cloud settings; only vertex_runner.py reads them."""
  project: str
  region: str
  image: Optional[str]
  service_account: Optional[str]
  trainer: VertexTrainerConfig
  dataflow: Optional[DataflowConfig]
  endpoint: Optional[EndpointConfig]


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """A whole run, as described by one YAML file."""
  source: str
  pipeline_name: str
  dataset: DatasetConfig
  features: Tuple[FeatureSpec, ...]
  training: TrainingConfig
  evaluation: EvaluationConfig
  paths: PathsConfig
  beam: BeamConfig
  vertex: Optional[VertexConfig] = None

  @property
  def model_inputs(self) -> ModelInputs:
    return ModelInputs(features=self.features, label=self.dataset.label)


class _Section:
  """Reads one YAML mapping, remembering where it is so errors can say so."""

  def __init__(self, source: str, key: str, value: Any):
    if not isinstance(value, dict):
      raise ConfigError(source, key or '<top level>',
                        f'must be a mapping, got {_describe(value)}')
    self.source = source
    self.key = key
    self._values = dict(value)
    self._allowed = set()

  def path(self, name: str) -> str:
    return f'{self.key}.{name}' if self.key else str(name)

  def error(self, name: str, problem: str) -> ConfigError:
    return ConfigError(self.source, self.path(name), problem)

  def get(self, name: str, kind: str, default: Any = ..., choices=None) -> Any:
    self._allowed.add(name)
    if name not in self._values or self._values[name] is None:
      if default is ...:
        raise self.error(name, f'is required ({_KIND_TEXT[kind]})')
      return default
    value = _check_kind(self._values[name], kind)
    if value is _BAD:
      raise self.error(name, f'must be {_KIND_TEXT[kind]}, got '
                       f'{_describe(self._values[name])}')
    if choices is not None and value not in choices:
      raise self.error(name, f'must be one of {", ".join(choices)}, got {value!r}')
    return value

  def section(self, name: str, default: Any = ...) -> '_Section':
    self._allowed.add(name)
    value = self._values.get(name)
    if value is None:
      if default is ...:
        raise self.error(name, 'is required (a mapping)')
      value = default
    return _Section(self.source, self.path(name), value)

  def optional_section(self, name: str) -> Optional['_Section']:
    """The named mapping, or None when the key is absent or null."""
    self._allowed.add(name)
    return None if self._values.get(name) is None else self.section(name)

  def items(self):
    return self._values.items()

  def finish(self) -> None:
    unknown = sorted(set(self._values) - self._allowed, key=str)
    if unknown:
      raise self.error(unknown[0], 'unknown key; expected one of '
                       + ', '.join(sorted(self._allowed)))


_BAD = object()
_KIND_TEXT = {
    'str': 'a non-empty string',
    'int': 'an integer',
    'positive_int': 'a positive integer',
    'number': 'a number',
    'bool': 'true or false',
    'str_list': 'a list of strings',
}


def _check_kind(value: Any, kind: str) -> Any:
  """Returns the value if it is of the kind, else _BAD. bool is never a number."""
  if kind == 'str':
    ok = isinstance(value, str) and value.strip() != ''
  elif kind == 'int':
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif kind == 'positive_int':
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
  elif kind == 'number':
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    value = float(value) if ok else value
  elif kind == 'bool':
    ok = isinstance(value, bool)
  elif kind == 'str_list':
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    value = tuple(value) if ok else value
  else:
    raise AssertionError(kind)
  return value if ok else _BAD


def _describe(value: Any) -> str:
  return f'{type(value).__name__} {value!r}' if value is not None else 'nothing'


def _resolve(base_dir: str, path: str) -> str:
  """Relative paths are relative to the config file; URIs (gs://...) stay as they are."""
  if '://' in path or os.path.isabs(path):
    return path
  return os.path.normpath(os.path.join(base_dir, path))


def _parse_label(dataset: _Section, columns: Mapping[str, str]) -> LabelSpec:
  label = dataset.section('label')
  column = label.get('column', 'str')
  condition = label.get('positive_when', 'str')
  label.finish()
  if column not in columns:
    raise label.error('column', f'{column!r} is not a dataset column '
                      f'({", ".join(columns)})')
  if columns[column] == 'string':
    raise label.error('column', f'{column!r} is a string column; the label must be '
                      'derived from an int or float column')
  match = _CONDITION_PATTERN.match(condition)
  if not match:
    raise label.error('positive_when', f'must be an operator ({" ".join(LABEL_OPERATORS)}) '
                      f'followed by a number, like ">= 4"; got {condition!r}')
  return LabelSpec(column=column, operator=match.group(1), threshold=float(match.group(2)))


def _parse_dataset(top: _Section) -> DatasetConfig:
  dataset = top.section('dataset')
  columns_section = dataset.section('columns')
  columns = {}
  for name, column_type in columns_section.items():
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
      raise columns_section.error(name, 'column names must be identifiers '
                                  '(letters, digits, underscores)')
    columns[name] = columns_section.get(name, 'str', choices=COLUMN_TYPES)
  if not columns:
    raise dataset.error('columns', 'must list at least one column')
  label = _parse_label(dataset, columns)
  split_section = dataset.section('split', default={'train': 4, 'eval': 1})
  split = {name: split_section.get(name, 'positive_int') for name in ('train', 'eval')}
  split_section.finish()
  dataset.finish()
  return DatasetConfig(columns=columns, label=label, split=split)


def _parse_features(top: _Section, dataset: DatasetConfig) -> Tuple[FeatureSpec, ...]:
  section = top.section('features')
  features = []
  for name, _ in list(section.items()):
    feature = section.section(name)
    spec = FeatureSpec(
        name=name,
        column_type=dataset.columns.get(name, ''),
        hash=feature.get('hash', 'bool', default=True),
        vocab_size=feature.get('vocab_size', 'positive_int'),
        embedding_dim=feature.get('embedding_dim', 'positive_int'),
        belongs_to=feature.get('belongs_to', 'str', choices=SIDES))
    feature.finish()
    if name not in dataset.columns:
      raise section.error(name, f'is not a dataset column; columns are '
                          f'{", ".join(dataset.columns)}')
    if name == dataset.label.column:
      raise section.error(name, 'is the label column and cannot also be a feature')
    if spec.column_type == 'float':
      raise section.error(name, 'is a float column; id features must be int or string')
    if not spec.hash and spec.column_type != 'int':
      raise feature.error('hash', 'false needs an int column holding ids in '
                          '[0, vocab_size); string ids must be hashed')
    # The last unit of every embedding is the bias, so one unit alone has no factors.
    if spec.embedding_dim < 2:
      raise feature.error('embedding_dim', 'must be at least 2: the last unit is the '
                          f'bias, the rest are the factors; got {spec.embedding_dim}')
    features.append(spec)
  for side in SIDES:
    if not any(f.belongs_to == side for f in features):
      raise top.error('features', f'needs at least one feature with belongs_to: {side}')
  user_units, item_units = (sum(f.embedding_dim for f in features if f.belongs_to == side)
                             for side in SIDES)
  # Each side's embeddings are concatenated and the two sides meet in one dot product.
  if user_units != item_units:
    raise top.error('features', 'the embedding_dim of the user features must add up to '
                    f'that of the item features (user {user_units}, item {item_units})')
  return tuple(features)


def _parse_training(top: _Section) -> TrainingConfig:
  section = top.section('training')
  training = TrainingConfig(
      batch_size=section.get('batch_size', 'positive_int'),
      epochs=section.get('epochs', 'positive_int', default=None),
      steps=section.get('steps', 'positive_int', default=None),
      learning_rate=section.get('learning_rate', 'number'),
      optimizer=section.get('optimizer', 'str', choices=OPTIMIZERS),
      seed=section.get('seed', 'int', default=42),
      l2_regularization=section.get('l2_regularization', 'number', default=0.0),
      tpu=section.get('tpu', 'str', default=''),
      input_format=section.get('input_format', 'str', default='columnar',
                               choices=INPUT_FORMATS))
  section.finish()
  if training.l2_regularization < 0:
    raise section.error('l2_regularization', 'must be zero or positive')
  if (training.epochs is None) == (training.steps is None):
    raise section.error('epochs', 'give exactly one of epochs or steps')
  if training.learning_rate <= 0:
    raise section.error('learning_rate', f'must be positive, got {training.learning_rate:g}')
  return training


def _parse_evaluation(top: _Section, dataset: DatasetConfig) -> EvaluationConfig:
  section = top.section('evaluation')
  evaluation = EvaluationConfig(
      min_auc=section.get('min_auc', 'number'),
      max_auc_regression=section.get('max_auc_regression', 'number', default=0.01),
      slice_by=section.get('slice_by', 'str_list', default=()))
  section.finish()
  if not 0.0 <= evaluation.min_auc <= 1.0:
    raise section.error('min_auc', f'must be within [0, 1], got {evaluation.min_auc:g}')
  if evaluation.max_auc_regression < 0:
    raise section.error('max_auc_regression', 'must be zero or positive')
  for column in evaluation.slice_by:
    if column not in dataset.columns:
      raise section.error('slice_by', f'{column!r} is not a dataset column')
  return evaluation


def _parse_paths(top: _Section, base_dir: str) -> PathsConfig:
  section = top.section('paths')
  schema = section.get('schema', 'str', default=None)
  output_root = _resolve(base_dir, section.get('output_root', 'str'))
  paths = PathsConfig(
      input=_resolve(base_dir, section.get('input', 'str')),
      schema=_resolve(base_dir, schema) if schema else None,
      output_root=output_root,
      serving_dir=_resolve(base_dir, section.get(
          'serving_dir', 'str', default=os.path.join(output_root, 'serving'))))
  section.finish()
  return paths


def _parse_beam(top: _Section) -> BeamConfig:
  section = top.section('beam', default={})
  beam = BeamConfig(
      direct_running_mode=section.get('direct_running_mode', 'str', default='in_memory',
                                      choices=DIRECT_RUNNING_MODES),
      direct_num_workers=section.get('direct_num_workers', 'int', default=1),
      extra_args=section.get('extra_args', 'str_list', default=()))
  section.finish()
  if beam.direct_num_workers < 0:
    raise section.error('direct_num_workers', 'must be 0 (one per core) or more')
  return beam


def _parse_vertex_trainer(vertex: _Section) -> VertexTrainerConfig:
  section = vertex.section('trainer', default={})
  trainer = VertexTrainerConfig(
      machine_type=section.get('machine_type', 'str', default='n1-standard-8'),
      accelerator_type=section.get('accelerator_type', 'str', default=None),
      accelerator_count=section.get('accelerator_count', 'positive_int', default=1),
      tpu_topology=section.get('tpu_topology', 'str', default=None),
      replica_count=section.get('replica_count', 'positive_int', default=1),
      image=section.get('image', 'str', default=None))
  section.finish()
  accelerator = trainer.accelerator_type
  if accelerator is not None and accelerator not in TPU_ACCELERATORS + GPU_ACCELERATORS:
    raise section.error('accelerator_type', f'unknown accelerator {accelerator!r}; Vertex AI '
                        f'offers {", ".join(TPU_ACCELERATORS + GPU_ACCELERATORS)}')
  if trainer.machine_type == 'cloud-tpu' and accelerator not in TPU_ACCELERATORS:
    raise section.error('accelerator_type', 'machine_type cloud-tpu needs a TPU accelerator '
                        f'({", ".join(TPU_ACCELERATORS)}), got {accelerator!r}')
  if accelerator in TPU_ACCELERATORS and trainer.machine_type != 'cloud-tpu':
    raise section.error('machine_type', f'{accelerator} runs on machine_type cloud-tpu, '
                        f'got {trainer.machine_type!r}')
  if trainer.uses_tpu and trainer.replica_count != 1:
    # One TPU host drives the whole slice; a bigger slice is a bigger topology.
    raise section.error('replica_count', 'must be 1 on TPUs (choose a larger TPU instead), '
                        f'got {trainer.replica_count}')
  return trainer


def _parse_dataflow(vertex: _Section) -> Optional[DataflowConfig]:
  section = vertex.optional_section('dataflow')
  if section is None:
    return None
  dataflow = DataflowConfig(
      temp_location=section.get('temp_location', 'str'),
      region=section.get('region', 'str', default=None),
      machine_type=section.get('machine_type', 'str', default='n1-standard-4'),
      max_workers=section.get('max_workers', 'positive_int', default=4),
      disk_size_gb=section.get('disk_size_gb', 'positive_int', default=None))
  section.finish()
  if not dataflow.temp_location.startswith('gs://'):
    raise section.error('temp_location', f'must be a gs:// URI, got {dataflow.temp_location!r}')
  return dataflow


def _parse_endpoint(vertex: _Section) -> Optional[EndpointConfig]:
  section = vertex.optional_section('endpoint')
  if section is None:
    return None
  endpoint = EndpointConfig(
      name=section.get('name', 'str'),
      serving_image=section.get('serving_image', 'str'),
      machine_type=section.get('machine_type', 'str', default='n1-standard-2'),
      min_replicas=section.get('min_replicas', 'positive_int', default=1),
      max_replicas=section.get('max_replicas', 'positive_int', default=1))
  section.finish()
  if endpoint.max_replicas < endpoint.min_replicas:
    raise section.error('max_replicas', f'must be at least min_replicas '
                        f'({endpoint.min_replicas}), got {endpoint.max_replicas}')
  return endpoint


def _parse_vertex(top: _Section) -> Optional[VertexConfig]:
  section = top.optional_section('vertex')
  if section is None:
    return None
  vertex = VertexConfig(
      project=section.get('project', 'str'),
      region=section.get('region', 'str'),
      image=section.get('image', 'str', default=None),
      service_account=section.get('service_account', 'str', default=None),
      trainer=_parse_vertex_trainer(section),
      dataflow=_parse_dataflow(section),
      endpoint=_parse_endpoint(section))
  section.finish()
  return vertex


def parse_config(data: Any, source: str, base_dir: str) -> RunConfig:
  """Validates an already-loaded YAML document; `source` names it in errors."""
  top = _Section(source, '', data)
  pipeline_name = top.get('pipeline_name', 'str')
  if not re.match(r'^[a-z0-9][a-z0-9-]*$', pipeline_name):
    # Vertex AI and MLMD both accept this form; anything else fails later, far away.
    raise top.error('pipeline_name', 'must be lower-case letters, digits and dashes, '
                    f'got {pipeline_name!r}')
  dataset = _parse_dataset(top)
  config = RunConfig(
      source=source,
      pipeline_name=pipeline_name,
      dataset=dataset,
      features=_parse_features(top, dataset),
      training=_parse_training(top),
      evaluation=_parse_evaluation(top, dataset),
      paths=_parse_paths(top, base_dir),
      beam=_parse_beam(top),
      vertex=_parse_vertex(top))
  top.finish()
  return config


def _read_yaml(path: str) -> Any:
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except OSError as e:
    raise ConfigError(path, '<file>', f'cannot be read: {e.strerror}') from None
  try:
    # safe_load refuses !!python/... tags, so a config can never run code.
    return yaml.safe_load(text)
  except yaml.YAMLError as e:
    raise ConfigError(path, '<yaml>', f'is not valid YAML: {e}') from None


def _merged(base: Any, override: Any) -> Any:
  """`override` on top of `base`: mappings merge key by key, anything else replaces."""
  if isinstance(base, dict) and isinstance(override, dict):
    merged = dict(base)
    for key, value in override.items():
      merged[key] = _merged(base.get(key), value)
    return merged
  return override


def _read_with_bases(path: str, chain: Tuple[str, ...] = ()) -> Any:
  """The YAML document at `path` with the config it `extends` (recursively) underneath.

  A base's relative paths are made absolute against the base's own directory first,
  so that `paths` mean the same whichever file extends it.
  """
  path = os.path.abspath(path)
  if path in chain:
    raise ConfigError(chain[0], 'extends', 'forms a cycle: '
                      + ' -> '.join(chain + (path,)))
  data = _read_yaml(path)
  if not isinstance(data, dict) or 'extends' not in data:
    return data
  data = dict(data)
  base_name = data.pop('extends')
  if not isinstance(base_name, str) or not base_name.strip():
    raise ConfigError(path, 'extends', f'must be the path of another config, got '
                      f'{_describe(base_name)}')
  base_path = os.path.join(os.path.dirname(path), base_name)
  if not os.path.exists(base_path):
    raise ConfigError(path, 'extends', f'no such file: {base_path}')
  base = _read_with_bases(base_path, chain + (path,))
  if isinstance(base, dict) and isinstance(base.get('paths'), dict):
    base_dir = os.path.dirname(os.path.abspath(base_path))
    base = {**base, 'paths': {key: _resolve(base_dir, value) if isinstance(value, str)
                              else value for key, value in base['paths'].items()}}
  return _merged(base, data)


def load_config(path: str) -> RunConfig:
  """Reads and validates a run config; raises ConfigError naming the file and key.

  A config may start with `extends: other.yaml` and give only what differs from it.
  """
  data = _read_with_bases(path)
  return parse_config(data, source=path, base_dir=os.path.dirname(os.path.abspath(path)))


def check_inputs_exist(config: RunConfig) -> List[str]:
  """The input files the glob matches; a glob that matches nothing is a config error."""
  if '://' in config.paths.input:
    return [config.paths.input]
  files = sorted(glob.glob(config.paths.input))
  if not files:
    raise ConfigError(config.source, 'paths.input',
                      f'matches no files: {config.paths.input}')
  return files


def with_output_root(config: RunConfig, output_root: str) -> RunConfig:
  """The same run writing everything (metadata, artifacts, serving) under another root."""
  paths = dataclasses.replace(config.paths, output_root=output_root,
                              serving_dir=os.path.join(output_root, 'serving'))
  return dataclasses.replace(config, paths=paths)
