"""What Transform and the Trainer are told: the features, the label, the training options.

Each travels through a component's `custom_config` as a plain dict (`to_dict`) and is
rebuilt and validated on the other side (`from_dict`). The run config
(`pipeline/config.py`) builds them from YAML with the same field types, so a value that
passes there passes here.
"""

from typing import Annotated, Any, Dict, Literal, Mapping, Optional, Tuple, TypeVar

import pydantic
from pydantic_core import PydanticCustomError

ColumnType = Literal['int', 'float', 'string']
Side = Literal['user', 'item']
SIDES: Tuple[Side, ...] = ('user', 'item')
# Each step updates only the rows the batch touched, so its cost does not grow with the
# tables; adam is the lazy Adam of modules/lazy_adam.py, as on TPUs.
Optimizer = Literal['adagrad', 'adam', 'sgd']
OPTIMIZERS: Tuple[str, ...] = Optimizer.__args__
# How the Trainer reads Transform's output: columnar blocks (ColumnarExamplesGen) or
# the tf.Examples themselves, parsed row by row.
InputFormat = Literal['columnar', 'tf_example']
LabelOperator = Literal['>=', '>', '<=', '<', '==', '!=']

# YAML and JSON say what they mean: "64" is not a number and 1.0 is not a count.
PositiveInt = Annotated[int, pydantic.Field(strict=True, gt=0)]
Integer = Annotated[int, pydantic.Field(strict=True)]
Number = Annotated[float, pydantic.Field(strict=True)]
Flag = Annotated[bool, pydantic.Field(strict=True)]
Text = Annotated[str, pydantic.StringConstraints(strict=True, strip_whitespace=True,
                                                  min_length=1)]


def problem_at(key: str, message: str) -> PydanticCustomError:
  """An error about `key` (dotted, below the model raising it) from a model validator.

  Pydantic places a model validator's errors at the model itself; this carries the key
  that is wrong so that the message can name it.
  """
  return PydanticCustomError('problem_at', '{message}', {'key': key, 'message': message})


class StrictModel(pydantic.BaseModel):
  """Immutable, no field it does not know, and a null field is an absent one (`key:`
  with nothing after it in YAML takes the default, or is reported as required)."""
  model_config = pydantic.ConfigDict(frozen=True, extra='forbid')

  @pydantic.model_validator(mode='before')
  @classmethod
  def _null_is_absent(cls, data: Any) -> Any:
    if isinstance(data, dict):
      return {key: value for key, value in data.items() if value is not None}
    return data

  def to_dict(self) -> Dict[str, Any]:
    return self.model_dump(mode='json')

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]):
    return cls.model_validate(data)


class LabelSpec(StrictModel):
  """How the 0/1 training label is derived from a raw column, e.g. `rating >= 4`."""
  column: str
  operator: LabelOperator
  threshold: Number

  @property
  def expression(self) -> str:
    return f'{self.column} {self.operator} {self.threshold:g}'


FeatureKind = Literal['hash', 'vocabulary', 'multi_hot', 'numeric']
Combiner = Literal['mean', 'sum']
# The options each kind takes, besides belongs_to, embedding_dim and table.
KIND_OPTIONS: Dict[str, Tuple[str, ...]] = {
    'hash': ('hash', 'vocab_size'),
    'vocabulary': ('top_k', 'frequency_threshold', 'num_oov_buckets'),
    'multi_hot': ('top_k', 'frequency_threshold', 'num_oov_buckets', 'delimiter', 'combiner'),
    'numeric': ('num_buckets',),
}
_COMMON_OPTIONS = ('kind', 'embedding_dim', 'belongs_to', 'table', 'name', 'column_type')
_REQUIRED_OPTIONS = {'hash': ('vocab_size',), 'numeric': ('num_buckets',)}


class FeatureOptions(StrictModel):
  """How one column becomes rows of an embedding table, and on which tower.

  `kind` says how its values become rows: `hash` (into `vocab_size` buckets, or taken as
  they are with `hash: false`), `vocabulary` (Transform's vocabulary of the values, the
  `top_k` most frequent or those seen `frequency_threshold` times, the rest and unseen
  values sharing `num_oov_buckets` rows), `multi_hot` (a `delimiter`-separated list of
  values per row, each through a vocabulary, their rows combined by `combiner`) and
  `numeric` (a number, in one of `num_buckets` quantile buckets Transform computes; a
  missing value has its own row). Features naming the same `table` share one table (and
  one vocabulary or set of bucket boundaries, computed over all of their columns).
  """
  kind: FeatureKind = 'hash'
  embedding_dim: PositiveInt
  belongs_to: Side
  table: Optional[Text] = None
  # hash: false takes int ids in [0, vocab_size) as they are; true hashes any id.
  hash: Flag = True
  vocab_size: Optional[PositiveInt] = None
  top_k: Optional[PositiveInt] = None
  frequency_threshold: Optional[PositiveInt] = None
  num_oov_buckets: PositiveInt = 1
  delimiter: Annotated[str, pydantic.Field(strict=True, min_length=1)] = '|'
  combiner: Combiner = 'mean'
  num_buckets: Optional[PositiveInt] = None

  @pydantic.field_validator('vocab_size', 'num_buckets')
  @classmethod
  def _has_rows(cls, value: Optional[int]) -> Optional[int]:
    if value is not None and value < 2:
      raise ValueError('must be at least 2: a table of one row gives every value the same '
                       f'embedding; got {value}')
    return value

  @pydantic.field_validator('embedding_dim')
  @classmethod
  def _has_factors(cls, value: int) -> int:
    if value < 2:
      raise ValueError('must be at least 2: the last unit is the bias, the rest are the '
                       f'factors; got {value}')
    return value

  @pydantic.model_validator(mode='after')
  def _options_of_its_kind(self) -> 'FeatureOptions':
    allowed = KIND_OPTIONS[self.kind]
    # Values, not keys: `hash: true` on any kind is harmless, and to_dict sets them all.
    for option, field in self.model_fields.items():
      if (option not in allowed + _COMMON_OPTIONS
          and getattr(self, option) != field.default):
        raise problem_at(option, f'is not an option of kind {self.kind} (its options: '
                         f'{", ".join(allowed)})')
    for option in _REQUIRED_OPTIONS.get(self.kind, ()):
      if getattr(self, option) is None:
        raise problem_at(option, f'is required for kind {self.kind}')
    return self

  @property
  def max_rows(self) -> Optional[int]:
    """The table's rows as far as the config fixes them (a vocabulary without top_k is
    sized by Transform from the data): None when unknown before Transform runs."""
    if self.kind == 'hash':
      return self.vocab_size
    if self.kind == 'numeric':
      return self.num_buckets + 1
    return None if self.top_k is None else self.top_k + self.num_oov_buckets


class FeatureSpec(FeatureOptions):
  """A feature as the component code sees it: its options, column name and type."""
  name: str
  column_type: ColumnType

  @property
  def table_name(self) -> str:
    return self.table or self.name


class ModelInputs(StrictModel):
  """The features and the label, nothing else.

  Kept apart from the run's paths and options so that it can travel through a
  component's `custom_config` without tying the component's cache key to them.
  """
  features: Annotated[Tuple[FeatureSpec, ...], pydantic.Field(min_length=1)]
  label: LabelSpec

  def side(self, belongs_to: Side) -> Tuple[FeatureSpec, ...]:
    return tuple(f for f in self.features if f.belongs_to == belongs_to)

  def tables(self) -> Dict[str, Tuple[FeatureSpec, ...]]:
    """Table name -> the features looking it up, in feature order."""
    tables: Dict[str, Tuple[FeatureSpec, ...]] = {}
    for feature in self.features:
      tables[feature.table_name] = tables.get(feature.table_name, ()) + (feature,)
    return tables


class TrainingOptions(StrictModel):
  """How the Trainer trains: batches, length, optimizer, device."""
  batch_size: PositiveInt
  epochs: Optional[PositiveInt] = None
  steps: Optional[PositiveInt] = None
  learning_rate: Annotated[float, pydantic.Field(strict=True, gt=0)]
  optimizer: Optimizer
  seed: Integer = 42
  # Penalty on the squared norm of the looked-up embedding rows (user and item side).
  l2_regularization: Annotated[float, pydantic.Field(strict=True, ge=0)] = 0.0
  # '' trains on CPU/GPU; 'local' uses the TPU attached to this VM; else a TPU name.
  tpu: str = ''
  # A restarted Trainer (a preempted Vertex replica) resumes from its last backup: one
  # at each epoch's end, and every this many steps within an epoch when set.
  checkpoint_every_steps: Optional[PositiveInt] = None
  # latest_blessed: start the tables from the latest blessed model when they fit
  # (hashing keeps every id's row from one run to the next); absent: random tables.
  warm_start: Optional[Literal['latest_blessed']] = None
  input_format: InputFormat = 'columnar'
  # Steps in each call of the compiled training function: fewer host round trips (on a
  # TPU, the chip is not left idle between steps). 64 measured best of 1, 4, 16 and 64
  # on the CPU (bench/README.md); an epoch shorter than this runs in one call.
  steps_per_execution: PositiveInt = 64

  @pydantic.model_validator(mode='after')
  def _one_length(self) -> 'TrainingOptions':
    if (self.epochs is None) == (self.steps is None):
      raise problem_at('epochs', 'give exactly one of epochs or steps')
    return self


class RetrievalOptions(StrictModel):
  """How the exported model finds a user's best catalogue items.

  `brute_force`: the SavedModel's top_k scores every item (exact). `scann`: also an
  approximate ScaNN index of the item vectors, saved beside it as a second SavedModel
  (modules/retrieval.py ScannIndex): the items are split into `num_leaves` clusters, a
  query scores the items of its `leaves_to_search` nearest clusters with compressed
  vectors and rescores its `reorder` best exactly.
  """
  index: Literal['brute_force', 'scann'] = 'brute_force'
  # Absent: about the square root of the catalogue's size.
  num_leaves: Optional[PositiveInt] = None
  # Absent: a tenth of the leaves, and at least enough to hold 1,000 items on average.
  leaves_to_search: Optional[PositiveInt] = None
  reorder: PositiveInt = 100

  @pydantic.model_validator(mode='after')
  def _leaves_for_scann(self) -> 'RetrievalOptions':
    if self.index != 'scann':
      for option in ('num_leaves', 'leaves_to_search'):
        if getattr(self, option) is not None:
          raise problem_at(option, 'is an option of index: scann')
    elif (self.num_leaves and self.leaves_to_search
          and self.leaves_to_search > self.num_leaves):
      raise problem_at('leaves_to_search', f'{self.leaves_to_search} is more than '
                       f'num_leaves ({self.num_leaves})')
    return self


_PositiveNumber = Annotated[float, pydantic.Field(strict=True, gt=0)]
_NonNegativeNumber = Annotated[float, pydantic.Field(strict=True, ge=0)]
_T = TypeVar('_T')
# A list of values to choose among (at least one).
_Choices = Annotated[Tuple[_T, ...], pydantic.Field(min_length=1)]


class TuningOptions(StrictModel):
  """What the Tuner searches: each listed option's values (absent: the training value
  stays), `max_trials` random combinations of them, each trained up to `epochs` epochs
  and scored by its best epoch's AUC on the validation split; the Trainer trains the
  best combination for its best epoch count."""
  max_trials: PositiveInt
  epochs: PositiveInt = 1
  seed: Integer = 42
  learning_rate: Optional[_Choices[_PositiveNumber]] = None
  l2_regularization: Optional[_Choices[_NonNegativeNumber]] = None
  # Every feature's embedding_dim (so both towers keep equal widths).
  embedding_dim: Optional[_Choices[PositiveInt]] = None
  batch_size: Optional[_Choices[PositiveInt]] = None
  optimizer: Optional[_Choices[Optimizer]] = None

  def search_space(self) -> Dict[str, Tuple[Any, ...]]:
    """Option name -> the values to choose among, for the options being tuned."""
    return {name: values for name, values in self.model_dump().items()
            if name in TUNED_OPTIONS and values is not None}


# The options a Tuner can search: TrainingOptions fields, and every feature's embedding_dim.
TUNED_OPTIONS = ('learning_rate', 'l2_regularization', 'embedding_dim', 'batch_size',
                 'optimizer')


def with_hyperparameters(model_inputs: ModelInputs, training: TrainingOptions,
                         values: Mapping[str, Any]) -> Tuple[ModelInputs, TrainingOptions]:
  """The model inputs and training options with the tuned `values` in place (and the
  Tuner's `epochs`, its best trial's best epoch, unless training counts steps)."""
  update = dict(values)
  epochs = update.pop('epochs', None)
  unknown = set(update) - set(TUNED_OPTIONS)
  if unknown:
    raise ValueError(f'not tunable: {", ".join(sorted(unknown))}')
  embedding_dim = update.pop('embedding_dim', None)
  if embedding_dim is not None:
    model_inputs = model_inputs.model_copy(update={'features': tuple(
        f.model_copy(update={'embedding_dim': embedding_dim})
        for f in model_inputs.features)})
  if epochs is not None and training.steps is None:
    update['epochs'] = epochs
  return model_inputs, training.model_copy(update=update)
