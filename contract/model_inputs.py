"""What Transform and the Trainer are told of the data: the features and the label.

Each travels through a component's `custom_config` as a plain dict (`to_dict`) and is
rebuilt and validated on the other side (`from_dict`). The run config
(pipeline/config/) builds them from YAML with the same field types, so a value that
passes there passes here.
"""

from typing import Annotated, Dict, Literal, Tuple

import pydantic

from contract.base import Number, StrictModel
from contract.feature_kinds import ColumnType, FeatureOptions, Side

LabelOperator = Literal['>=', '>', '<=', '<', '==', '!=']


class LabelSpec(StrictModel):
  """How the 0/1 training label is derived from a raw column, e.g. `rating >= 4`."""
  column: str
  operator: LabelOperator
  threshold: Number

  @property
  def expression(self) -> str:
    return f'{self.column} {self.operator} {self.threshold:g}'


class Feature(FeatureOptions):
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
  features: Annotated[Tuple[Feature, ...], pydantic.Field(min_length=1)]
  label: LabelSpec

  def side(self, belongs_to: Side) -> Tuple[Feature, ...]:
    return tuple(f for f in self.features if f.belongs_to == belongs_to)

  def tables(self) -> Dict[str, Tuple[Feature, ...]]:
    """Table name -> the features looking it up, in feature order."""
    tables: Dict[str, Tuple[Feature, ...]] = {}
    for feature in self.features:
      tables[feature.table_name] = tables.get(feature.table_name, ()) + (feature,)
    return tables
