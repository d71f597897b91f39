"""The Pusher copies a blessed model into the serving directory once: the same model again
(a rerun with nothing changed) is not pushed a second time; another model is."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from conftest import PROJECT_DIR
from contract.names import ALREADY_PUSHED_KEY
from pipeline.components.pusher import executor as pusher


def _model(root, name, content: bytes):
  """A Model artifact whose serving export holds `content` as its SavedModel files."""
  model = standard_artifacts.Model()
  model.uri = str(root / name)
  export = root / name / 'Format-Serving'
  (export / 'variables').mkdir(parents=True)
  (export / 'saved_model.pb').write_bytes(b'graph ' + content)
  (export / 'variables' / 'variables.index').write_bytes(b'index ' + content)
  (export / 'variables' / 'variables.data-00000-of-00001').write_bytes(content * 100)
  return model


def _push(tmp_path, model, serving_dir, blessed=True):
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'pushed-{time.monotonic_ns()}')
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_dir)))
  pusher.Executor().Do({'model': [model], 'model_blessing': [blessing]},
                       {'pushed_model': [pushed]},
                       {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_a_model_is_pushed_once_and_another_model_again(tmp_path):
  serving = tmp_path / 'serving'
  first = _push(tmp_path, _model(tmp_path, 'a', b'trained once'), serving)
  assert first.get_int_custom_property('pushed') == 1
  versions = os.listdir(serving)
  assert len(versions) == 1

  # The same model (a cached Trainer's, blessed again): nothing new to serve.
  again = _push(tmp_path, _model(tmp_path, 'a-again', b'trained once'), serving)
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property(ALREADY_PUSHED_KEY) == str(serving / versions[0])
  assert os.listdir(serving) == versions

  time.sleep(1.1)  # serving versions are Unix seconds
  other = _push(tmp_path, _model(tmp_path, 'b', b'trained twice'), serving)
  assert other.get_int_custom_property('pushed') == 1
  assert len(os.listdir(serving)) == 2
  assert pusher.newest_version(str(serving)) == other.get_string_custom_property(
      'pushed_destination')


def test_an_unblessed_model_is_not_pushed_whatever_is_served(tmp_path):
  serving = tmp_path / 'serving'
  pushed = _push(tmp_path, _model(tmp_path, 'a', b'x'), serving, blessed=False)
  assert pushed.get_int_custom_property('pushed') == 0
  assert not pushed.has_custom_property(ALREADY_PUSHED_KEY)
  assert not serving.exists()


def test_the_fingerprint_covers_the_graph_and_the_variables(tmp_path):
  def fingerprint(model):
    return pusher.model_fingerprint(os.path.join(model.uri, 'Format-Serving'))
  one = fingerprint(_model(tmp_path, 'one', b'1'))
  assert one != fingerprint(_model(tmp_path, 'two', b'2'))
  assert one == fingerprint(_model(tmp_path, 'one-copy', b'1'))
  assert pusher.model_fingerprint(str(tmp_path / 'nothing')) is None
  assert pusher.newest_version(str(tmp_path / 'no-serving-dir')) is None


def test_a_savedmodel_inside_the_model_is_pushed_whole(tmp_path):
  # TFX's copy leaves out every saved_model.pb but the model's own.
  model = _model(tmp_path, 'a', b'with an index')
  index = tmp_path / 'a' / 'Format-Serving' / 'scann_index'
  (index / 'variables').mkdir(parents=True)
  (index / 'saved_model.pb').write_bytes(b'index graph')
  (index / 'variables' / 'variables.index').write_bytes(b'index variables')
  pushed = _push(tmp_path, model, tmp_path / 'serving')
  served = pushed.get_string_custom_property('pushed_destination')
  assert open(os.path.join(served, 'saved_model.pb'), 'rb').read() == b'graph with an index'
  assert open(os.path.join(served, 'scann_index', 'saved_model.pb'), 'rb').read() == (
      b'index graph')
  assert os.path.exists(os.path.join(served, 'scann_index', 'variables', 'variables.index'))


_PUSH_IN_A_PROCESS = '''
import sys
sys.path.insert(0, {project!r})
from pipeline import process_env
process_env.configure()
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from pipeline.components.pusher import executor as pusher
model = standard_artifacts.Model()
model.uri = {model!r}
blessing = standard_artifacts.ModelBlessing()
blessing.set_int_custom_property('blessed', 1)
pushed = standard_artifacts.PushedModel()
pushed.uri = {pushed!r}
destination = pusher_pb2.PushDestination(
    filesystem=pusher_pb2.PushDestination.Filesystem(base_directory={serving!r}))
print('ready', flush=True)
sys.stdin.readline()
pusher.Executor().Do({{'model': [model], 'model_blessing': [blessing]}},
                     {{'pushed_model': [pushed]}},
                     {{'push_destination': proto_utils.proto_to_json(destination)}})
'''


def _files(directory):
  return sorted(os.path.relpath(os.path.join(d, f), directory)
                for d, _, files in os.walk(directory) for f in files)


@pytest.mark.parametrize('kill_after', [0.0, 0.05, 0.15, 0.4])
def test_a_push_killed_half_way_leaves_no_version_and_the_next_push_clears_it(
    tmp_path, kill_after):
  model = _model(tmp_path, 'big', b'x')
  export = tmp_path / 'big' / 'Format-Serving'
  for index in range(300):  # about 100 MB in many files: the copy takes a while
    (export / 'variables' / f'shard-{index:03d}').write_bytes(os.urandom(1 << 18))
  serving = tmp_path / 'serving'
  script = _PUSH_IN_A_PROCESS.format(project=PROJECT_DIR, model=model.uri, serving=str(serving),
                                     pushed=str(tmp_path / 'pushed-killed'))
  child = subprocess.Popen([sys.executable, '-c', script], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
  try:
    assert child.stdout.readline().strip() == 'ready'
    child.stdin.write('go\n')
    child.stdin.flush()
    time.sleep(kill_after)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
  finally:
    child.kill()
  expected = _files(export)
  left = os.listdir(serving) if serving.exists() else []
  for name in left:  # whatever the moment of the kill: a version is whole, or is not one
    assert name.startswith(pusher.INCOMPLETE_PREFIX) or _files(serving / name) == expected
  pushed = _push(tmp_path, _model(tmp_path, 'next', b'y'), serving)
  assert pushed.get_int_custom_property('pushed') == 1
  assert not [n for n in os.listdir(serving) if n.startswith(pusher.INCOMPLETE_PREFIX)]
  assert pusher.newest_version(str(serving)) == pushed.get_string_custom_property(
      'pushed_destination')
