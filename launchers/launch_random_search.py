"""Tune a training script with random search (see `--help`; the flags are shared by every launcher)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("random_search"))
