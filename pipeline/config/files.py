"""A config's YAML document as the models will validate it: read safely, with the
config it `extends` underneath and the command line's `--set key=value` on top."""

import os
from typing import Any, Sequence, Tuple

import yaml

from pipeline import paths
from pipeline.config.errors import ConfigError, describe_value


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
                      f'{describe_value(base_name)}')
  base_path = os.path.join(os.path.dirname(path), base_name)
  if not os.path.exists(base_path):
    raise ConfigError(path, 'extends', f'no such file: {base_path}')
  base = _read_with_bases(base_path, chain + (path,))
  if isinstance(base, dict) and isinstance(base.get('paths'), dict):
    base_dir = os.path.dirname(os.path.abspath(base_path))
    base = {**base, 'paths': {key: paths.resolve(base_dir, value) if isinstance(value, str)
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


def read_document(path: str, overrides: Sequence[str] = ()) -> Any:
  """The document a config file describes, `extends` resolved and `overrides` applied."""
  data = _read_with_bases(path)
  return apply_overrides(data, overrides, path) if overrides else data
