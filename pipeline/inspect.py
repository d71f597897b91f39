"""The inspection tool's old name, `python -m pipeline.inspect`, kept for scripts that
call it: it runs `python -m inspection` with the same arguments.

It runs the package by name instead of importing it, so that `pipeline` depends on
nothing above it (the inspection tool reads the pipeline's config, not the reverse).
"""

import runpy

if __name__ == '__main__':
  runpy.run_module('inspection', run_name='__main__', alter_sys=True)
