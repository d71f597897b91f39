"""The project's imports point one way: runners -> pipeline -> modules -> contract.

Read from the source (no module is imported), so a new import against the order fails
here before it can tangle the packages: component code (`modules`) runs inside TFX's
executors, on Dataflow workers and in the Trainer's container, and must not drag the
pipeline or the inspection tool with it.
"""

import ast
import os
import sys

import pytest

from conftest import PROJECT_DIR

# Lower rank = lower layer. A module may import its own package and any lower layer.
LAYERS = {
    'contract': 0,
    'modules': 1,
    'pipeline': 2,
    # Reads what runs recorded; the local runner prints its progress lines with it.
    'inspection': 3,
    'local_runner': 4,
    'vertex_runner': 4,
    'bench': 5,
    'data': 5,
}
PACKAGES = ('contract', 'modules', 'pipeline', 'inspection')


def _project_sources():
  for top in ('contract', 'modules', 'pipeline', 'inspection', 'bench', 'data'):
    for directory, _, files in os.walk(os.path.join(PROJECT_DIR, top)):
      for name in sorted(files):
        if name.endswith('.py'):
          yield os.path.relpath(os.path.join(directory, name), PROJECT_DIR)
  yield 'local_runner.py'
  yield 'vertex_runner.py'


def _layer_of(path: str) -> str:
  return path.split(os.sep)[0].removesuffix('.py')


def _imported_project_modules(path: str):
  """(line, top-level name) of every import of a project package or runner, at any depth
  in the file (imports inside functions count: they run too)."""
  with open(os.path.join(PROJECT_DIR, path), encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module]
    else:
      continue
    for name in names:
      top = name.split('.')[0]
      if top in LAYERS and top not in ('bench', 'data'):
        yield node.lineno, name


def _module_name(path: str) -> str:
  return path.removesuffix('.py').removesuffix('/__init__').replace(os.sep, '.')


def _import_graph():
  graph = {}
  for path in _project_sources():
    graph[_module_name(path)] = {name for _, name in _imported_project_modules(path)}
  return graph


def test_no_import_points_up_the_layers():
  wrong = []
  for path in _project_sources():
    layer = _layer_of(path)
    for line, name in _imported_project_modules(path):
      target = name.split('.')[0]
      if target != layer and LAYERS[target] >= LAYERS[layer]:
        wrong.append(f'{path}:{line}: {layer} (layer {LAYERS[layer]}) imports {name} '
                     f'(layer {LAYERS[target]})')
  assert not wrong, '\n'.join(wrong)


def test_no_package_pair_imports_each_other():
  graph = _import_graph()
  depends = {p: set() for p in PACKAGES}
  for module, imported in graph.items():
    source = module.split('.')[0]
    if source in depends:
      depends[source] |= {name.split('.')[0] for name in imported} - {source}
  pairs = [(a, b) for a in PACKAGES for b in PACKAGES
           if a < b and b in depends[a] and a in depends[b]]
  assert not pairs


def test_no_module_import_circle():
  graph = _import_graph()
  # An import of `pkg.mod.Name` may name a module or an attribute; resolve to modules.
  def module_of(name):
    while name and name not in graph:
      name = name.rpartition('.')[0]
    return name
  edges = {m: {module_of(n) for n in names} - {'', m} for m, names in graph.items()}
  state = {}
  cycles = []

  def visit(module, stack):
    state[module] = 'open'
    for target in sorted(edges.get(module, ())):
      if state.get(target) == 'open':
        cycles.append(' -> '.join(stack[stack.index(target):] + [target]))
      elif target not in state:
        visit(target, stack + [target])
    state[module] = 'done'

  for module in sorted(edges):
    if module not in state:
      visit(module, [module])
  assert not cycles, '\n'.join(cycles)


def test_component_code_imports_neither_tfx_nor_the_pipeline():
  """modules/ runs in TFX's executors but must be importable (and testable) without it."""
  for path in _project_sources():
    if _layer_of(path) != 'modules':
      continue
    with open(os.path.join(PROJECT_DIR, path), encoding='utf-8') as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
               [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
      assert not any(n == 'tfx' or n.startswith('tfx.') for n in names), f'{path} imports TFX'


@pytest.mark.parametrize('source, expected', [
    ('import pipeline.config\n', 'imports pipeline.config'),
    ('from inspection import cli\n', 'imports inspection'),
    ('def f():\n  from pipeline import config\n', 'imports pipeline'),
])
def test_the_check_sees_an_upward_import(tmp_path, monkeypatch, source, expected):
  """The checker itself: an upward import hidden anywhere in a modules/ file is found."""
  fake_project = tmp_path / 'project'
  (fake_project / 'modules').mkdir(parents=True)
  (fake_project / 'modules' / 'bad.py').write_text(source)
  for name in ('local_runner.py', 'vertex_runner.py'):
    (fake_project / name).write_text('')
  monkeypatch.setattr(sys.modules[__name__], 'PROJECT_DIR', str(fake_project))
  with pytest.raises(AssertionError, match=expected):
    test_no_import_points_up_the_layers()
