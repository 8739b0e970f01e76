"""Tune a training script with BOHB: Hyperband with a KDE model of good configurations (flags: `--help`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("bohb"))
