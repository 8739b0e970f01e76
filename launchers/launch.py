"""Tune a training script with any registered scheduler: `python launchers/launch.py --scheduler NAME` (`--help`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main())
