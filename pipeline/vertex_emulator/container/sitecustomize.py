"""Loaded first by every Python process of an emulated Vertex AI task (this folder is on
its PYTHONPATH after the image's WORKDIR).

The image installs the project from its own copy (`pip install -e .` in the WORKDIR); this
environment's editable install points at the checkout instead, so its finder is removed:
what the image folder lacks cannot be imported. In the Trainer's task, the Vertex AI job
client and the pusher's endpoint deployment are replaced by local stand-ins.
"""

import os
import sys

sys.meta_path[:] = [finder for finder in sys.meta_path
                    if '__editable__' not in getattr(finder, '__module__', '')
                    and '__editable__' not in getattr(finder, '__name__', '')]

if os.environ.get('VERTEX_EMULATOR_SERVICES'):
  import emulated_services  # pylint: disable=g-import-not-at-top
  emulated_services.install()
