"""A tabulated NAS-Bench-201 architecture as a training script: reports the table's metrics epoch by epoch.

Standalone: `python training_scripts/nasbench201_lookup.py --arch '|nor_conv_3x3~0|+|...|' --epochs 9`. The
architecture is given as the official string (`--arch`) or edge by edge (`--x0` .. `--x5`). Every epoch up to
`--epochs` prints one Syne Tune report line with the tabulated `epoch`, `valid_error`, `valid_loss`,
`train_loss`, `test_error` (for reporting only) and `elapsed_time` (the cumulative tabulated seconds of training),
after sleeping `--time_scale` times the tabulated epoch time (0: no sleep). With `--st_checkpoint_dir` it remembers
the last epoch reported and resumes after it. Tables live at `benchmarks/nasbench201/data/<dataset>.npz` (or
`--table PATH`); every architecture is answered through its official equivalence class (`answers.ClassAnswers`),
and one whose class the table has not measured ends with a clear error. No torch here: it starts in about a
second.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.utils import add_checkpointing_to_argparse

from benchmarks.nasbench201.answers import ClassAnswers
from benchmarks.nasbench201.arch_flags import add_arch_arguments, resolve_arch
from benchmarks.nasbench201.encoding import string_to_index
from benchmarks.nasbench201.table import DEFAULT_TABLE, ArchitectureNotInTableError, NB201Table, TableError, \
    default_table_path

CHECKPOINT_FILE = "lookup_checkpoint.json"
REPORTED = ("valid_error", "valid_loss", "train_loss", "test_error")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse and check the flags that need no table; returns the parser too (for errors found later)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arch_arguments(parser)
    parser.add_argument("--dataset", type=str, default=DEFAULT_TABLE,
                        help=f"table name: benchmarks/nasbench201/data/<dataset>.npz (default {DEFAULT_TABLE})")
    parser.add_argument("--table", type=str, default=None, help="path of a table file (overrides --dataset)")
    parser.add_argument("--epochs", type=int, default=None, help="epoch to report up to (default: the table's last)")
    parser.add_argument("--seed", type=int, default=None, help="table seed to report (default: mean over seeds)")
    parser.add_argument("--time_scale", type=float, default=0.0,
                        help="sleep this times the tabulated epoch time per epoch (default 0: no sleep)")
    add_checkpointing_to_argparse(parser)
    args = parser.parse_args(argv)
    args.arch_string = resolve_arch(parser, args)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs {args.epochs} is not accepted; it must be at least 1.")
    if not args.time_scale >= 0:
        parser.error(f"--time_scale {args.time_scale} is not accepted; it must be 0 or more.")
    return parser, args


def read_checkpoint(directory: str | None, arch: int) -> int:
    """The last epoch reported for `arch` according to the checkpoint in `directory` (0 when there is none)."""
    if directory is None:
        return 0
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.isfile(path):
        return 0
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        epoch, saved_arch = int(state["epoch"]), int(state["arch"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"cannot resume from checkpoint {path}, which is not a lookup checkpoint; remove it or "
                         f"use another --st_checkpoint_dir.") from None
    if saved_arch != arch:
        raise ValueError(f"the checkpoint {path} belongs to architecture index {saved_arch}, not {arch}; remove it "
                         f"or use another --st_checkpoint_dir.")
    return epoch


def write_checkpoint(directory: str, arch: int, epoch: int) -> None:
    """Atomically record that `epoch` of `arch` has been reported."""
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=CHECKPOINT_FILE + ".", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"arch": arch, "epoch": epoch}, f)
    os.replace(tmp, os.path.join(directory, CHECKPOINT_FILE))


def _short(value: float) -> float:
    """A table value (stored as float32) as the shortest decimal that reads back to it (0.512, not
    0.5120000243186951)."""
    return float(str(np.float32(value)))


def main(argv: list[str] | None = None) -> int:
    """Report the tabulated curve; returns the exit status."""
    parser, args = parse_args(argv)
    path = args.table or str(default_table_path(args.dataset))
    if not os.path.isfile(path):
        print(f"error: No NAS-Bench-201 table at {path}; the project's tables are built with `python -m "
              f"benchmarks.nasbench201.generate_table build`, official ones are converted with `python -m "
              f"benchmarks.nasbench201.converters`, and --table PATH reads any other.", file=sys.stderr)
        return 1
    try:
        table = NB201Table.load(path)
    except TableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    epochs = table.n_epochs if args.epochs is None else args.epochs
    if epochs > table.n_epochs:
        parser.error(f"--epochs {epochs} is not accepted; the table {path} holds epochs 1 to {table.n_epochs}.")
    index = string_to_index(args.arch_string)
    answers = ClassAnswers(table)
    try:
        curves = {m: answers.curve(index, m, args.seed) for m in (*REPORTED, "epoch_time") if m in table.metrics}
    except ArchitectureNotInTableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyError as err:  # unknown seed
        parser.error(f"--seed {args.seed} is not accepted: {err.args[0]}")
    checkpoint_dir = getattr(args, ST_CHECKPOINT_DIR)
    try:
        start_epoch = read_checkpoint(checkpoint_dir, index)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    from syne_tune import Reporter
    report = Reporter()
    epoch_times = curves["epoch_time"].tolist() if "epoch_time" in curves else [0.0] * table.n_epochs
    elapsed = sum(epoch_times[:start_epoch])
    for epoch in range(start_epoch + 1, epochs + 1):
        seconds = epoch_times[epoch - 1]
        if args.time_scale > 0 and seconds == seconds:
            time.sleep(args.time_scale * seconds)
        elapsed += seconds
        metrics = {"epoch": epoch, **{m: _short(curves[m][epoch - 1]) for m in REPORTED if m in curves},
                   "elapsed_time": elapsed, "estimated": 0}
        if checkpoint_dir is not None:
            write_checkpoint(checkpoint_dir, index, epoch)
        report(**metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
