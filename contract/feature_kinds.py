"""The feature kinds: one table saying, for each kind, what it is and what it takes.

A kind says how a column's values become rows of an embedding table. The config
checks features against this table, Transform picks each kind's row function by it
(modules/transform/feature_rows.py) and the model reads from it whether a feature is
multi-valued; each raises on a kind the table does not hold. Adding a kind is its entry
here (and its option fields on FeatureOptions), its row function and its tests.
"""

import dataclasses
from typing import Annotated, Callable, Dict, Literal, Optional, Tuple

import pydantic

from contract.base import Flag, PositiveInt, StrictModel, Text, problem_at

ColumnType = Literal['int', 'float', 'string']
Side = Literal['user', 'item']
SIDES: Tuple[Side, ...] = ('user', 'item')
Combiner = Literal['mean', 'sum']


@dataclasses.dataclass(frozen=True)
class Kind:
  """What a kind is to the config, Transform and the model."""
  name: str
  # What it does with a value, for people (the config's JSON schema shows it).
  summary: str
  # The options it takes, besides those every feature has (COMMON_OPTIONS).
  options: Tuple[str, ...]
  # Those of its options that have no default.
  required: Tuple[str, ...]
  # The column types it reads.
  column_types: Tuple[ColumnType, ...]
  # Rows per value: one ([batch] ids), or a list ([batch, None], ragged into the model).
  multi_valued: bool
  # The table's rows as far as the options fix them; None when Transform decides
  # them from the data (a vocabulary without top_k).
  max_rows: Callable[['FeatureOptions'], Optional[int]]

  @property
  def table_options(self) -> Tuple[str, ...]:
    """The options features sharing a table must agree on (a delimiter is how one
    column writes its values, not part of the table)."""
    return tuple(o for o in self.options if o != 'delimiter')


def _vocabulary_rows(feature: 'FeatureOptions') -> Optional[int]:
  return None if feature.top_k is None else feature.top_k + feature.num_oov_buckets


_VOCABULARY_OPTIONS = ('top_k', 'frequency_threshold', 'num_oov_buckets')
KINDS: Dict[str, Kind] = {kind.name: kind for kind in (
    Kind('hash', 'a value hashed into `vocab_size` buckets (or, with `hash: false`, an '
         'int id taken as it is)', options=('hash', 'vocab_size'), required=('vocab_size',),
         column_types=('int', 'string'), multi_valued=False,
         max_rows=lambda f: f.vocab_size),
    Kind('vocabulary', 'the value\'s index in Transform\'s vocabulary (the `top_k` most '
         'frequent values, or those seen `frequency_threshold` times); rare, unseen or '
         'missing values share the `num_oov_buckets` rows after it', options=_VOCABULARY_OPTIONS, required=(),
         column_types=('int', 'string'), multi_valued=False, max_rows=_vocabulary_rows),
    Kind('multi_hot', 'a `delimiter`-separated list of values, each through a vocabulary '
         'as above, their rows combined into one by `combiner`', options=_VOCABULARY_OPTIONS + ('delimiter', 'combiner'), required=(),
         column_types=('string',), multi_valued=True, max_rows=_vocabulary_rows),
    Kind('numeric', 'a number\'s quantile bucket, one of `num_buckets` that Transform '
         'computes; a missing value has its own row', options=('num_buckets',), required=('num_buckets',),
         column_types=('int', 'float'), multi_valued=False,
         max_rows=lambda f: f.num_buckets + 1),
)}
FeatureKind = Literal[tuple(KINDS)]
# Options every feature has, whatever its kind.
COMMON_OPTIONS = ('kind', 'embedding_dim', 'belongs_to', 'table', 'name', 'column_type')


def kind_of(name: str) -> Kind:
  """The table's entry for a kind; raises ValueError naming the kinds it holds."""
  try:
    return KINDS[name]
  except KeyError:
    raise ValueError(f'unknown feature kind {name!r} (kinds: {", ".join(KINDS)})') from None


class FeatureOptions(StrictModel):
  """How one column becomes rows of an embedding table, and on which tower.

  Features naming the same `table` share one table (and one vocabulary or set of bucket
  boundaries, computed over all of their columns). `kind` is one of:"""
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
    kind = kind_of(self.kind)
    # Values, not keys: `hash: true` on any kind is harmless, and to_dict sets them all.
    for option, field in self.model_fields.items():
      if (option not in kind.options + COMMON_OPTIONS
          and getattr(self, option) != field.default):
        raise problem_at(option, f'is not an option of kind {self.kind} (its options: '
                         f'{", ".join(kind.options)})')
    for option in kind.required:
      if getattr(self, option) is None:
        raise problem_at(option, f'is required for kind {self.kind}')
    return self

  @property
  def max_rows(self) -> Optional[int]:
    """The table's rows as far as the config fixes them: None when unknown before
    Transform runs."""
    return kind_of(self.kind).max_rows(self)

  @property
  def multi_valued(self) -> bool:
    return kind_of(self.kind).multi_valued


# The kinds, as the config's JSON schema describes them to people.
FeatureOptions.__doc__ += ''.join(f'\n  {kind.name}: {kind.summary}.' for kind in KINDS.values())
