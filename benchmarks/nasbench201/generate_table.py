"""Make the project's own NAS-Bench-201 table by training every official class for real.

`run` (the default) trains one representative per official equivalence class (6,466), in a seeded random order
of the classes (so whatever prefix is finished is a uniform random sample), each with the seeds of the setting side
by side (`training.SeedGroupTrainer`), in parallel worker processes with one torch thread each. Each trained class
is appended as one line to the runs file (`runs`), so a restart continues where the last run stopped and never
trains a class twice. `build` turns the runs file into the table and its card (`build_table`).

    nohup python -m benchmarks.nasbench201.generate_table --workers 2 > generate.log 2>&1 &
    python -m benchmarks.nasbench201.generate_table build

The setting is `setting.TABLE_SETTING` (chosen by `setting_experiment`); `--set key=value,...` changes fields of it
(for tests and other tables, written to another `--out`).
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .encoding import class_representatives, index_to_string
from .runs import RUNS_FORMAT, GenerationError, append, check_header, code_version, cpu_description, lock_path, \
    now, read_runs
from .setting import TABLE_NAME, TABLE_SETTING, Setting, parse_overrides
from .table import DATA_DIR

DEFAULT_RUNS = DATA_DIR / f"{TABLE_NAME}-runs.jsonl"
PER_SEED = ("train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error")


def class_order(sample_seed: int = 0) -> list[int]:
    """The 6,466 class representatives in a seeded random order: any prefix is a uniform sample of classes."""
    reps = np.array(class_representatives(), dtype=np.int64)
    return [int(a) for a in reps[np.random.RandomState(sample_seed).permutation(len(reps))]]


def _round(values: Sequence[float]) -> list[float]:
    return [float(f"{v:.6g}") if math.isfinite(v) else v for v in values]


# ---------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _worker_init(setting: dict[str, Any], threads: int) -> None:
    """Load the data once per worker process; one torch thread by default so workers do not fight for cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    import torch

    from .datasets import prepare_data
    torch.set_num_threads(threads)
    setting_ = Setting.from_dict(setting)
    _WORKER.update(setting=setting_, splits=prepare_data(setting_.data_spec()))


def _train_one(arch: int) -> dict[str, Any]:
    """Train one class representative in a worker; returns its result record (or an `error` record)."""
    from .training import train_architecture
    setting: Setting = _WORKER["setting"]
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        info: dict[str, Any] = {}
        rows = train_architecture(arch, _WORKER["splits"], setting.train_spec(), seeds=setting.seeds,
                                  test_epochs="all", start_info=info)
    except Exception as err:  # reported by the parent; the class is retried on the next run
        return {"type": "error", "arch": arch, "error": f"{type(err).__name__}: {err}"}
    metrics = {m: [_round([row[m][k] for row in rows]) for k in range(len(setting.seeds))] for m in PER_SEED}
    return {"type": "result", "arch": arch, "arch_str": index_to_string(arch), "seeds": list(setting.seeds),
            "params": info["params"], "flops": info["flops"], "metrics": metrics,
            "epoch_time": _round([row["epoch_time"] for row in rows]),
            "epoch_cpu_time": _round([row["epoch_cpu_time"] for row in rows]),
            "cpu_seconds": round(time.process_time() - start_cpu, 3),
            "seconds": round(time.perf_counter() - start, 3), "pid": os.getpid(), "finished": now()}


def _results(todo: list[int], workers: int, init_args: tuple) -> Iterator[dict[str, Any]]:
    """Records as the workers finish them; at most one class per worker in flight, so stopping loses little."""
    if workers <= 0:
        _worker_init(*init_args)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for arch in todo:
            yield _train_one(arch)
        return
    import multiprocessing as mp
    import queue
    finished: queue.SimpleQueue = queue.SimpleQueue()
    pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=init_args)
    try:
        pending = iter(todo)
        in_flight = 0
        for arch in pending:
            pool.apply_async(_train_one, (arch,), callback=finished.put)
            in_flight += 1
            if in_flight == workers:
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


# ---------------------------------------------------------------- run

def header_for(setting: Setting, name: str, sample_seed: int, threads: int) -> dict[str, Any]:
    """The header line: setting, data digest and sizes, provenance."""
    import hashlib

    import torch

    from .datasets import DataMissing, prepare_data, split_sizes
    try:
        splits = prepare_data(setting.data_spec())
    except (ValueError, DataMissing) as err:
        raise GenerationError(str(err)) from None
    digest = hashlib.sha1()
    for tensor in (splits.x_train, splits.y_train, splits.x_valid, splits.y_valid, splits.x_test, splits.y_test):
        digest.update(tensor.numpy().tobytes())
    return {"type": "header", "format": RUNS_FORMAT, "name": name, "setting": setting.as_dict(),
            "sample_seed": sample_seed, "data_digest": digest.hexdigest()[:16], "split_sizes": split_sizes(splits),
            "created": now(), "torch": torch.__version__, "python": sys.version.split()[0], **code_version(),
            "device": cpu_description(threads), "n_classes_total": len(class_representatives())}


def run(args: argparse.Namespace) -> int:
    """Train the classes not yet in the runs file, appending one line each; returns the exit status."""
    from filelock import FileLock, Timeout

    out = Path(args.out)
    header = header_for(args.setting, args.name, args.sample_seed, args.threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(out)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GenerationError(f"Another generator is writing to {out} (lock file {lock_path(out)}); wait for it or "
                              f"stop it first.") from None
    try:
        old, results = read_runs(out, repair=True)
        if old is not None:
            check_header(old, header, out)
        done = {int(r["arch"]) for r in results}
        order = class_order(args.sample_seed)[:args.n_classes]
        todo = [a for a in order if a not in done]
        print(f"{out}: {len(done)} classes done, {len(todo)} of the first {len(order)} to train on {args.workers} "
              f"worker(s) ({header['device']}; {args.setting.describe()}).", flush=True)
        with open(out, "a", encoding="utf-8") as f:
            if old is None:
                append(f, header)
            stamp = {"torch": header["torch"], "device": header["device"], "code": header["code_hash"],
                     "git": header["git_commit"]}
            return _train_all(todo, f, stamp, args, len(done))
    finally:
        lock.release()


def _train_all(todo: list[int], f, stamp: dict[str, str], args: argparse.Namespace, n_done: int) -> int:
    if not todo:
        return 0
    deadline = time.monotonic() + args.max_hours * 3600 if args.max_hours else None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    start, count, failures = time.monotonic(), 0, 0
    try:
        for record in _results(todo, args.workers, (args.setting.as_dict(), args.threads)):
            if record["type"] == "error":
                failures += 1
                print(f"class {record['arch']} failed ({record['error']}); it is retried on the next run.",
                      file=sys.stderr, flush=True)
                continue
            append(f, {**record, **stamp})
            count += 1
            rate = (time.monotonic() - start) / count
            final = np.mean([curve[-1] for curve in record["metrics"]["valid_error"]])
            print(f"[{n_done + count}] class {record['arch']:5d} valid_error {final:.4f}, {record['cpu_seconds']:.1f} "
                  f"CPU s; {len(todo) - count} to go, about {rate * (len(todo) - count) / 3600:.1f} h left",
                  flush=True)
            if deadline is not None and time.monotonic() > deadline:
                print(f"--max-hours {args.max_hours} reached; stopping (a restart continues).", flush=True)
                break
    except KeyboardInterrupt:
        print(f"interrupted after {count} classes; a restart continues where this run stopped.", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 1 if failures else 0


# ---------------------------------------------------------------- command line

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `run` (the default) or `build` flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("run", "build") else "run"
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nasbench201.generate_table" +
                                     ("" if command == "run" else f" {command}"), description=__doc__.splitlines()[0])
    if command == "build":
        parser.add_argument("--runs", default=str(DEFAULT_RUNS), help="the runs file (JSON lines)")
        parser.add_argument("--out", default=None, help="table file (default benchmarks/nasbench201/data/<name>.npz)")
        parser.add_argument("--name", default=None, help="dataset name of the table (default: the runs file's)")
    else:
        parser.add_argument("--out", default=str(DEFAULT_RUNS), help="runs file to append to")
        parser.add_argument("--name", default=TABLE_NAME, help="dataset name of the table")
        parser.add_argument("--set", default="", metavar="KEY=VALUE,...",
                            help=f"change fields of the table's setting ({TABLE_SETTING.describe()})")
        parser.add_argument("--dataset-path", default=None, help="folder of the setting's dataset")
        parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
        parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
        parser.add_argument("--n-classes", type=int, default=len(class_representatives()),
                            help="train the first N classes of the random order (default: all)")
        parser.add_argument("--sample-seed", type=int, default=0, help="seed of the order of classes")
        parser.add_argument("--max-hours", type=float, default=None, help="stop starting work after this")
    args = parser.parse_args(argv)
    args.command = command
    if command == "run":
        try:
            args.setting = parse_overrides(args.set, TABLE_SETTING)
        except ValueError as err:
            parser.error(f"--set {err}")
        if args.dataset_path:
            args.setting = Setting.from_dict({**args.setting.as_dict(), "dataset_path": args.dataset_path})
        for name in ("n_classes", "threads"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} is not accepted; it must be at "
                             f"least 1.")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors end with one sentence and exit status 1."""
    args = parse_args(argv)
    try:
        if args.command == "build":
            from .build_table import build
            return build(args.runs, args.out, args.name)
        return run(args)
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
