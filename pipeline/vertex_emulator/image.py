"""The pipeline image as a folder: the Dockerfile's WORKDIR, ENV and COPY lines applied to
the project, so a file the image lacks is missing in an emulated run too."""

import dataclasses
import os
import re
import shlex
import shutil
from typing import Dict, List

_IGNORED = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')


@dataclasses.dataclass(frozen=True)
class ImageFolder:
  """`root` stands for the image's `/`."""
  root: str
  workdir: str  # as the image sees it, e.g. /pipeline
  env: Dict[str, str]

  @property
  def local_workdir(self) -> str:
    return self.local(self.workdir)

  def local(self, image_path: str) -> str:
    """Where an absolute path of the image is in the folder."""
    return os.path.join(self.root, image_path.lstrip('/'))


def _instructions(dockerfile: str) -> List[List[str]]:
  """[instruction, arguments...] per line, continuations joined, comments dropped."""
  text = re.sub(r'\\\n', ' ', open(dockerfile).read())
  lines = [line.strip() for line in text.splitlines()]
  return [[line.split(None, 1)[0].upper(), *shlex.split(line.split(None, 1)[1])]
          for line in lines if line and not line.startswith('#') and ' ' in line]


def lay_out(project_dir: str, root: str) -> ImageFolder:
  """Builds the folder at `root` (replacing what was there) from the project's Dockerfile."""
  if os.path.exists(root):
    shutil.rmtree(root)
  os.makedirs(root)
  workdir, env = '/', {}
  for instruction, *args in _instructions(os.path.join(project_dir, 'Dockerfile')):
    if instruction == 'WORKDIR':
      workdir = os.path.join(workdir, args[0])
    elif instruction == 'ENV':
      # Both forms: ENV KEY=VALUE ... and ENV KEY VALUE.
      pairs = [a.split('=', 1) for a in args] if '=' in args[0] else [args[:2]]
      env.update({key: value for key, value in pairs})
    elif instruction == 'COPY':
      sources, destination = [a for a in args[:-1] if not a.startswith('--')], args[-1]
      target = os.path.join(root, os.path.join(workdir, destination).lstrip('/'))
      for source in sources:
        _copy(os.path.join(project_dir, source), target,
              into=destination.endswith('/') or len(sources) > 1)
  os.makedirs(os.path.join(root, workdir.lstrip('/')), exist_ok=True)
  return ImageFolder(root, workdir, env)


def _copy(source: str, target: str, into: bool) -> None:
  """Docker's COPY: a folder's contents go into the target; a file goes into a target
  ending in '/', else becomes it."""
  if os.path.isdir(source):
    shutil.copytree(source, target, ignore=_IGNORED, dirs_exist_ok=True)
    return
  if not os.path.exists(source):
    raise FileNotFoundError(f'Dockerfile: COPY {source}: no such file in the project')
  if into:
    os.makedirs(target, exist_ok=True)
    target = os.path.join(target, os.path.basename(source))
  else:
    os.makedirs(os.path.dirname(target), exist_ok=True)
  shutil.copy2(source, target)
