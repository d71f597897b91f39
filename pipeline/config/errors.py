"""Validation errors in the config's words: `<file>: <dotted.key>: <problem>`, one line.

Pydantic reports every error with its location and type; a person wants the one to fix
first, named by the key they wrote, in the terms of the YAML (a mapping, a list, true or
false), with the closest known key when they misspelled one.
"""

import difflib
import re
import typing
from typing import Annotated, Any, Dict, List, Tuple, Type

import pydantic


class ConfigError(ValueError):
  """A config that cannot describe a run; the message names the file and the key."""

  def __init__(self, source: str, key: str, problem: str):
    super().__init__(f'{source}: {key}: {problem}')
    self.source = source
    self.key = key


def describe_value(value: Any) -> str:
  return f'{type(value).__name__} {value!r}' if value is not None else 'nothing'


def _choices(expected: str) -> str:
  """"'a', 'b' or 'c'" (pydantic's literal_error) -> 'a, b, c'."""
  return ', '.join(re.findall(r"'([^']*)'", expected)) or expected


def _unwrap(annotation: Any) -> Any:
  """The model class inside Optional[...], Annotated[...]."""
  while typing.get_origin(annotation) in (typing.Union, Annotated):
    annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
  return annotation


def _known_keys(root: Type[pydantic.BaseModel], loc: Tuple[Any, ...]) -> List[str]:
  """The keys the mapping at `loc` may hold, following the models from `root`."""
  model: Any = root
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


def _problem(root: Type[pydantic.BaseModel], error: Dict[str, Any]) -> str:
  kind, ctx, value = error['type'], error.get('ctx') or {}, error.get('input')
  got = f', got {describe_value(value)}'
  if kind == 'missing':
    return 'is required'
  if kind == 'extra_forbidden':
    known = _known_keys(root, error['loc'][:-1])
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


def config_error(error: pydantic.ValidationError, source: str,
                 root: Type[pydantic.BaseModel]) -> ConfigError:
  """The one error a person should fix first (an unknown key explains a missing one),
  as a ConfigError; `root` is the model that was validated."""
  errors = sorted(error.errors(), key=lambda e: e['type'] != 'extra_forbidden')
  return ConfigError(source, _key(errors[0]), _problem(root, errors[0]))
