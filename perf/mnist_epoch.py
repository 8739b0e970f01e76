"""Speed of one MNIST training epoch: in-memory batching (benchmarks/training.py) against a torchvision DataLoader.

Both sides train the same two-layer convnet (DEFAULT_CONFIG: 16/32 filters, dropout 0.1, Adam 1e-3) with batch size
64 over the same 8,000 MNIST-10k training images, with the same `torch.set_num_threads`, from the same initial
weights. Also measures the time from `Popen` of `training_scripts/mnist_convnet.py --epochs 1` to its first report
line. Not a test: `python perf/mnist_epoch.py [--dataset-path ../shared/datasets/mnist10k]`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET_PATH = REPO_ROOT.parent / "shared" / "datasets" / "mnist10k"
SCRIPT = REPO_ROOT / "training_scripts" / "mnist_convnet.py"
BATCH_SIZE = 64
TARGET_SPEEDUP = 1.8


def parse_args() -> argparse.Namespace:
    """Flags of the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-path", type=Path, default=DEFAULT_DATASET_PATH,
                        help="folder holding MNIST/raw/ (default: ../shared/datasets/mnist10k)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for every method (default 1: steady timings on a shared machine)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per method; the best is kept")
    args = parser.parse_args()
    raw = args.dataset_path / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((raw / n).is_file() or (raw / f"{n}.gz").is_file() for n in names):
        parser.error(f"MNIST files not found under {raw}; pass --dataset-path pointing at a folder holding "
                     f"MNIST/raw/ with {', '.join(names)}.")
    if args.threads < 1:
        parser.error(f"--threads {args.threads} is not accepted; it must be at least 1.")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} is not accepted; it must be at least 1.")
    return args


def time_to_first_report(dataset_path: Path, threads: int) -> tuple[float, float]:
    """Seconds from Popen of the training script to its first `[tune-metric]` line, and that report's elapsed_time."""
    import json
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--epochs", "1", "--dataset_path", str(dataset_path),
                             "--num_threads", str(threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
    total, training = float("nan"), float("nan")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("[tune-metric]"):
            total = time.perf_counter() - start
            training = json.loads(line.split(":", 1)[1])["elapsed_time"]
            break
    proc.stdout.close()
    proc.wait()
    return total, training


def main() -> None:
    """Measure and print the table."""
    args = parse_args()
    import torch
    import torch.nn.functional as F
    import torchvision
    from torchvision import transforms

    from benchmarks.mnist.data import MNIST, load_mnist
    from benchmarks.mnist.model import build_convnet
    from benchmarks.mnist.space import DEFAULT_CONFIG, active_filters
    from benchmarks.training import batches, epoch_generator, train_one_epoch

    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = torch.device("cpu")

    def fresh_model(channels_last: bool = False) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        filters = active_filters(DEFAULT_CONFIG)
        model = build_convnet(DEFAULT_CONFIG["n_conv_layers"], filters, DEFAULT_CONFIG["dropout"])
        if channels_last:
            model.to(memory_format=torch.channels_last)
        return model, torch.optim.Adam(model.parameters(), lr=DEFAULT_CONFIG["learning_rate"])

    # In-memory: the script's data path (numpy IDX reader) and loop, over all training images.
    t0 = time.perf_counter()
    splits = load_mnist(args.dataset_path, 0.1, 0)
    load_memory = time.perf_counter() - t0
    x = torch.cat([splits.x_train, splits.x_valid])
    y = torch.cat([splits.y_train, splits.y_valid])

    # DataLoader: torchvision's MNIST with per-sample ToTensor + Normalize.
    t0 = time.perf_counter()
    normalize = transforms.Normalize((MNIST.mean,), (MNIST.std,))
    dataset = torchvision.datasets.MNIST(str(args.dataset_path), train=True, download=False,
                                         transform=transforms.Compose([transforms.ToTensor(), normalize]))
    load_loader = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
    assert len(dataset) == len(y)

    def loader_data_only() -> float:
        start = time.perf_counter()
        for _ in loader:
            pass
        return time.perf_counter() - start

    def memory_data_only(epoch: int) -> float:
        start = time.perf_counter()
        for idx in batches(len(y), BATCH_SIZE, epoch_generator(0, epoch)):
            x[idx], y[idx]
        return time.perf_counter() - start

    def memory_epoch(epoch: int, channels_last: bool = False) -> float:
        model, optimizer = fresh_model(channels_last)
        start = time.perf_counter()
        train_one_epoch(model, optimizer, x, y, BATCH_SIZE, epoch_generator(0, epoch), device)
        return time.perf_counter() - start

    def loader_epoch() -> float:
        model, optimizer = fresh_model()
        model.train()
        start = time.perf_counter()
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    # Warm-up (lazy imports, oneDNN kernels), then alternate the two methods and keep each one's best epoch.
    warm_model, warm_opt = fresh_model()
    train_one_epoch(warm_model, warm_opt, x[:512], y[:512], BATCH_SIZE, epoch_generator(0, 0), device)
    memory_times, loader_times, script_times = [], [], []
    for repeat in range(args.repeats):
        loader_times.append(loader_epoch())
        memory_times.append(memory_epoch(repeat + 1))
        script_times.append(memory_epoch(repeat + 1, channels_last=True))
    memory, baseline, script = min(memory_times), min(loader_times), min(script_times)
    loader_data = min(loader_data_only() for _ in range(args.repeats))
    memory_data = min(memory_data_only(r + 1) for r in range(args.repeats))
    first_report, first_epoch = time_to_first_report(args.dataset_path, args.threads)

    n = len(y)
    print(f"MNIST-10k, one training epoch: {n} images, batch {BATCH_SIZE}, convnet 2 layers "
          f"{active_filters(DEFAULT_CONFIG)}, {threads} torch threads, best of {args.repeats}")
    rows = [("training epoch: torchvision DataLoader", load_loader, baseline, baseline),
            ("training epoch: in-memory batching", load_memory, memory, baseline),
            ("training epoch: in-memory + channels_last (script)", load_memory, script, baseline),
            ("data only: torchvision DataLoader", load_loader, loader_data, loader_data),
            ("data only: in-memory batching", load_memory, memory_data, loader_data)]
    print(f"{'method':<52} {'load s':>7} {'epoch s':>8} {'images/s':>10} {'speed-up':>9}")
    for name, load, epoch, reference in rows:
        print(f"{name:<52} {load:>7.2f} {epoch:>8.3f} {n / epoch:>10.0f} {reference / epoch:>8.2f}x")
    for name, _, epoch, _ in rows[1:3]:
        verdict = "meets" if baseline / epoch >= TARGET_SPEEDUP else "misses"
        print(f"{name}: {baseline / epoch:.2f}x, {verdict} the {TARGET_SPEEDUP}x target")
    print(f"training_scripts/mnist_convnet.py --epochs 1 --num_threads {args.threads}: {first_report:.2f} s from "
          f"Popen to the first report line ({first_report - first_epoch:.2f} s start-up and data loading, "
          f"{first_epoch:.2f} s first epoch and validation)")


if __name__ == "__main__":
    main()
