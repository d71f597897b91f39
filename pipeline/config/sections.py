"""The run config's sections that only the pipeline and its runners read.

Where a key lives: a section that component code reads (`features`, `training`,
`tuning`, `retrieval`) is defined in contract/, because it travels to the component
and is validated again there; a section only the pipeline graph or a runner reads
(`dataset`, `evaluation`, `statistics`, `validation`, `paths`, `beam`) is defined here,
and `vertex` in vertex.py. RunConfig (run_config.py) puts them together.
"""

import os
import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple

import pydantic

from contract.base import PositiveInt, StrictModel, Text, problem_at
from contract.feature_kinds import ColumnType
from contract.model_inputs import LabelSpec
from pipeline import paths as paths_lib
from pipeline import spans as spans_lib

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
  def trained_splits(self) -> Tuple[str, str]:
    """The splits the Trainer reads: train, and the one it validates on."""
    return ('train', self.validation_split)

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


def default_serving_dir(output_root: str) -> str:
  """Where pushed models go unless `paths.serving_dir` says otherwise."""
  return os.path.join(output_root, 'serving')


class PathsConfig(StrictModel):
  """Relative paths are relative to the config file; URIs (gs://...) stay as they are."""
  input: Text
  # A curated raw schema (schema.pbtxt); without one, SchemaGen infers it.
  schema_file: Optional[Text] = pydantic.Field(None, alias='schema')
  output_root: Text
  serving_dir: Optional[Text] = None
  # With {SPAN} or {YYYY}{MM}{DD} in `input`, the span a run reads (a date's span is its
  # day number since 1970-01-01); absent, the latest (`local_runner.py --span N`).
  span: Optional[Annotated[int, pydantic.Field(strict=True, ge=0)]] = None
  model_config = pydantic.ConfigDict(populate_by_name=True)

  @pydantic.model_validator(mode='before')
  @classmethod
  def _relative_to_the_config(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
    base_dir = (info.context or {}).get('base_dir')
    if not isinstance(data, dict) or base_dir is None:
      return data
    resolved = {key: paths_lib.resolve(base_dir, value) if isinstance(value, str) and value.strip()
                else value for key, value in data.items()}
    if resolved.get('serving_dir') is None and isinstance(resolved.get('output_root'), str):
      resolved['serving_dir'] = default_serving_dir(resolved['output_root'])
    return resolved

  @pydantic.model_validator(mode='after')
  def _span_needs_spans(self) -> 'PathsConfig':
    if self.span is not None and not spans_lib.has_spans(self.input):
      raise problem_at('span', f'needs {{SPAN}} or {{YYYY}}{{MM}}{{DD}} in paths.input, '
                       f'which is {self.input!r}')
    return self

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_root, 'pipeline_root')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_root, 'metadata.sqlite')


class BeamConfig(StrictModel):
  # One process: two worker processes made the whole run slower on two cores, at 100K
  # and at 1M rows (bench/README.md, "Beam mode").
  direct_running_mode: Literal['in_memory', 'multi_threading',
                               'multi_processing'] = 'in_memory'
  # 0 is one worker per core.
  direct_num_workers: Annotated[int, pydantic.Field(strict=True, ge=0)] = 1
  extra_args: Tuple[str, ...] = ()

  def pipeline_args(self, setup_file: str) -> List[str]:
    """Beam's flags for its DirectRunner.

    Args:
      setup_file: the project's setup.py. Beam's DirectRunner ships no code (its workers
        import what is installed), but TFX's Beam components, given no dependency flag,
        each spend 2-3 s packaging TFX into an sdist that nothing reads: naming the
        project's setup.py, which is what a remote runner would need, saves that.
    """
    return [
        f'--direct_running_mode={self.direct_running_mode}',
        f'--direct_num_workers={self.direct_num_workers}',
        f'--setup_file={setup_file}',
        *self.extra_args,
    ]
