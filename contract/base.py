"""The typed-model base every config section and component option builds on.

YAML and JSON say what they mean: "64" is not a number, 1.0 is not a count, a key
nobody reads is an error and a value is never changed after validation.
"""

from typing import Annotated, Any, Dict, Mapping

import pydantic
from pydantic_core import PydanticCustomError

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
