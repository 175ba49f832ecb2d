"""``python -m model_training.slides``: the same command as ``python -m model_training.cli.slides`` (score whole
slides), under the shorter name that pathologists' scripts and lab notes use for it."""
from __future__ import annotations

import sys

from model_training.cli.slides import main

if __name__ == "__main__":
    sys.exit(main())
