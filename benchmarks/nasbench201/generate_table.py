"""Make the project's own NAS-Bench-201 table by training cells for real on MNIST (MNIST-10k here).

Three commands:

- `run` (the default): train one representative per isomorphism class, for a seeded random order of the classes
  (so whatever prefix is finished is a uniform random sample of classes), in parallel worker processes with the
  code of `training_scripts/nasbench201_train.py` (`training.train_architecture`). Each trained architecture is
  appended as one JSON line to `--out` as soon as it is done, so a restart continues where the last run stopped,
  never trains an architecture twice, and a killed run loses at most the architectures in flight. The first line
  holds the settings and provenance; a restart with other settings is refused.
- `build`: turn the JSON lines into the compact `NB201Table` file (`.npz`, one seed) with provenance in its meta.
- `measure`: time a few cells (or a random sample of classes) at the given settings, to choose the settings.

    python -m benchmarks.nasbench201.generate_table --dataset-path ../shared/datasets/mnist10k \\
        --out benchmarks/nasbench201/data/mnist10k-runs.jsonl --workers 2 --n-classes 2500 --epochs 9
    python -m benchmarks.nasbench201.generate_table build --runs benchmarks/nasbench201/data/mnist10k-runs.jsonl
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .encoding import NUM_ARCHS, canonical_index, index_to_string, isomorphism_classes, to_index
from .table import DATA_DIR, NB201Table

RUNS_FORMAT = "nb201-runs/1"
DEFAULT_NAME = "mnist10k"
DEFAULT_RUNS = DATA_DIR / f"{DEFAULT_NAME}-runs.jsonl"
TABLE_METRICS = ("train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error", "epoch_time")
RUN_METRICS = (*TABLE_METRICS, "epoch_cpu_time")
# The settings chosen for this machine (see the table card in the README and `measure`).
DEFAULTS: dict[str, Any] = {
    "dataset": "mnist", "valid_fraction": 0.3333, "data_fraction": 0.375, "image_size": 16,
    "channels": 4, "cells_per_stage": 1, "epochs": 9, "batch_size": 64, "learning_rate": 0.05, "seed": 0,
    "sample_seed": 0, "test_epochs": "all",
}
CODE_FILES = ("benchmarks/nasbench201/training.py", "benchmarks/nasbench201/datasets.py",
              "benchmarks/nasbench201/model.py", "benchmarks/nasbench201/cell.py", "benchmarks/nasbench201/ops.py",
              "benchmarks/nasbench201/encoding.py", "benchmarks/training.py", "benchmarks/mnist/data.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Settings that must be equal for lines to belong to one table (dataset_path may be spelled differently).
_FIXED_KEYS = ("format", "data", "train", "test_epochs", "sample_seed", "data_digest")


class GenerationError(RuntimeError):
    """A runs file or settings that cannot be used (the message is one sentence for the user)."""


# ---------------------------------------------------------------- order of classes and provenance

def class_order(sample_seed: int = 0) -> list[int]:
    """Class representatives (canonical indices): the zero-output class 0 first, as the reference for the worst
    cell, then all others in a seeded random order, so that any prefix holds a uniform sample of them."""
    reps = np.array(sorted(isomorphism_classes()), dtype=np.int64)
    shuffled = [int(a) for a in reps[np.random.RandomState(sample_seed).permutation(len(reps))]]
    return [0] + [a for a in shuffled if a != 0]


def code_version() -> dict[str, str]:
    """The git commit (with `-dirty` if the training code differs from it) and a hash of the training code."""
    digest = hashlib.sha1()
    for name in CODE_FILES:
        path = REPO_ROOT / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    out = {"code_hash": digest.hexdigest()[:12], "git_commit": "unknown"}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_FILES], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit:
            out["git_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def device_description(device: str, threads: int) -> str:
    """The CPU model and thread count, or the GPU name."""
    import torch
    if device.startswith("cuda"):
        return f"GPU {torch.cuda.get_device_name(torch.device(device))}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {model}, {threads} thread(s)"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- settings

def _data_spec(args: argparse.Namespace):
    from .datasets import DataSpec
    return DataSpec(dataset=args.dataset, dataset_path=str(args.dataset_path), valid_fraction=args.valid_fraction,
                    data_fraction=args.data_fraction, image_size=args.image_size, split_seed=0)


def _train_spec(args: argparse.Namespace):
    from .training import TrainSpec
    return TrainSpec(channels=args.channels, cells_per_stage=args.cells_per_stage, epochs=args.epochs,
                     batch_size=args.batch_size, learning_rate=args.learning_rate, augment=False, seed=args.seed)


def _parse_test_epochs(text: str, epochs: int) -> list[int]:
    if text == "all":
        return list(range(1, epochs + 1))
    if text == "last":
        return [epochs]
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1 or values[-1] > epochs:
        raise GenerationError(f"--test-epochs {text!r} is not accepted; use all, last or a comma-separated list "
                              f"of epochs between 1 and {epochs}.")
    return values


def _data_digest(splits) -> str:
    digest = hashlib.sha1()
    for name in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test"):
        digest.update(getattr(splits, name).numpy().tobytes())
    return digest.hexdigest()[:16]


def train_script_command(header: dict[str, Any], arch: str = "ARCH") -> str:
    """The `nasbench201_train.py` command line that trains one architecture exactly as the table did."""
    data, train = header["data"], header["train"]
    parts = ["python training_scripts/nasbench201_train.py", f"--arch '{arch}'", f"--dataset {data['dataset']}",
             f"--dataset_path {data['dataset_path']}", f"--valid_fraction {data['valid_fraction']}",
             f"--data_fraction {data['data_fraction']}"]
    if data.get("image_size"):
        parts.append(f"--image_size {data['image_size']}")
    parts += [f"--channels {train['channels']}", f"--cells_per_stage {train['cells_per_stage']}",
              f"--epochs {train['epochs']}", f"--batch_size {train['batch_size']}",
              f"--learning_rate {train['learning_rate']}", f"--seed {train['seed']}", "--device cpu --num_threads 1"]
    return " ".join(parts)


# ---------------------------------------------------------------- the runs file

def read_runs(path: str | os.PathLike, repair: bool = False) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and result lines of a runs file ((None, []) if absent).

    A last line cut short by a kill is ignored, and removed from the file when `repair`.
    """
    path = Path(path)
    if not path.is_file():
        return None, []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(cut)
    header, results = None, []
    for number, line in enumerate(data[:cut].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise GenerationError(f"Line {number} of {path} is not JSON; remove that line to continue.") from None
        if record.get("type") == "header":
            if header is None:
                header = record
        elif record.get("type") == "result":
            results.append(record)
    if results and header is None:
        raise GenerationError(f"{path} has results but no header line; it was not written by this generator.")
    return header, results


def _check_header(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    if old.get("format") != RUNS_FORMAT:
        raise GenerationError(f"{path} has format {old.get('format')!r}; this generator writes {RUNS_FORMAT!r}.")
    for key in _FIXED_KEYS:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            a = {k: v for k, v in a.items() if k != "dataset_path"}
            b = {k: v for k, v in b.items() if k != "dataset_path"}
        if a != b:
            raise GenerationError(f"{path} was made with other settings ({key}: {a!r}, now {b!r}); restart with "
                                  f"the same settings or write to another --out file.")


def _lock_path(out: Path) -> Path:
    """A lock file outside the repository, one per runs file."""
    import tempfile
    key = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"nb201-generate-{key}.lock"


def _append(f, record: dict[str, Any]) -> None:
    f.write(json.dumps(record, separators=(",", ":")) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _round(values: Sequence[float]) -> list[float]:
    return [float(f"{v:.6g}") if math.isfinite(v) else v for v in values]


# ---------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _worker_init(data_spec_dict: dict[str, Any], train_spec_dict: dict[str, Any], test_epochs: list[int],
                 device: str, threads: int) -> None:
    """Load the data once per worker process; one torch thread by default so workers do not fight for cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    import torch

    from .datasets import DataSpec, prepare_data
    from .training import TrainSpec
    torch.set_num_threads(threads)
    _WORKER.update(splits=prepare_data(DataSpec(**data_spec_dict)), train=TrainSpec(**train_spec_dict),
                   test_epochs=test_epochs, device=device, threads=threads)


def _train_one(arch: int) -> dict[str, Any]:
    """Train one architecture in a worker; returns its result record (or an `error` record)."""
    from .training import train_architecture
    start = time.perf_counter()
    try:
        info: dict[str, Any] = {}
        rows = train_architecture(arch, _WORKER["splits"], _WORKER["train"], device=_WORKER["device"],
                                  test_epochs=_WORKER["test_epochs"], start_info=info)
    except Exception as err:  # reported by the parent; the architecture is retried on the next run
        return {"type": "error", "arch": arch, "error": f"{type(err).__name__}: {err}"}
    epochs = {m: _round([row.get(m, float("nan")) for row in rows]) for m in RUN_METRICS}
    return {"type": "result", "arch": arch, "arch_str": index_to_string(arch), "params": info["params"],
            "flops": info["flops"], "metrics": epochs, "seconds": round(time.perf_counter() - start, 3),
            "pid": os.getpid(), "finished": _now()}


# ---------------------------------------------------------------- run

def run(args: argparse.Namespace) -> int:
    """Train the classes not yet in the runs file, appending one line each; returns the exit status."""
    import torch
    from filelock import FileLock, Timeout

    from .datasets import DataMissing, prepare_data, split_sizes

    out = Path(args.out)
    data_spec, train_spec = _data_spec(args), _train_spec(args)
    test_epochs = _parse_test_epochs(args.test_epochs, args.epochs)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "auto":
        device = "cpu"
    try:
        splits = prepare_data(data_spec)
    except (ValueError, DataMissing) as err:
        raise GenerationError(str(err)) from None
    versions = code_version()
    header = {
        "type": "header", "format": RUNS_FORMAT, "name": args.name, "data": asdict(data_spec),
        "train": train_spec.as_dict(), "test_epochs": test_epochs, "sample_seed": args.sample_seed,
        "data_digest": _data_digest(splits), "split_sizes": split_sizes(splits), "created": _now(),
        "torch": torch.__version__, "python": platform.python_version(), **versions,
        "device": device_description(device, args.threads), "n_classes_total": len(isomorphism_classes()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = _lock_path(out)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GenerationError(f"Another generator is writing to {out} (lock file {lock_path}); wait for it or "
                              f"stop it first.") from None
    try:
        old, results = read_runs(out, repair=True)
        if old is not None:
            _check_header(old, header, out)
        done = {int(r["arch"]) for r in results}
        order = class_order(args.sample_seed)[:args.n_classes]
        todo = [a for a in order if a not in done]
        print(f"{out}: {len(done)} architectures done, {len(todo)} of the first {len(order)} classes to train "
              f"on {args.workers or 1} worker(s) ({header['device']}; {header['split_sizes']}).", flush=True)
        with open(out, "a", encoding="utf-8") as f:
            if old is None:
                _append(f, header)
            stamp = {"torch": header["torch"], "device": header["device"], "code": versions["code_hash"],
                     "git": versions["git_commit"]}
            return _train_all(todo, f, stamp, args, data_spec, train_spec, test_epochs, device, len(done))
    finally:
        lock.release()


def _results(todo: list[int], args: argparse.Namespace, init_args: tuple) -> Iterator[dict[str, Any]]:
    if args.workers <= 0:
        _worker_init(*init_args)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for arch in todo:
            yield _train_one(arch)
        return
    import multiprocessing as mp
    import queue
    finished: queue.SimpleQueue = queue.SimpleQueue()
    pool = mp.get_context("spawn").Pool(args.workers, initializer=_worker_init, initargs=init_args)
    try:
        # at most one task per worker in flight, so that stopping loses no more than the architectures in training
        pending = iter(todo)
        in_flight = 0
        for arch in pending:
            pool.apply_async(_train_one, (arch,), callback=finished.put)
            in_flight += 1
            if in_flight == args.workers:
                break
        while in_flight:
            try:
                record = finished.get(timeout=1.0)
            except queue.Empty:
                continue
            in_flight -= 1
            arch = next(pending, None)
            if arch is not None:
                pool.apply_async(_train_one, (arch,), callback=finished.put)
                in_flight += 1
            yield record
        pool.close()
        pool.join()
    finally:
        pool.terminate()


def _train_all(todo: list[int], f, stamp: dict[str, str], args: argparse.Namespace, data_spec, train_spec,
               test_epochs: list[int], device: str, n_done: int) -> int:
    if not todo:
        return 0
    deadline = time.monotonic() + args.max_hours * 3600 if args.max_hours else None
    init_args = (asdict(data_spec), asdict(train_spec), test_epochs, device, args.threads)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    start, count, failures = time.monotonic(), 0, 0
    try:
        for record in _results(todo, args, init_args):
            if record["type"] == "error":
                failures += 1
                print(f"arch {record['arch']} failed ({record['error']}); it is retried on the next run.",
                      file=sys.stderr, flush=True)
                continue
            _append(f, {**record, **stamp})
            count += 1
            rate = (time.monotonic() - start) / count
            print(f"[{n_done + count}] arch {record['arch']:5d} valid_error {record['metrics']['valid_error'][-1]:.4f}"
                  f" in {record['seconds']:.1f} s; {len(todo) - count} to go, about "
                  f"{rate * (len(todo) - count) / 3600:.2f} h left", flush=True)
            if deadline is not None and time.monotonic() > deadline:
                print(f"--max-hours {args.max_hours} reached; stopping (a restart continues).", flush=True)
                break
    except KeyboardInterrupt:
        print(f"interrupted after {count} architectures; a restart continues where this run stopped.", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 1 if failures else 0


# ---------------------------------------------------------------- build

def build_table(runs: str | os.PathLike, name: str | None = None) -> NB201Table:
    """The NB201Table of a runs file: rows are the trained class representatives, one seed, per-epoch metrics."""
    runs = Path(runs)
    header, results = read_runs(runs)
    if header is None:
        raise GenerationError(f"No runs file at {runs}; make one with `python -m benchmarks.nasbench201."
                              f"generate_table --out {runs}`.")
    if not results:
        raise GenerationError(f"{runs} holds no trained architectures yet; let the generator run first.")
    by_arch: dict[int, dict[str, Any]] = {}
    for record in results:
        by_arch.setdefault(int(record["arch"]), record)
    archs = sorted(by_arch)
    n_epochs = int(header["train"]["epochs"])
    # epoch_time: CPU seconds of the one-thread worker (its time on an otherwise idle core; the machine may have
    # been shared), epoch_wall_time: the wall-clock seconds measured
    sources = {**{m: m for m in TABLE_METRICS}, "epoch_time": "epoch_cpu_time", "epoch_wall_time": "epoch_time"}
    metrics = {m: np.full((len(archs), 1, n_epochs), np.nan, dtype=np.float32) for m in sources}
    for row, arch in enumerate(archs):
        recorded = by_arch[arch]["metrics"]
        for m, source in sources.items():
            values = np.asarray(recorded.get(source, recorded.get(m, [])), dtype=np.float64)[:n_epochs]
            metrics[m][row, 0, :len(values)] = values
    classes = isomorphism_classes()
    figures = {
        "params": np.array([by_arch[a]["params"] / 1e6 for a in archs], dtype=np.float64),
        "flops": np.array([by_arch[a]["flops"] / 1e6 for a in archs], dtype=np.float64),
        "class_size": np.array([len(classes.get(a, [a])) for a in archs], dtype=np.int64),
    }
    covered = int(figures["class_size"].sum())
    meta = {
        "source": "benchmarks.nasbench201.generate_table (trained for real by this project)",
        "runs_file": runs.name, "canonical_only": True,
        "archs_note": "rows are isomorphism-class representatives (encoding.canonical_index); look up any "
                      "architecture through its canonical index",
        "coverage": {"classes_trained": len(archs), "classes_total": len(classes),
                     "class_fraction": round(len(archs) / len(classes), 4), "architectures_covered": covered,
                     "architectures_total": NUM_ARCHS,
                     "sample": f"the first {len(archs)} classes of a seeded random order (sample_seed "
                               f"{header['sample_seed']}), a uniform random sample of classes"},
        "settings": {"data": header["data"], "split_sizes": header["split_sizes"], "train": header["train"],
                     "test_epochs": header["test_epochs"], "sample_seed": header["sample_seed"],
                     "data_digest": header["data_digest"]},
        "reproduce": train_script_command(header),
        "provenance": {
            "created": header["created"], "last_result": max(r.get("finished", "") for r in results),
            "git_commits": sorted({r.get("git", header.get("git_commit", "")) for r in results}),
            "code_hashes": sorted({r.get("code", header.get("code_hash", "")) for r in results}),
            "torch_versions": sorted({r.get("torch", header.get("torch", "")) for r in results}),
            "devices": sorted({r.get("device", header.get("device", "")) for r in results}),
            "python": header.get("python", ""),
            "worker_wall_seconds": round(sum(float(r.get("seconds", 0.0)) for r in results), 1),
            "train_valid_cpu_seconds": round(float(np.nansum(metrics["epoch_time"])), 1),
        },
        "epoch_time_note": "epoch_time: CPU seconds of training plus validation in that epoch in a one-thread worker "
                           "process, i.e. its time on an otherwise idle core (the machine was shared, so wall times "
                           "vary); epoch_wall_time: the wall-clock seconds measured; test evaluation not counted",
    }
    return NB201Table(archs, [int(header["train"]["seed"])], metrics, figures,
                      dataset=name or header.get("name") or DEFAULT_NAME, meta=meta)


def build(args: argparse.Namespace) -> int:
    """Write the table file of a runs file; returns the exit status."""
    table = build_table(args.runs, args.name)
    out = Path(args.out) if args.out else DATA_DIR / f"{table.dataset}.npz"
    path = table.save(out)
    from .card import write_card

    card = write_card(table, path.with_suffix(".md"))
    cov = table.meta["coverage"]
    print(f"{path}: {cov['classes_trained']} of {cov['classes_total']} classes ({cov['architectures_covered']} of "
          f"{NUM_ARCHS} architectures), {table.n_epochs} epochs, {path.stat().st_size / 1e6:.2f} MB; card: {card}.")
    return 0


# ---------------------------------------------------------------- measure

def measure(args: argparse.Namespace) -> int:
    """Time training at the given settings on named cells or a random sample of classes; prints a projection."""
    import torch

    from .datasets import prepare_data, split_sizes
    from .training import train_architecture

    torch.set_num_threads(args.threads)
    data_spec, train_spec = _data_spec(args), _train_spec(args)
    splits = prepare_data(data_spec)
    if args.archs:
        archs = [canonical_index(to_index(a if not a.isdigit() else int(a))) for a in args.archs]
    else:
        archs = class_order(args.sample_seed + 1)[:args.n_sample]
    test_epochs = _parse_test_epochs(args.test_epochs, args.epochs)
    print(f"settings: {asdict(data_spec)} {asdict(train_spec)} test epochs {test_epochs}; {split_sizes(splits)}")
    per_epoch = []
    for arch in archs:
        start = time.perf_counter()
        rows = train_architecture(arch, splits, train_spec, test_epochs=test_epochs, start_info={})
        total = time.perf_counter() - start
        per_epoch.append(total / len(rows))
        curve = " ".join(f"{r['valid_error']:.3f}" for r in rows)
        print(f"{index_to_string(arch)} {total / len(rows):.3f} s/epoch (train+valid "
              f"{np.mean([r['epoch_time'] for r in rows]):.3f}); valid_error {curve}; "
              f"test_error {rows[-1].get('test_error', float('nan')):.3f}", flush=True)
    mean = float(np.mean(per_epoch))
    hours = mean * args.epochs * args.n_classes / 3600
    print(f"mean {mean:.3f} s per architecture-epoch (all included) -> {args.n_classes} classes x {args.epochs} "
          f"epochs = {hours:.2f} core-hours")
    return 0


# ---------------------------------------------------------------- command line

def _add_settings(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default=d["dataset"])
    parser.add_argument("--dataset-path", default=str(REPO_ROOT.parent / "shared" / "datasets" / "mnist10k"),
                        help="folder with MNIST/raw/ (default ../shared/datasets/mnist10k)")
    parser.add_argument("--valid-fraction", type=float, default=d["valid_fraction"])
    parser.add_argument("--data-fraction", type=float, default=d["data_fraction"],
                        help="share of the training and validation splits kept")
    parser.add_argument("--image-size", type=int, default=d["image_size"], help="resize to this size (0: keep)")
    parser.add_argument("--channels", type=int, default=d["channels"])
    parser.add_argument("--cells-per-stage", type=int, default=d["cells_per_stage"])
    parser.add_argument("--epochs", type=int, default=d["epochs"])
    parser.add_argument("--batch-size", type=int, default=d["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=d["learning_rate"])
    parser.add_argument("--seed", type=int, default=d["seed"], help="training seed (one seed per table)")
    parser.add_argument("--sample-seed", type=int, default=d["sample_seed"], help="seed of the order of classes")
    parser.add_argument("--test-epochs", default=d["test_epochs"],
                        help="epochs with a test evaluation: all, last or a list like 1,3,9")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--n-classes", type=int, default=2500, help="how many classes of the random order")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `run` (the default), `build` or `measure` flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("run", "build", "measure") else "run"
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nasbench201.generate_table" +
                                     ("" if command == "run" else f" {command}"), description=__doc__.splitlines()[0])
    if command == "build":
        parser.add_argument("--runs", default=str(DEFAULT_RUNS), help="the runs file (JSON lines)")
        parser.add_argument("--out", default=None, help="table file (default benchmarks/nasbench201/data/<name>.npz)")
        parser.add_argument("--name", default=None, help="dataset name of the table (default: the runs file's)")
    else:
        _add_settings(parser)
        if command == "run":
            parser.add_argument("--out", default=str(DEFAULT_RUNS), help="runs file to append to")
            parser.add_argument("--name", default=DEFAULT_NAME, help="dataset name of the table")
            parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
            parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
            parser.add_argument("--max-hours", type=float, default=None, help="stop starting work after this")
        else:
            parser.add_argument("--archs", nargs="*", default=None, help="architecture strings or indices")
            parser.add_argument("--n-sample", type=int, default=12, help="random classes to time without --archs")
    args = parser.parse_args(argv)
    args.command = command
    if command != "build":
        if args.image_size == 0:
            args.image_size = None
        for name in ("channels", "cells_per_stage", "epochs", "batch_size", "n_classes", "threads"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} is not accepted; it must be at "
                             f"least 1.")
        if not args.learning_rate > 0:
            parser.error(f"--learning-rate {args.learning_rate} is not accepted; it must be greater than 0.")
        if not 0 < args.valid_fraction < 1 or not 0 < args.data_fraction <= 1:
            parser.error(f"--valid-fraction {args.valid_fraction} / --data-fraction {args.data_fraction} is not "
                         f"accepted; they must lie in (0, 1) and (0, 1].")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors end with one sentence and exit status 1."""
    args = parse_args(argv)
    try:
        return {"run": run, "build": build, "measure": measure}[args.command](args)
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
