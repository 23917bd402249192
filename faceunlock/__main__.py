"""python -I -m faceunlock: the command line, run in an isolated interpreter (how the unit starts it)."""

import sys

from faceunlock.cli import main

sys.exit(main())
