"""One YAML file describes a run; this module turns it into typed, validated objects.

Everything is checked here, before any TFX component is built, so that a typo in a
config fails in a second with the file and the key named, not an hour into a run:

    configs/x.yaml: training.learning_rat: unknown key; did you mean learning_rate?

A config may start with `extends: other.yaml` and give only what differs; any key can
be overridden from the command line (`--set training.epochs=3`): config_files.py reads
the YAML, config_errors.py words the errors, vertex_config.py holds the `vertex:`
section. The JSON schema for editors comes from the same models:

    python -m pipeline.config schema --output configs/config.schema.json
    python -m pipeline.config check configs/movielens_100k.yaml --set training.epochs=3
"""

import argparse
import glob
import json
import os
import re
import sys
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple

import pydantic
import yaml

from contract.model_inputs import (KIND_OPTIONS, SIDES, ColumnType, FeatureOptions,
                                   FeatureSpec, LabelSpec, ModelInputs, PositiveInt,
                                   RetrievalOptions, StrictModel, Text, TrainingOptions,
                                   TuningOptions, problem_at)
from pipeline import config_files
from pipeline.config_errors import ConfigError, config_error
from pipeline.vertex_config import VertexConfig

_CONDITION = re.compile(r'^\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(\.\d*)?|[-+]?\.\d+)\s*$')
_IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


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
  """Hash buckets per split: train 4, eval 1 sends 4 of every 5 rows to train. Either
  `eval` (the Trainer validates and the Evaluator blesses on it) or `validation` (the
  Trainer's) and `test` (the Evaluator's only)."""
  train: PositiveInt = 4
  eval: Optional[PositiveInt] = None
  validation: Optional[PositiveInt] = None
  test: Optional[PositiveInt] = None

  @pydantic.model_validator(mode='after')
  def _two_or_three_splits(self) -> 'SplitConfig':
    if self.eval is not None and (self.validation is not None or self.test is not None):
      raise problem_at('eval', 'give eval (two splits) or validation and test (three), '
                       'not both')
    if (self.validation is None) != (self.test is None):
      raise problem_at('test' if self.test is None else 'validation',
                       'validation and test come together (or give eval alone)')
    return self

  def buckets(self) -> Dict[str, int]:
    """Split name -> hash buckets, in split order."""
    if self.validation is None:
      return {'train': self.train, 'eval': self.eval or 1}
    return {'train': self.train, 'validation': self.validation, 'test': self.test}


Fraction = Annotated[float, pydantic.Field(strict=True, gt=0, lt=1)]


class TimeSplitConfig(StrictModel):
  """Train on the past, validate and test on what came after: the latest `test` share of
  rows by `column` are test, the `validation` share before them validation."""
  column: Text
  validation: Fraction
  test: Fraction

  @pydantic.model_validator(mode='after')
  def _leaves_rows_to_train_on(self) -> 'TimeSplitConfig':
    if self.validation + self.test >= 1:
      raise problem_at('test', f'validation + test must leave rows to train on, got '
                       f'{self.validation} + {self.test}')
    return self


class DatasetConfig(StrictModel):
  columns: Annotated[Dict[str, ColumnType], pydantic.Field(min_length=1)]
  label: LabelConfig
  split: SplitConfig = SplitConfig()
  # Instead of `split`: by time, into train, validation and test.
  split_by_time: Optional[TimeSplitConfig] = None
  # The character between fields: "," (CSV), "\t" (tab-separated), ";" ...
  delimiter: Annotated[str, pydantic.Field(min_length=1, max_length=1)] = ','

  @property
  def split_names(self) -> Tuple[str, ...]:
    if self.split_by_time is not None:
      return ('train', 'validation', 'test')
    return tuple(self.split.buckets())

  @property
  def validation_split(self) -> str:
    """The split the Trainer validates on."""
    return 'validation' if 'validation' in self.split_names else 'eval'

  @property
  def test_split(self) -> str:
    """The split the Evaluator scores and blesses on."""
    return 'test' if 'test' in self.split_names else 'eval'

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
    if self.split_by_time is not None:
      if 'split' in self.model_fields_set:
        raise problem_at('split_by_time', 'give split (by hash) or split_by_time, not both')
      time = self.split_by_time.column
      if self.columns.get(time) not in ('int', 'float'):
        raise problem_at('split_by_time.column', f'{time!r} must be an int or float '
                         f'column of dataset.columns (e.g. a unix timestamp)')
    return self


class EvaluationConfig(StrictModel):
  min_auc: Annotated[float, pydantic.Field(strict=True, ge=0, le=1)]
  max_auc_regression: Annotated[float, pydantic.Field(strict=True, ge=0)] = 0.01
  slice_by: Tuple[Text, ...] = ()


class StatisticsConfig(StrictModel):
  """How StatisticsGen reads the data."""
  # The share of rows StatisticsGen reads (TFDV's sample_rate), for inputs so large
  # that reading all of them is slow; the anomaly checks then see the sample. Absent:
  # every row.
  sample_rate: Optional[Annotated[float, pydantic.Field(strict=True, gt=0, le=1)]] = None


class ValidationConfig(StrictModel):
  """What anomalies in the data (ExampleValidator against the schema) do to a run."""
  # fail: the run stops before Transform, a line per anomaly, exit 1; warn: it goes on.
  on_anomalies: Literal['fail', 'warn'] = 'fail'


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
    resolved = {key: config_files.resolve_path(base_dir, value) if isinstance(value, str) and value.strip()
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
  # One process: at 100K and 1M rows two worker processes made the whole run 1.4x
  # slower on two cores (bench/README.md, "Beam mode").
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


# The column types each feature kind reads.
_KIND_COLUMN_TYPES = {
    'hash': ('int', 'string'),
    'vocabulary': ('int', 'string'),
    'multi_hot': ('string',),
    'numeric': ('int', 'float'),
}
_KIND_HINTS = {'float': '; a number is embedded by kind: numeric (quantile buckets)',
               'int': '; a list of values is a delimited string column'}


class RunConfig(StrictModel):
  """A whole run, as described by one YAML file."""
  # Vertex AI and ML Metadata both accept this form; anything else fails later, far away.
  pipeline_name: Annotated[Text, pydantic.Field(pattern=r'^[a-z0-9][a-z0-9-]*$')]
  dataset: DatasetConfig
  # Each id column that gets an embedding table, by column name.
  features: Dict[str, FeatureOptions]
  training: TrainingOptions
  # Hyperparameter search before training (TFX's Tuner); absent: the training options.
  tuning: Optional[TuningOptions] = None
  # How the pushed model's top_k searches the item catalogue.
  retrieval: RetrievalOptions = RetrievalOptions()
  evaluation: EvaluationConfig
  statistics: StatisticsConfig = StatisticsConfig()
  validation: ValidationConfig = ValidationConfig()
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

  def _check_shared_tables(self) -> None:
    """Features sharing a table (`table: genres`, or `table: movieId` for movieId's own)
    must agree on how values become its rows."""
    first_of_table: Dict[str, str] = {}
    for name, feature in self.features.items():
      first_name = first_of_table.setdefault(feature.table or name, name)
      first = self.features[first_name]
      # The delimiter is how one column writes its values, not part of the table.
      for option in ('kind',) + tuple(o for o in KIND_OPTIONS[first.kind] if o != 'delimiter'):
        if getattr(feature, option) != getattr(first, option):
          raise problem_at(f'features.{name}.{option}', f'shares table '
                           f'{feature.table or name!r} with {first_name}, whose {option} is '
                           f'{getattr(first, option)!r}; features sharing a table need the '
                           'same kind and options')

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
      column_type = columns[name]
      if column_type not in _KIND_COLUMN_TYPES[feature.kind]:
        raise problem_at(f'features.{name}', f'is a {column_type} column; kind '
                         f'{feature.kind} takes {" or ".join(_KIND_COLUMN_TYPES[feature.kind])} '
                         'columns' + _KIND_HINTS.get(column_type, ''))
      if not feature.hash and column_type != 'int':
        raise problem_at(f'features.{name}.hash', 'false needs an int column holding ids '
                         'in [0, vocab_size); string ids must be hashed')
    for side in SIDES:
      if not any(f.belongs_to == side for f in self.features.values()):
        raise problem_at('features', f'needs at least one feature with belongs_to: {side}')
    # Each tower sums its features' embeddings, and the towers meet in one dot product.
    dims = {name: f.embedding_dim for name, f in self.features.items()}
    if len(set(dims.values())) > 1:
      raise problem_at('features', 'every feature needs the same embedding_dim (each tower '
                       'is the sum of its features\' embeddings); got ' + ', '.join(
                           f'{name} {dim}' for name, dim in dims.items()))
    self._check_shared_tables()
    if self.tuning is not None and not self.tuning.search_space():
      raise problem_at('tuning', 'lists no option to search (learning_rate, '
                       'l2_regularization, embedding_dim, batch_size, optimizer)')
    if self.retrieval.index == 'scann' and self.training.input_format != 'columnar':
      raise problem_at('retrieval.index', 'scann needs training.input_format: columnar '
                       '(the item catalogue is gathered by ColumnarExamplesGen)')
    for column in self.evaluation.slice_by:
      if column not in columns:
        raise problem_at('evaluation.slice_by', f'{column!r} is not a dataset column')
    return self



def parse_config(data: Any, source: str, base_dir: str) -> RunConfig:
  """Validates an already-loaded YAML document; `source` names it in errors."""
  try:
    config = RunConfig.model_validate(data, context={'base_dir': base_dir})
  except pydantic.ValidationError as e:
    raise config_error(e, source, RunConfig) from None
  # A private attribute: frozen covers only the fields, and model_copy keeps it.
  config._source = source
  return config


def load_config(path: str, overrides: Sequence[str] = ()) -> RunConfig:
  """Reads and validates a run config; raises ConfigError naming the file and key.

  `overrides` are `key.path=value` settings applied on top of the file (`--set`).
  """
  data = config_files.read_document(path, overrides)
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
  return config.model_copy(update={'paths': paths})


def json_schema() -> Dict[str, Any]:
  """The config's JSON schema, for editors (e.g. a `# yaml-language-server: $schema=`
  line); `extends` is read before validation, so it is added here."""
  schema = RunConfig.model_json_schema(by_alias=True)
  schema['properties']['extends'] = {
      'type': 'string', 'title': 'Extends',
      'description': 'Another config (relative to this file) this one overrides key by key.'}
  schema['title'] = 'Ranker run config'
  return schema


def add_override_argument(parser: argparse.ArgumentParser) -> None:
  """`--set key.path=value`, repeatable, as every command taking a config offers it."""
  parser.add_argument('--set', dest='overrides', action='append', default=[],
                      metavar='KEY=VALUE', help='override a config key, e.g. '
                      'training.epochs=3 (repeatable; values are read as YAML)')


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m pipeline.config',
                                   description='Check a run config or write its JSON schema.')
  commands = parser.add_subparsers(dest='command', required=True)
  check = commands.add_parser('check', help='validate a config and print it resolved')
  check.add_argument('config')
  add_override_argument(check)
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
