"""Tune a training script with Hyperband: asynchronous successive halving over brackets (flags: `--help`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("hyperband"))
