"""A config's YAML document as the models will validate it: read safely, with the
config it `extends` underneath and the command line's `--set key=value` on top."""

import os
from typing import Any, Dict, Sequence, Tuple

import yaml

from pipeline import paths
from pipeline.config.errors import ConfigError, describe_value


def _check_unique_keys(node: yaml.Node, source: str, key_path: str = '') -> None:
  """Refuses a mapping that gives a key twice: YAML 1.2 says keys are unique, and
  PyYAML would keep the last one silently, dropping what the first one set."""
  if isinstance(node, yaml.MappingNode):
    first_line: Dict[Any, int] = {}
    for key_node, value_node in node.value:
      key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
      dotted = f'{key_path}.{key}' if key_path else str(key)
      if key is not None:
        line = key_node.start_mark.line + 1
        if key in first_line:
          where = (f'twice on line {line}' if first_line[key] == line
                   else f'lines {first_line[key]} and {line}')
          raise ConfigError(source, dotted, f'duplicate key ({where}); give it once')
        first_line[key] = line
      _check_unique_keys(value_node, source, dotted)
  elif isinstance(node, yaml.SequenceNode):
    for index, item in enumerate(node.value):
      _check_unique_keys(item, source, f'{key_path}[{index}]')


def load_yaml(text: str, source: str, key: str = '<yaml>',
              invalid: str = 'is not valid YAML') -> Any:
  """A YAML document, safely (no !!python/... tags: a config can never run code) and
  with every mapping's keys unique; ConfigError naming `source` and `key` otherwise."""
  loader = yaml.SafeLoader(text)
  try:
    # Parsed once: the keys are checked on the node tree the document is built from.
    node = loader.get_single_node()
    if node is None:
      return None
    _check_unique_keys(node, source, '' if key == '<yaml>' else key)
    return loader.construct_document(node)
  except yaml.YAMLError as e:
    raise ConfigError(source, key, f'{invalid}: {e}') from None
  finally:
    loader.dispose()


def _read_yaml(path: str) -> Any:
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except OSError as e:
    raise ConfigError(path, '<file>', f'cannot be read: {e.strerror}') from None
  return load_yaml(text, path)


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
    value = load_yaml(text, source, f'--set {key}', invalid='is not a YAML value')
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
