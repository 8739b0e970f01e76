"""Tune a training script with random search (flags: `--help`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("random_search"))
