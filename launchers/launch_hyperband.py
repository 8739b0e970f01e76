"""Tune a training script with synchronous Hyperband (Li et al., as HpBandSter computes it): successive halving in
brackets, each rung promoted once it is complete (flags: `--help`; the asynchronous variant is `--scheduler asha`)."""
import sys

from launchers.cli import main

if __name__ == "__main__":
    sys.exit(main("hyperband"))
