"""RunConfig: one YAML file describing a run, as typed, validated objects.

Everything is checked here, before any TFX component is built, so that a typo in a
config fails in a second with the file and the key named, not an hour into a run:

    configs/x.yaml: training.learning_rat: unknown key; did you mean learning_rate?

A config may start with `extends: other.yaml` and give only what differs; any key can
be overridden from the command line (`--set training.epochs=3`): files.py reads the
YAML, errors.py words the errors; sections.py says where each section is defined.
"""

import argparse
import glob
import os
from typing import Annotated, Any, Dict, List, Optional, Sequence

import pydantic

from contract.base import StrictModel, Text, problem_at
from contract.feature_kinds import SIDES, FeatureOptions, kind_of
from contract.model_inputs import Feature, ModelInputs
from contract.options import TUNED_OPTIONS, RetrievalOptions, TrainingOptions, TuningOptions
from pipeline import paths
from pipeline import spans
from pipeline.config import files as config_files
from pipeline.config.errors import ConfigError, config_error
from pipeline.config.sections import (BeamConfig, DatasetConfig, EvaluationConfig, PathsConfig,
                                      StatisticsConfig, ValidationConfig, default_serving_dir)
from pipeline.config.vertex import VertexConfig

# What to use instead, for a column type a feature's kind does not read.
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
        features=tuple(Feature(name=name, column_type=self.dataset.columns[name],
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
      for option in ('kind',) + kind_of(first.kind).table_options:
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
      column_types = kind_of(feature.kind).column_types
      if column_type not in column_types:
        raise problem_at(f'features.{name}', f'is a {column_type} column; kind '
                         f'{feature.kind} takes {" or ".join(column_types)} '
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
      raise problem_at('tuning', 'lists no option to search ('
                       + ', '.join(TUNED_OPTIONS) + ')')
    if (self.tuning is not None and self.tuning.objective != 'auc'
        and self.training.input_format != 'columnar'):
      raise problem_at('tuning.objective', f'{self.tuning.objective} needs '
                       'training.input_format: columnar (whole validation splits are read)')
    item_key = next(name for name, f in self.features.items() if f.belongs_to == 'item')
    if self.training.losses.retrieval and kind_of(self.features[item_key].kind).multi_valued:
      raise problem_at('training.losses.retrieval', f'needs one value a row in the first '
                       f'item feature ({item_key}), which tells the items apart')
    if self.retrieval.index == 'scann' and self.training.input_format != 'columnar':
      raise problem_at('retrieval.index', 'scann needs training.input_format: columnar '
                       '(the item catalogue is gathered by ColumnarExamplesGen)')
    for column in self.evaluation.slice_by:
      if column not in columns:
        raise problem_at('evaluation.slice_by', f'{column!r} is not a dataset column')
    if self.training.window_spans is not None and not spans.has_spans(self.paths.input):
      raise problem_at('training.window_spans', 'needs {SPAN} or {YYYY}{MM}{DD} in '
                       f'paths.input, which is {self.paths.input!r}')
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
  """The input files the glob matches (of the span the run reads, with spans); a glob
  that matches nothing, or no such span, is a config error."""
  if paths.is_uri(config.paths.input):
    return [config.paths.input]
  if spans.has_spans(config.paths.input):
    try:
      return spans.files(config.paths.input, config.paths.span)
    except spans.SpanError as e:
      key = 'paths.span' if config.paths.span is not None else 'paths.input'
      raise ConfigError(config.source, key, str(e)) from None
  files = sorted(glob.glob(config.paths.input))
  if not files:
    raise ConfigError(config.source, 'paths.input',
                      f'matches no files: {config.paths.input}')
  return files


def with_output_root(config: RunConfig, output_root: str) -> RunConfig:
  """The same run writing everything (metadata, artifacts, serving) under another root."""
  paths = config.paths.model_copy(update={
      'output_root': output_root, 'serving_dir': default_serving_dir(output_root)})
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
