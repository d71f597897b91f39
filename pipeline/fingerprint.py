"""A hash of every project file the pipeline's components run, for their cache keys.

TFX's cache key covers a component's inputs and properties, not the code a custom
executor or a dotted path (`preprocessing_fn`, `run_fn`) runs: without this hash as a
property, an edited file would be served the output of the old code. It covers every
Python file of the component-code packages (COMPONENT_CODE, subfolders included) and of
whatever project module those import, found by reading their imports, so a helper
moved elsewhere is still covered. Files the components never load (the runners, the
config, local-run guards) are left out: editing them reruns nothing.
"""

import ast
import hashlib
import os
from typing import Iterable, Iterator, List, Set, Tuple

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Code that runs inside components: everything in these folders.
COMPONENT_CODE = ('contract', 'modules', os.path.join('pipeline', 'components'))
_PROJECT_PACKAGES = ('contract', 'modules', 'pipeline')


def _python_files(root: str, folder: str) -> List[str]:
  found = []
  for directory, subdirs, files in os.walk(os.path.join(root, folder)):
    subdirs[:] = sorted(d for d in subdirs if d != '__pycache__')
    found += [os.path.relpath(os.path.join(directory, f), root)
              for f in sorted(files) if f.endswith('.py')]
  return found


def _module_file(root: str, module: str) -> List[str]:
  """The file(s) a dotted project module name is: `a/b.py`, or `a/b/__init__.py`, plus
  the `__init__.py` of every package on the way (importing runs them too)."""
  parts = module.split('.')
  candidates = [os.path.join(*parts[:i], '__init__.py') for i in range(1, len(parts) + 1)]
  candidates.append(os.path.join(*parts) + '.py')
  return [f for f in candidates if os.path.exists(os.path.join(root, f))]


def is_module(root: str, name: str) -> bool:
  """Whether a dotted name is a module (or package) of the tree at `root`."""
  path = os.path.join(root, *name.split('.'))
  return os.path.exists(path + '.py') or os.path.exists(os.path.join(path, '__init__.py'))


def imported_names(root: str, path: str, tops: Iterable[str]) -> Iterator[Tuple[int, str]]:
  """(line, dotted name) of every import in a file whose first part is one of `tops`, at
  any depth in it (an import inside a function runs too). `from a import b` names module
  a.b when the tree has one, else a (b is then a name defined in a)."""
  tops = set(tops)
  with open(os.path.join(root, path), encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [f'{node.module}.{alias.name}' if is_module(root, f'{node.module}.{alias.name}')
               else node.module for alias in node.names]
    else:
      continue
    yield from ((node.lineno, n) for n in names if n.split('.')[0] in tops)


def component_files(root: str = PROJECT_DIR) -> List[str]:
  """Every project file (relative to `root`) that a component may run, sorted."""
  pending = [f for folder in COMPONENT_CODE for f in _python_files(root, folder)]
  seen: Set[str] = set()
  while pending:
    path = pending.pop()
    if path in seen:
      continue
    seen.add(path)
    for _, module in imported_names(root, path, _PROJECT_PACKAGES):
      pending += _module_file(root, module)
  return sorted(seen)


def code_fingerprint(root: str = PROJECT_DIR) -> str:
  """16 hex digits of a hash over the component files' paths and contents."""
  digest = hashlib.sha256()
  for path in component_files(root):
    digest.update(path.encode())
    with open(os.path.join(root, path), 'rb') as f:
      digest.update(f.read())
  return digest.hexdigest()[:16]
