"""Train the MNIST convnet with the given hyperparameters, reporting validation metrics every epoch.

Standalone: `python training_scripts/mnist_convnet.py --epochs 2 --learning_rate 0.01`. Every epoch it prints one
Syne Tune report line with `epoch`, `valid_error`, `valid_loss`, `train_loss`, `train_error`, `epoch_time`,
`elapsed_time` and `params` (the model's parameter count). With `--st_checkpoint_dir` it checkpoints after every epoch
and resumes from there, continuing the epoch count. `--seed` seeds initialization, shuffling and dropout; the
validation split is fixed (seed 0), so every trial is evaluated on the same examples.

Two benchmarks run this script: `mnist_convnet` (`benchmarks.mnist.space`) and `mnist_convnet_efficient`
(`benchmarks.mnist.efficient_space`), which also tunes the per-layer flags `--conv_type_i`, `--se_i` and
`--se_reduction_i`; their defaults (`standard`, `off`) build the `mnist_convnet` model unchanged.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.utils import add_checkpointing_to_argparse

from benchmarks.mnist import efficient_space
from benchmarks.mnist.efficient_space import CONV_TYPE_KEYS, CONV_TYPES, SE_KEYS, SE_REDUCTION_KEYS, SE_SWITCH
from benchmarks.mnist.space import DEFAULT_CONFIG, FILTER_KEYS, OPTIMIZERS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET_PATH = REPO_ROOT / "data"
VALID_SPLIT_SEED = 0
SGD_MOMENTUM = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the flags; bad values end with one sentence from `parser.error`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tuned = parser.add_argument_group("tuned hyperparameters (defaults: benchmarks.mnist.space.DEFAULT_CONFIG)")
    tuned.add_argument("--learning_rate", type=float, default=DEFAULT_CONFIG["learning_rate"])
    tuned.add_argument("--n_conv_layers", type=int, default=DEFAULT_CONFIG["n_conv_layers"], help="1 to 3")
    for i, key in enumerate(FILTER_KEYS, start=1):
        tuned.add_argument(f"--{key}", type=int, default=DEFAULT_CONFIG[key],
                           help=f"filters of conv layer {i} (ignored when the layer does not exist)")
    tuned.add_argument("--batch_size", type=int, default=DEFAULT_CONFIG["batch_size"])
    tuned.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_CONFIG["optimizer"],
                       help=f"sgd uses momentum {SGD_MOMENTUM}")
    tuned.add_argument("--dropout", type=float, default=DEFAULT_CONFIG["dropout"], help="in [0, 1)")
    blocks = parser.add_argument_group("efficient blocks, tuned by mnist_convnet_efficient (ignored when the layer "
                                       "does not exist; defaults: the plain convnet)")
    block_defaults = efficient_space.DEFAULT_CONFIG
    for i, (conv_key, se_key, ratio_key) in enumerate(zip(CONV_TYPE_KEYS, SE_KEYS, SE_REDUCTION_KEYS), start=1):
        blocks.add_argument(f"--{conv_key}", choices=CONV_TYPES, default=block_defaults[conv_key],
                            help=f"convolution of layer {i}: 3x3 standard or depthwise-separable")
        blocks.add_argument(f"--{se_key}", choices=SE_SWITCH, default=block_defaults[se_key],
                            help=f"squeeze-and-excitation block after layer {i}'s activation")
        blocks.add_argument(f"--{ratio_key}", type=int, default=block_defaults[ratio_key],
                            help=f"SE reduction ratio of layer {i}, 1 or more (ignored with --{se_key} off)")
    parser.add_argument("--epochs", type=int, default=10, help="epoch to train up to (default 10)")
    parser.add_argument("--dataset_path", type=str, default=str(DEFAULT_DATASET_PATH),
                        help="folder holding MNIST/raw/ (default: data/ at the repository root)")
    parser.add_argument("--valid_fraction", type=float, default=0.1, help="share of the training set held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--num_threads", type=int, default=0,
                        help="torch CPU threads (default 0: torch's choice); 1 avoids oversubscription when "
                             "several trials share few cores")
    parser.add_argument("--report_test", action="store_true",
                        help="also report test_error and test_loss in the last epoch's report")
    add_checkpointing_to_argparse(parser)
    args = parser.parse_args(argv)

    if args.n_conv_layers not in (1, 2, 3):
        parser.error(f"--n_conv_layers {args.n_conv_layers} is not accepted; use 1, 2 or 3.")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate {args.learning_rate} is not accepted; it must be greater than 0.")
    for key in FILTER_KEYS[:args.n_conv_layers]:
        if getattr(args, key) < 1:
            parser.error(f"--{key} {getattr(args, key)} is not accepted; it must be at least 1.")
    for se_key, ratio_key in list(zip(SE_KEYS, SE_REDUCTION_KEYS))[:args.n_conv_layers]:
        if getattr(args, se_key) == "on" and getattr(args, ratio_key) < 1:
            parser.error(f"--{ratio_key} {getattr(args, ratio_key)} is not accepted; it must be at least 1.")
    if args.batch_size < 1:
        parser.error(f"--batch_size {args.batch_size} is not accepted; it must be at least 1.")
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout {args.dropout} is not accepted; it must lie in [0, 1).")
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs} is not accepted; it must be at least 1.")
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
    from benchmarks.mnist.data import load_mnist
    from benchmarks.mnist.model import ConvBlock, build_convnet
    from benchmarks.training import (CheckpointError, ModelTrainer, choose_device, count_parameters, run_epochs,
                                     seed_everything)

    try:
        device = choose_device(args.device)
        splits = load_mnist(args.dataset_path, args.valid_fraction, VALID_SPLIT_SEED)
    except (ValueError, DataMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    seed_everything(args.seed)
    filters = [getattr(args, key) for key in FILTER_KEYS[:args.n_conv_layers]]
    blocks = [ConvBlock(*block) for block in efficient_space.active_blocks(vars(args))]
    model = build_convnet(args.n_conv_layers, filters, args.dropout, blocks).to(device)
    params = count_parameters(model)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)  # about a fifth faster for small convnets on the CPU
    if args.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=SGD_MOMENTUM)
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
