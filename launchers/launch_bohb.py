"""Tune a training script with BOHB, Hyperband with a KDE model of good configurations (see `--help`; the flags are shared by every launcher)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("bohb"))
