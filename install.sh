#!/usr/bin/env bash
# Creates .venv with exactly the versions CI tested (constraints.txt) and installs this
# project into it in editable mode. About 5 minutes and 3.3 GB on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"

# .python-version makes pyenv's `python` the supported 3.10; say so if it is not.
python_version=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$python_version" != "3.10" ]; then
  echo "install.sh: need Python 3.10 (TFX 1.16 supports 3.9-3.10), found $python_version." >&2
  echo "Install it (e.g. pyenv install 3.10.13) and run again." >&2
  exit 1
fi

[ -x .venv/bin/python ] || python -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade 'pip>=24'
.venv/bin/python -m pip install --quiet -c constraints.txt -r requirements.txt \
    -r bench/requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -m pip check
echo "install.sh: ready; run .venv/bin/python -m pytest"
