"""Tune a training script with synchronous BOHB: Hyperband with a KDE model of good configurations per budget
(flags: `--help`; the asynchronous variant is `--scheduler async_bohb`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("bohb"))
