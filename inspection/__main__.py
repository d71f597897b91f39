"""`python -m inspection ...`: see inspection/cli.py."""

import sys

from inspection.cli import main

sys.exit(main())
