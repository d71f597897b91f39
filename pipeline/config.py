"""One YAML file describes a run; this module turns it into typed, validated objects.

Everything is checked here, before any TFX component is built, so that a typo in a
config fails in a second with the file and the key named, not an hour into a run:

    configs/x.yaml: training.learning_rat: unknown key; did you mean learning_rate?

A config may start with `extends: other.yaml` and give only what differs; any key can
be overridden from the command line (`--set training.epochs=3`). The JSON schema for
editors comes from the same models:

    python -m pipeline.config schema --output configs/config.schema.json
    python -m pipeline.config check configs/movielens_100k.yaml --set training.epochs=3
"""

import argparse
import difflib
import glob
import json
import os
import re
import sys
import typing
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple

import pydantic
import yaml

from contract.model_inputs import (SIDES, ColumnType, FeatureOptions, FeatureSpec, LabelSpec,
                                   ModelInputs, PositiveInt, StrictModel, TrainingOptions,
                                   problem_at)

# Vertex AI's accelerator types (google.cloud.aiplatform_v1.AcceleratorType; a test keeps
# these within the installed enum) for the Trainer's custom job.
TpuAccelerator = Literal['TPU_V2', 'TPU_V3', 'TPU_V4_POD', 'TPU_V5_LITEPOD']
GpuAccelerator = Literal['NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                         'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_A100', 'NVIDIA_A100_80GB',
                         'NVIDIA_L4', 'NVIDIA_H100_80GB', 'NVIDIA_H100_MEGA_80GB',
                         'NVIDIA_H200_141GB']
TPU_ACCELERATORS: Tuple[str, ...] = TpuAccelerator.__args__
GPU_ACCELERATORS: Tuple[str, ...] = GpuAccelerator.__args__
# Vertex machine types that come with their TPU chips (TPU VMs: v5e, v5p, v6e).
TPU_VM_MACHINE_PREFIXES = ('ct5lp-', 'ct5p-', 'ct6e-')

_CONDITION = re.compile(r'^\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(\.\d*)?|[-+]?\.\d+)\s*$')
_IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
Text = Annotated[str, pydantic.StringConstraints(strict=True, strip_whitespace=True,
                                                  min_length=1)]


class ConfigError(ValueError):
  """A config that cannot describe a run; the message names the file and the key."""

  def __init__(self, source: str, key: str, problem: str):
    super().__init__(f'{source}: {key}: {problem}')
    self.source = source
    self.key = key



class LabelConfig(StrictModel):
  column: Text
  # An operator and a number, like ">= 4".
  positive_when: Text

  @pydantic.field_validator('positive_when')
  @classmethod
  def _is_condition(cls, value: str) -> str:
    if not _CONDITION.match(value):
      raise ValueError('must be an operator (>= > <= < == !=) followed by a number, '
                       f'like ">= 4"; got {value!r}')
    return value

  @property
  def spec(self) -> LabelSpec:
    match = _CONDITION.match(self.positive_when)
    return LabelSpec(column=self.column, operator=match.group(1),
                     threshold=float(match.group(2)))


class SplitConfig(StrictModel):
  """Hash buckets per split: 4 and 1 send 4 of every 5 rows to train."""
  train: PositiveInt = 4
  eval: PositiveInt = 1


class DatasetConfig(StrictModel):
  columns: Annotated[Dict[str, ColumnType], pydantic.Field(min_length=1)]
  label: LabelConfig
  split: SplitConfig = SplitConfig()

  @pydantic.field_validator('columns')
  @classmethod
  def _identifiers(cls, columns: Dict[str, str]) -> Dict[str, str]:
    for name in columns:
      if not _IDENTIFIER.match(name):
        raise problem_at(name, 'column names must be identifiers (letters, digits, '
                         'underscores)')
    return columns

  @pydantic.model_validator(mode='after')
  def _label_from_a_number(self) -> 'DatasetConfig':
    column = self.label.column
    if column not in self.columns:
      raise problem_at('label.column', f'{column!r} is not a dataset column '
                       f'({", ".join(self.columns)})')
    if self.columns[column] == 'string':
      raise problem_at('label.column', f'{column!r} is a string column; the label must '
                       'be derived from an int or float column')
    return self


class EvaluationConfig(StrictModel):
  min_auc: Annotated[float, pydantic.Field(strict=True, ge=0, le=1)]
  max_auc_regression: Annotated[float, pydantic.Field(strict=True, ge=0)] = 0.01
  slice_by: Tuple[Text, ...] = ()


class PathsConfig(StrictModel):
  """Relative paths are relative to the config file; URIs (gs://...) stay as they are."""
  input: Text
  # A curated raw schema (schema.pbtxt); without one, SchemaGen infers it.
  schema_file: Optional[Text] = pydantic.Field(None, alias='schema')
  output_root: Text
  serving_dir: Optional[Text] = None
  model_config = pydantic.ConfigDict(populate_by_name=True)

  @pydantic.model_validator(mode='before')
  @classmethod
  def _relative_to_the_config(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
    base_dir = (info.context or {}).get('base_dir')
    if not isinstance(data, dict) or base_dir is None:
      return data
    resolved = {key: _resolve(base_dir, value) if isinstance(value, str) and value.strip()
                else value for key, value in data.items()}
    if resolved.get('serving_dir') is None and isinstance(resolved.get('output_root'), str):
      resolved['serving_dir'] = os.path.join(resolved['output_root'], 'serving')
    return resolved

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_root, 'pipeline_root')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_root, 'metadata.sqlite')


class BeamConfig(StrictModel):
  direct_running_mode: Literal['in_memory', 'multi_threading',
                               'multi_processing'] = 'in_memory'
  # 0 is one worker per core.
  direct_num_workers: Annotated[int, pydantic.Field(strict=True, ge=0)] = 1
  extra_args: Tuple[str, ...] = ()

  def pipeline_args(self) -> List[str]:
    return [
        f'--direct_running_mode={self.direct_running_mode}',
        f'--direct_num_workers={self.direct_num_workers}',
        *self.extra_args,
    ]


class VertexTrainerConfig(StrictModel):
  """The machines of the Trainer's Vertex AI custom job."""
  machine_type: Text = 'n1-standard-8'
  accelerator_type: Optional[Literal[TpuAccelerator, GpuAccelerator]] = None
  accelerator_count: PositiveInt = 1
  tpu_topology: Optional[Text] = None
  # 1 trains on one machine; N > 1 adds N - 1 identical workers (multi-worker strategy).
  replica_count: PositiveInt = 1
  # Defaults to the pipeline image; TPU jobs need one built with tensorflow-tpu.
  image: Optional[Text] = None

  @property
  def uses_tpu(self) -> bool:
    return (self.accelerator_type in TPU_ACCELERATORS
            or self.machine_type.startswith(TPU_VM_MACHINE_PREFIXES))

  @pydantic.model_validator(mode='after')
  def _machines_fit(self) -> 'VertexTrainerConfig':
    accelerator = self.accelerator_type
    if self.machine_type == 'cloud-tpu' and accelerator not in TPU_ACCELERATORS:
      raise problem_at('accelerator_type', 'machine_type cloud-tpu needs a TPU accelerator '
                       f'({", ".join(TPU_ACCELERATORS)}), got {accelerator!r}')
    if accelerator in TPU_ACCELERATORS and self.machine_type != 'cloud-tpu':
      raise problem_at('machine_type', f'{accelerator} runs on machine_type cloud-tpu, '
                       f'got {self.machine_type!r}')
    if self.uses_tpu and self.replica_count != 1:
      # One TPU host drives the whole slice; a bigger slice is a bigger topology.
      raise problem_at('replica_count', 'must be 1 on TPUs (choose a larger TPU '
                       f'instead), got {self.replica_count}')
    return self


class DataflowConfig(StrictModel):
  """Where the Beam components run on Google Cloud (Dataflow) instead of in their pod."""
  temp_location: Annotated[Text, pydantic.Field(pattern=r'^gs://')]
  region: Optional[Text] = None
  machine_type: Text = 'n1-standard-4'
  max_workers: PositiveInt = 4
  disk_size_gb: Optional[PositiveInt] = None


class EndpointConfig(StrictModel):
  """A Vertex AI Endpoint the Pusher deploys the blessed model to."""
  name: Text
  serving_image: Text
  machine_type: Text = 'n1-standard-2'
  min_replicas: PositiveInt = 1
  max_replicas: PositiveInt = 1

  @pydantic.model_validator(mode='after')
  def _replicas_ordered(self) -> 'EndpointConfig':
    if self.max_replicas < self.min_replicas:
      raise problem_at('max_replicas', f'must be at least min_replicas '
                       f'({self.min_replicas}), got {self.max_replicas}')
    return self


class VertexConfig(StrictModel):
  """Google Cloud settings; only vertex_runner.py reads them."""
  project: Text
  region: Text
  image: Optional[Text] = None
  service_account: Optional[Text] = None
  trainer: VertexTrainerConfig = VertexTrainerConfig()
  dataflow: Optional[DataflowConfig] = None
  endpoint: Optional[EndpointConfig] = None


class RunConfig(StrictModel):
  """A whole run, as described by one YAML file."""
  # Vertex AI and ML Metadata both accept this form; anything else fails later, far away.
  pipeline_name: Annotated[Text, pydantic.Field(pattern=r'^[a-z0-9][a-z0-9-]*$')]
  dataset: DatasetConfig
  # Each id column that gets an embedding table, by column name.
  features: Dict[str, FeatureOptions]
  training: TrainingOptions
  evaluation: EvaluationConfig
  paths: PathsConfig
  beam: BeamConfig = BeamConfig()
  vertex: Optional[VertexConfig] = None
  # The file it was read from, for error messages; not a YAML key.
  _source: str = pydantic.PrivateAttr('<config>')

  @property
  def source(self) -> str:
    return self._source

  @property
  def model_inputs(self) -> ModelInputs:
    return ModelInputs(
        features=tuple(FeatureSpec(name=name, column_type=self.dataset.columns[name],
                                   **options.model_dump())
                       for name, options in self.features.items()),
        label=self.dataset.label.spec)

  @pydantic.model_validator(mode='after')
  def _features_fit_the_data(self) -> 'RunConfig':
    columns = self.dataset.columns
    for name, feature in self.features.items():
      if name not in columns:
        raise problem_at(f'features.{name}', 'is not a dataset column; columns are '
                         + ', '.join(columns))
      if name == self.dataset.label.column:
        raise problem_at(f'features.{name}', 'is the label column and cannot also be a '
                         'feature')
      if columns[name] == 'float':
        raise problem_at(f'features.{name}', 'is a float column; id features must be int '
                         'or string')
      if not feature.hash and columns[name] != 'int':
        raise problem_at(f'features.{name}.hash', 'false needs an int column holding ids '
                         'in [0, vocab_size); string ids must be hashed')
    for side in SIDES:
      if not any(f.belongs_to == side for f in self.features.values()):
        raise problem_at('features', f'needs at least one feature with belongs_to: {side}')
    user_units, item_units = (
        sum(f.embedding_dim for f in self.features.values() if f.belongs_to == side)
        for side in SIDES)
    # Each side's embeddings are concatenated and the two sides meet in one dot product.
    if user_units != item_units:
      raise problem_at('features', 'the embedding_dim of the user features must add up '
                       f'to that of the item features (user {user_units}, item '
                       f'{item_units})')
    for column in self.evaluation.slice_by:
      if column not in columns:
        raise problem_at('evaluation.slice_by', f'{column!r} is not a dataset column')
    return self

  def with_source(self, source: str) -> 'RunConfig':
    self._source = source  # a private attribute: frozen covers only the fields
    return self


# Pydantic's errors, in the config's words. ---------------------------------------------

def _describe(value: Any) -> str:
  return f'{type(value).__name__} {value!r}' if value is not None else 'nothing'


def _choices(expected: str) -> str:
  """"'a', 'b' or 'c'" (pydantic's literal_error) -> 'a, b, c'."""
  return ', '.join(re.findall(r"'([^']*)'", expected)) or expected


def _unwrap(annotation: Any) -> Any:
  """The model class inside Optional[...], Annotated[...]."""
  while typing.get_origin(annotation) in (typing.Union, Annotated):
    annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
  return annotation


def _known_keys(loc: Tuple[Any, ...]) -> List[str]:
  """The keys the mapping at `loc` may hold, following the models from RunConfig."""
  model: Any = RunConfig
  path = list(loc)
  while path:
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
      return []
    fields = {f.alias or name: f for name, f in model.model_fields.items()}
    field = fields.get(path.pop(0))
    if field is None:
      return []
    model = _unwrap(field.annotation)
    if typing.get_origin(model) in (dict, Dict) and path:
      model = _unwrap(typing.get_args(model)[1])
      path.pop(0)
  if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
    return [f.alias or name for name, f in model.model_fields.items()]
  return []


def _problem(error: Dict[str, Any]) -> str:
  kind, ctx, value = error['type'], error.get('ctx') or {}, error.get('input')
  got = f', got {_describe(value)}'
  if kind == 'missing':
    return 'is required'
  if kind == 'extra_forbidden':
    known = _known_keys(error['loc'][:-1])
    close = difflib.get_close_matches(str(error['loc'][-1]), known, n=1, cutoff=0.6)
    if close:
      return f'unknown key; did you mean {close[0]}?'
    return 'unknown key; expected one of ' + ', '.join(sorted(known))
  if kind in ('model_type', 'dict_type', 'model_attributes_type'):
    return 'must be a mapping' + got
  if kind in ('int_type', 'int_parsing', 'int_from_float'):
    return 'must be an integer' + got
  if kind in ('float_type', 'float_parsing'):
    return 'must be a number' + got
  if kind in ('bool_type', 'bool_parsing'):
    return 'must be true or false' + got
  if kind in ('string_type',):
    return 'must be a string' + got
  if kind in ('list_type', 'tuple_type'):
    return 'must be a list' + got
  if kind == 'string_too_short':
    return 'must not be empty'
  if kind == 'too_short':
    return f'must have at least {ctx.get("min_length")} entries'
  if kind == 'literal_error':
    return f'must be one of {_choices(ctx["expected"])}' + got
  if kind == 'greater_than':
    return ('must be positive' if ctx['gt'] == 0 else f'must be greater than {ctx["gt"]}') + got
  if kind == 'greater_than_equal':
    return f'must be at least {ctx["ge"]}' + got
  if kind == 'less_than_equal':
    return f'must be at most {ctx["le"]}' + got
  if kind == 'string_pattern_mismatch':
    patterns = {r'^[a-z0-9][a-z0-9-]*$': 'lower-case letters, digits and dashes',
                r'^gs://': 'a gs:// URI'}
    return f'must be {patterns.get(ctx["pattern"], "like " + ctx["pattern"])}' + got
  if kind == 'problem_at':
    return ctx['message']
  if kind == 'value_error':
    return str(ctx.get('error', error['msg']))
  return error['msg']


def _key(error: Dict[str, Any]) -> str:
  loc = [str(part) for part in error['loc'] if part != '[key]']
  if error['type'] == 'problem_at':
    loc.append(error['ctx']['key'])
  return '.'.join(loc) or '<top level>'


def config_error(error: pydantic.ValidationError, source: str) -> ConfigError:
  """The one error a person should fix first: an unknown key explains a missing one."""
  errors = sorted(error.errors(), key=lambda e: e['type'] != 'extra_forbidden')
  return ConfigError(source, _key(errors[0]), _problem(errors[0]))


# Reading YAML. ---------------------------------------------------------------------------

def _resolve(base_dir: str, path: str) -> str:
  """Relative paths are relative to the config file; URIs (gs://...) stay as they are."""
  if '://' in path or os.path.isabs(path):
    return path
  return os.path.normpath(os.path.join(base_dir, path))


def parse_config(data: Any, source: str, base_dir: str) -> RunConfig:
  """Validates an already-loaded YAML document; `source` names it in errors."""
  try:
    config = RunConfig.model_validate(data, context={'base_dir': base_dir})
  except pydantic.ValidationError as e:
    raise config_error(e, source) from None
  return config.with_source(source)


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


def apply_overrides(data: Any, overrides: Sequence[str], source: str) -> Any:
  """`key.path=value` settings on top of a loaded document; values are read as YAML
  (`3` an integer, `0.1` a number, `true` a flag, `[a, b]` a list), so the models type
  them exactly as they type the file."""
  data = dict(data) if isinstance(data, dict) else {}
  for override in overrides:
    key, equals, text = override.partition('=')
    parts = key.strip().split('.')
    if not equals or not all(parts):
      raise ConfigError(source, f'--set {override}', 'must look like key.path=value, e.g. '
                        'training.epochs=3')
    try:
      value = yaml.safe_load(text)
    except yaml.YAMLError as e:
      raise ConfigError(source, f'--set {key}', f'is not a YAML value: {e}') from None
    mapping = data
    for depth, part in enumerate(parts[:-1]):
      child = mapping.get(part)
      if child is None:
        child = {}
      elif not isinstance(child, dict):
        raise ConfigError(source, f'--set {key}', f'{".".join(parts[:depth + 1])} is '
                          f'not a mapping in the config')
      mapping[part] = child = dict(child)
      mapping = child
    mapping[parts[-1]] = value
  return data


def load_config(path: str, overrides: Sequence[str] = ()) -> RunConfig:
  """Reads and validates a run config; raises ConfigError naming the file and key.

  `overrides` are `key.path=value` settings applied on top of the file (`--set`).
  """
  data = _read_with_bases(path)
  if overrides:
    data = apply_overrides(data, overrides, path)
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
  paths = config.paths.model_copy(update={
      'output_root': output_root, 'serving_dir': os.path.join(output_root, 'serving')})
  return config.model_copy(update={'paths': paths}).with_source(config.source)


def json_schema() -> Dict[str, Any]:
  """The config's JSON schema, for editors (e.g. a `# yaml-language-server: $schema=`
  line); `extends` is read before validation, so it is added here."""
  schema = RunConfig.model_json_schema(by_alias=True)
  schema['properties']['extends'] = {
      'type': 'string', 'title': 'Extends',
      'description': 'Another config (relative to this file) this one overrides key by key.'}
  schema['title'] = 'Ranker run config'
  return schema


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m pipeline.config',
                                   description='Check a run config or write its JSON schema.')
  commands = parser.add_subparsers(dest='command', required=True)
  check = commands.add_parser('check', help='validate a config and print it resolved')
  check.add_argument('config')
  check.add_argument('--set', dest='overrides', action='append', default=[],
                     metavar='KEY=VALUE', help='override a key, e.g. training.epochs=3')
  schema = commands.add_parser('schema', help='write the JSON schema of run configs')
  schema.add_argument('--output', help='file to write (default: standard output)')
  args = parser.parse_args(argv)
  if args.command == 'schema':
    text = json.dumps(json_schema(), indent=2) + '\n'
    if args.output:
      with open(args.output, 'w', encoding='utf-8') as f:
        f.write(text)
    else:
      sys.stdout.write(text)
    return 0
  try:
    config = load_config(args.config, args.overrides)
  except ConfigError as e:
    print(f'config: {e}', file=sys.stderr)
    return 2
  print(yaml.safe_dump(config.model_dump(mode='json', by_alias=True), sort_keys=False),
        end='')
  return 0


if __name__ == '__main__':
  sys.exit(main())
