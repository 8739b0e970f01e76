"""Train the two-layer MLP of Syne Tune's tutorial on Fashion-MNIST, reporting validation metrics every epoch.

Standalone: `python training_scripts/fashion_mnist_mlp.py --epochs 2 --dataset_path ../shared/datasets/fashion-mnist`.
Every epoch it prints one Syne Tune report line with `epoch`, `valid_error` (1 - validation accuracy), `valid_loss`,
`train_loss`, `train_error`, `epoch_time`, `elapsed_time` and `params` (the model's parameter count). With
`--st_checkpoint_dir` it checkpoints after every epoch and resumes from there, continuing the epoch count. `--seed`
seeds initialization, shuffling and dropout; the validation split is fixed (seed 0), so every trial is evaluated on
the same examples. The optimizer is Adam with L2 weight decay, as in the tutorial.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.utils import add_checkpointing_to_argparse

from benchmarks.fashion_mnist.space import DEFAULT_CONFIG, MAX_EPOCHS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET_PATH = REPO_ROOT / "data"
VALID_SPLIT_SEED = 0
VALID_FRACTION = 1 / 6  # 10,000 of the 60,000 training images, the tutorial's validation size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the flags; bad values end with one sentence from `parser.error`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tuned = parser.add_argument_group("tuned hyperparameters (defaults: benchmarks.fashion_mnist.space.DEFAULT_CONFIG)")
    tuned.add_argument("--n_units_1", type=int, default=DEFAULT_CONFIG["n_units_1"], help="units of hidden layer 1")
    tuned.add_argument("--n_units_2", type=int, default=DEFAULT_CONFIG["n_units_2"], help="units of hidden layer 2")
    tuned.add_argument("--batch_size", type=int, default=DEFAULT_CONFIG["batch_size"])
    tuned.add_argument("--dropout_1", type=float, default=DEFAULT_CONFIG["dropout_1"], help="in [0, 1)")
    tuned.add_argument("--dropout_2", type=float, default=DEFAULT_CONFIG["dropout_2"], help="in [0, 1)")
    tuned.add_argument("--learning_rate", type=float, default=DEFAULT_CONFIG["learning_rate"], help="Adam's")
    tuned.add_argument("--weight_decay", type=float, default=DEFAULT_CONFIG["weight_decay"],
                       help="Adam's L2 penalty, 0 or more")
    parser.add_argument("--epochs", type=int, default=MAX_EPOCHS, help=f"epoch to train up to (default {MAX_EPOCHS})")
    parser.add_argument("--dataset_path", type=str, default=str(DEFAULT_DATASET_PATH),
                        help="folder holding FashionMNIST/raw/ or the four IDX files themselves (default: data/ at "
                             "the repository root)")
    parser.add_argument("--valid_fraction", type=float, default=VALID_FRACTION,
                        help="share of the training set held out (default 1/6: 10,000 images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--num_threads", type=int, default=0,
                        help="torch CPU threads (default 0: torch's choice); 1 avoids oversubscription when "
                             "several trials share few cores")
    parser.add_argument("--report_test", action="store_true",
                        help="also report test_error and test_loss in the last epoch's report")
    add_checkpointing_to_argparse(parser)
    args = parser.parse_args(argv)

    for key in ("n_units_1", "n_units_2", "batch_size", "epochs"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} {getattr(args, key)} is not accepted; it must be at least 1.")
    for key in ("dropout_1", "dropout_2"):
        if not 0.0 <= getattr(args, key) < 1.0:
            parser.error(f"--{key} {getattr(args, key)} is not accepted; it must lie in [0, 1).")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate {args.learning_rate} is not accepted; it must be greater than 0.")
    if not args.weight_decay >= 0:
        parser.error(f"--weight_decay {args.weight_decay} is not accepted; it must be 0 or more.")
    if args.num_threads < 0:
        parser.error(f"--num_threads {args.num_threads} is not accepted; it must be 0 (torch's choice) or more.")
    if not 0.0 < args.valid_fraction < 1.0:
        parser.error(f"--valid_fraction {args.valid_fraction} is not accepted; it must lie in (0, 1).")
    return args


def main(argv: list[str] | None = None) -> int:
    """Train and report; returns the exit status."""
    args = parse_args(argv)
    from syne_tune import Reporter
    reporter = Reporter()

    import torch

    from benchmarks.download import DataMissing
    from benchmarks.fashion_mnist.model import build_mlp
    from benchmarks.mnist.data import FASHION_MNIST, load_mnist
    from benchmarks.training import (CheckpointError, ModelTrainer, choose_device, count_parameters, run_epochs,
                                     seed_everything)

    try:
        device = choose_device(args.device)
        splits = load_mnist(args.dataset_path, args.valid_fraction, VALID_SPLIT_SEED, dataset=FASHION_MNIST)
    except (ValueError, DataMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    seed_everything(args.seed)
    model = build_mlp(args.n_units_1, args.n_units_2, args.dropout_1, args.dropout_2).to(device)
    params = count_parameters(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    try:
        trainer = ModelTrainer(model, optimizer, splits, batch_size=args.batch_size, seed=args.seed, device=device)
        run_epochs(trainer, args.epochs, report=lambda **metrics: reporter(**metrics, params=params),
                   checkpoint_dir=getattr(args, ST_CHECKPOINT_DIR),
                   test_epochs=(args.epochs,) if args.report_test else ())
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
