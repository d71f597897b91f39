"""The project's imports point one way: runners -> pipeline -> modules -> contract.

Read from the source (no module is imported), so a new import against the order fails
here before it can tangle the packages: component code (`modules`, and
`pipeline/components`) runs inside TFX's executors, on Dataflow workers and in the
Trainer's container, and must not drag the graph, the config or the local-run guards
with it. Inside `pipeline` and `modules` the subpackages have an order of their own
(SUBLAYERS).
"""

import ast
import os
import sys

import pytest

from conftest import PROJECT_DIR
from pipeline import fingerprint

# Lower rank = lower layer. A module may import its own package and any lower layer.
LAYERS = {
    'contract': 0,
    'modules': 1,
    'pipeline': 2,
    # Reads what runs recorded in ML Metadata.
    'inspection': 3,
    # The local runner's console lines, beside it: they read the store through inspection.
    'run_console': 4,
    'local_runner': 5,
    'vertex_runner': 5,
    'bench': 6,
    'data': 6,
}
# Inside a package, the same rule between its parts (a part not listed is at 0, and a
# package's __init__ may import its parts).
SUBLAYERS = {
    'modules': {'transform': 0, 'model': 0, 'data': 0, 'evaluation_metrics': 0,
                'serving': 1, 'training': 2, 'tuning': 3},
    'pipeline': {'paths': 0, 'process_env': 0, 'artifact_files': 1, 'fingerprint': 1,
                 'components': 2, 'config': 2, 'local': 3, 'vertex': 3, 'graph': 4,
                 # Runs a compiled spec; uses the local ML Metadata helpers.
                 'vertex_emulator': 4},
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
  yield 'run_console.py'


def _layer_of(path: str) -> str:
  return path.split(os.sep)[0].removesuffix('.py')


def _imported_project_modules(path: str):
  """(line, dotted name) of every import of a project package or runner in the file."""
  return fingerprint.imported_names(PROJECT_DIR, path,
                                    (top for top in LAYERS if top not in ('bench', 'data')))


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


def _part_of(path_or_module: str):
  """(package, part) of a file or dotted module inside a package with SUBLAYERS."""
  parts = path_or_module.removesuffix('.py').replace(os.sep, '.').split('.')
  if parts[0] in SUBLAYERS and len(parts) > 1 and parts[1] != '__init__':
    return parts[0], parts[1]
  return None


def test_no_import_points_up_inside_modules_and_pipeline():
  wrong = []
  for path in _project_sources():
    source = _part_of(path)
    if source is None:
      continue
    package, part = source
    ranks = SUBLAYERS[package]
    for line, name in _imported_project_modules(path):
      target = _part_of(name)
      if target is None or target[0] != package or target[1] == part:
        continue
      if ranks.get(target[1], 0) >= ranks.get(part, 0):
        wrong.append(f'{path}:{line}: {package}.{part} imports {name}')
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
  for name in ('local_runner.py', 'vertex_runner.py', 'run_console.py'):
    (fake_project / name).write_text('')
  monkeypatch.setattr(sys.modules[__name__], 'PROJECT_DIR', str(fake_project))
  with pytest.raises(AssertionError, match=expected):
    test_no_import_points_up_the_layers()


def test_the_sublayer_check_sees_an_upward_import(tmp_path, monkeypatch):
  fake_project = tmp_path / 'project'
  (fake_project / 'modules' / 'model').mkdir(parents=True)
  (fake_project / 'modules' / 'training').mkdir(parents=True)
  (fake_project / 'modules' / 'training' / 'loop.py').write_text('X = 1\n')
  (fake_project / 'modules' / 'model' / 'bad.py').write_text(
      'from modules.training import loop\n')
  for name in ('local_runner.py', 'vertex_runner.py', 'run_console.py'):
    (fake_project / name).write_text('')
  monkeypatch.setattr(sys.modules[__name__], 'PROJECT_DIR', str(fake_project))
  with pytest.raises(AssertionError, match='modules.model imports modules.training.loop'):
    test_no_import_points_up_inside_modules_and_pipeline()
