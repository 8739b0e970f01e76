"""Tune a training script with Hyperband, asynchronous successive halving over several brackets (see `--help`; the flags are shared by every launcher)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("hyperband"))
