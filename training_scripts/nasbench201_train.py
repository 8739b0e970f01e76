"""Train one NAS-Bench-201 architecture from scratch, reporting validation metrics every epoch.

Standalone: `python training_scripts/nasbench201_train.py --arch '|nor_conv_3x3~0|+|...|' --dataset mnist
--dataset_path ../shared/datasets/mnist10k --channels 4 --cells_per_stage 1 --image_size 16 --epochs 3`.
The architecture is given either as the official string (`--arch`) or edge by edge (`--x0` .. `--x5`, the names
the tuner's config space passes). Training follows NAS-Bench-201: SGD with Nesterov momentum 0.9, weight decay
5e-4, cosine learning rate over `--epochs` stepped once per epoch. Every epoch prints one Syne Tune report line
with `epoch`, `valid_error`, `valid_loss`, `train_loss`, `train_error`, `epoch_time` and `elapsed_time` (and
`test_error`, `test_loss` with `--report_test`). `--seeds 0,1` trains several seeds side by side and reports their
mean. With `--st_checkpoint_dir` it checkpoints after every epoch (model, optimizer, LR schedule, RNG) and resumes
from there; a resumed run keeps the cosine period of the run that wrote the checkpoint. The code is the table
generator's (`benchmarks.nasbench201.training`), so with the generator's settings (the table card's "Reproduce a
row" command) it reproduces a row of the project's table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.utils import add_checkpointing_to_argparse

from benchmarks.nasbench201.arch_flags import add_arch_arguments, resolve_arch
from benchmarks.nasbench201.dataspec import DATASETS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET_PATH = REPO_ROOT / "data"
VALID_SPLIT_SEED = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the flags; bad values end with one sentence from `parser.error`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arch_arguments(parser)
    parser.add_argument("--dataset", choices=DATASETS, default="cifar10")
    parser.add_argument("--dataset_path", type=str, default=str(DEFAULT_DATASET_PATH),
                        help="folder holding MNIST/raw/, FashionMNIST/raw/ (or the four Fashion-MNIST files) or "
                             "cifar-10-batches-py/ (default: data/ at the repository root)")
    parser.add_argument("--data_fraction", type=float, default=1.0,
                        help="share of the training and validation splits used (seeded; default 1.0)")
    parser.add_argument("--valid_fraction", type=float, default=0.1,
                        help="share of the training set held out for validation (seed 0)")
    for split in ("train", "valid", "test"):
        parser.add_argument(f"--n_{split}", type=int, default=None,
                            help=f"keep a seeded subset of this many {split} images (default: all)")
    parser.add_argument("--image_size", type=int, default=None, help="resize the images once to this size")
    parser.add_argument("--channels", type=int, default=16, help="channels of the first stage (default 16)")
    parser.add_argument("--cells_per_stage", type=int, default=5, help="cells per stage (default 5)")
    parser.add_argument("--epochs", type=int, default=12, help="epoch to train up to; also the cosine period")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--augment", choices=("auto", "none", "crop_flip"), default="auto",
                        help="auto: random crop and flip on CIFAR-10 (as NAS-Bench-201), none on MNIST")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=str, default=None,
                        help="train several seeds side by side, e.g. 0,1, and report the mean over them (overrides "
                             "--seed; the project's tables answer with such means)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--num_threads", type=int, default=0,
                        help="torch CPU threads (default 0: torch's choice)")
    parser.add_argument("--report_test", action="store_true",
                        help="also report test_error and test_loss every epoch (not used for choosing)")
    add_checkpointing_to_argparse(parser)
    args = parser.parse_args(argv)

    args.arch_string = resolve_arch(parser, args)
    for name in ("channels", "cells_per_stage", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not accepted; it must be at least 1.")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate {args.learning_rate} is not accepted; it must be greater than 0.")
    if not 0.0 < args.data_fraction <= 1.0:
        parser.error(f"--data_fraction {args.data_fraction} is not accepted; it must lie in (0, 1].")
    if not 0.0 < args.valid_fraction < 1.0:
        parser.error(f"--valid_fraction {args.valid_fraction} is not accepted; it must lie in (0, 1).")
    if args.image_size is not None and args.image_size < 4:
        parser.error(f"--image_size {args.image_size} is not accepted; it must be at least 4.")
    for split in ("train", "valid", "test"):
        value = getattr(args, f"n_{split}")
        if value is not None and value < 1:
            parser.error(f"--n_{split} {value} is not accepted; it must be at least 1.")
    if args.seeds is not None:
        try:
            args.seeds = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            parser.error(f"--seeds {args.seeds!r} is not accepted; give seeds separated by commas, like 0,1.")
    if args.num_threads < 0:
        parser.error(f"--num_threads {args.num_threads} is not accepted; it must be 0 (torch's choice) or more.")
    return args


def main(argv: list[str] | None = None) -> int:
    """Train and report; returns the exit status."""
    args = parse_args(argv)
    from syne_tune import Reporter
    report = Reporter()

    import torch

    from benchmarks.nasbench201.datasets import DataMissing, prepare_data
    from benchmarks.nasbench201.dataspec import DataSpec
    from benchmarks.nasbench201.training import CheckpointError, TrainSpec, train_architecture
    from benchmarks.training import choose_device

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    try:
        device = choose_device(args.device)
        splits = prepare_data(DataSpec(args.dataset, args.dataset_path, args.valid_fraction, args.data_fraction,
                                       args.image_size, VALID_SPLIT_SEED, args.n_train, args.n_valid, args.n_test))
    except (ValueError, DataMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    augment = args.augment == "crop_flip" or (args.augment == "auto" and args.dataset == "cifar10")
    spec = TrainSpec(channels=args.channels, cells_per_stage=args.cells_per_stage, epochs=args.epochs,
                     batch_size=args.batch_size, learning_rate=args.learning_rate, augment=augment, seed=args.seed)
    try:
        train_architecture(args.arch_string, splits, spec, seeds=args.seeds, device=device, report=report,
                           checkpoint_dir=getattr(args, ST_CHECKPOINT_DIR),
                           test_epochs="all" if args.report_test else ())
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
