"""Speed of the NAS-Bench-201 table: load time and learning-curve query time, against a nested-dict pickle baseline.

Builds a full-size synthetic table (15,625 architectures x 3 seeds x 200 epochs x 7 metrics; about 30% of the
architectures lack the third seed, as in the official file) in a temporary folder, saves it as our `.npz`, and the
same data as a pickle of nested dicts `{arch string: {seed: {metric: [values per epoch]}}}` (the NASLib-style
layout). Then it times loading (in a fresh process, also measuring the memory it adds) and querying both, and
prints one table with the ratios and the targets (load < 2 s, learning-curve query < 100 us). Times are with a
warm page cache (files just written); a memory-mapped table reads its pages on first use.

    python perf/nasbench201_table.py               # full size (needs ~3 GB of memory for the pickle baseline)
    python perf/nasbench201_table.py --archs 2000  # smaller
"""
from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.nasbench201.encoding import NUM_ARCHS, index_to_string
from benchmarks.nasbench201.table import METRICS, NB201Table

LOAD_TARGET_S = 2.0
QUERY_TARGET_US = 100.0


_LOAD_SCRIPT = """
import json, os, pickle, sys, time
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6
kind, path = sys.argv[1], sys.argv[2]
from benchmarks.nasbench201.table import NB201Table
best, before = float('inf'), rss()
for _ in range(int(sys.argv[3])):
    obj = None
    start = time.perf_counter()
    if kind == 'pickle':
        with open(path, 'rb') as f:
            obj = pickle.load(f)
    else:
        obj = NB201Table.load(path, mmap_mode=(kind == 'mmap'))
    best = min(best, time.perf_counter() - start)
print(json.dumps({'seconds': best, 'rss_mb': rss() - before}))
"""


def load_in_fresh_process(kind: str, path: Path, repeat: int) -> tuple[float, float]:
    """(best load seconds, resident memory added in MB) of loading `path` in a new Python process."""
    out = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, kind, str(path), str(repeat)], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["rss_mb"]


def build_table(n_archs: int, n_seeds: int, n_epochs: int, seed: int = 0) -> NB201Table:
    """Synthetic learning curves (decaying errors and losses with noise), NaN for missing third seeds."""
    rng = np.random.default_rng(seed)
    archs = np.sort(rng.choice(NUM_ARCHS, size=n_archs, replace=False))
    t = np.arange(1, n_epochs + 1, dtype=np.float32)
    metrics = {}
    for k, name in enumerate(METRICS):
        level = rng.uniform(0.05, 0.9, size=(n_archs, 1, 1)).astype(np.float32)
        noise = rng.normal(0.0, 0.01, size=(n_archs, n_seeds, n_epochs)).astype(np.float32)
        values = level + (1 - level) * np.exp(-t / 30.0, dtype=np.float32) + noise
        if name == "epoch_time":
            values = np.broadcast_to(level * 20, values.shape) + noise
        metrics[name] = values.astype(np.float32)
    missing = rng.random(n_archs) < 0.3
    for values in metrics.values():
        values[missing, n_seeds - 1, :] = np.nan
    figures = {"params": rng.uniform(0.07, 1.53, n_archs), "flops": rng.uniform(7.8, 220.0, n_archs)}
    return NB201Table(archs, [777, 888, 999][:n_seeds] if n_seeds <= 3 else list(range(n_seeds)), metrics,
                      figures, dataset="synthetic", meta={"source": "perf/nasbench201_table.py"})


def to_nested_dict(table: NB201Table) -> dict:
    """The NASLib-style baseline layout: {arch string: {seed: {metric: list of per-epoch floats}}}."""
    data = {}
    for row, index in enumerate(table.archs):
        runs = {}
        for s, seed in enumerate(table.seeds):
            if np.isnan(table.array(METRICS[0])[row, s, 0]):
                continue  # a missing run is an absent key, as in dict-based files
            runs[seed] = {m: table.array(m)[row, s].tolist() for m in METRICS}
        data[index_to_string(int(index))] = runs
    return data


def per_call_us(fn, args: list) -> float:
    """Mean microseconds per call of fn(arg) over `args` (after one warm-up pass over a few)."""
    for a in args[:100]:
        fn(a)
    start = time.perf_counter()
    for a in args:
        fn(a)
    return (time.perf_counter() - start) / len(args) * 1e6


def baseline_curve_mean(data: dict, arch_str: str, metric: str) -> np.ndarray:
    runs = data[arch_str]
    return np.mean(np.array([run[metric] for run in runs.values()]), axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=NUM_ARCHS, help="architectures held (default all 15625)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--queries", type=int, default=20000, help="queries timed per row (default 20000)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pickle baseline (saves ~3 GB)")
    args = parser.parse_args()

    print(f"building a synthetic table: {args.archs} archs x {args.seeds} seeds x {args.epochs} epochs x "
          f"{len(METRICS)} metrics ...", flush=True)
    table = build_table(args.archs, args.seeds, args.epochs)
    rng = random.Random(0)
    picks = [int(table.archs[rng.randrange(len(table))]) for _ in range(args.queries)]
    strings = [index_to_string(i) for i in picks]
    epochs = [rng.randint(1, args.epochs) for _ in picks]
    rows: list[tuple[str, float, float, float]] = []  # name, ours (mmap), ours (read), baseline

    with tempfile.TemporaryDirectory() as tmp:
        npz = table.save(Path(tmp) / "table.npz")
        size_npz = npz.stat().st_size / 1e6
        del table
        gc.collect()

        t_mmap, rss_mm = load_in_fresh_process("mmap", npz, repeat=3)
        t_read, rss_rd = load_in_fresh_process("read", npz, repeat=3)
        mm = NB201Table.load(npz)
        rd = NB201Table.load(npz, mmap_mode=False)

        baseline = None
        size_pkl = t_pkl = rss_pkl = float("nan")
        if not args.no_baseline:
            print("building the nested-dict pickle baseline ...", flush=True)
            pkl = Path(tmp) / "table.pickle"
            with open(pkl, "wb") as f:
                pickle.dump(to_nested_dict(rd), f, protocol=pickle.HIGHEST_PROTOCOL)
            gc.collect()
            size_pkl = pkl.stat().st_size / 1e6
            t_pkl, rss_pkl = load_in_fresh_process("pickle", pkl, repeat=1)
            with open(pkl, "rb") as f:
                baseline = pickle.load(f)

        rows.append(("file size (MB)", size_npz, size_npz, size_pkl))
        rows.append(("load, fresh process (s)", t_mmap, t_read, t_pkl))
        rows.append(("memory added by load (MB RSS)", rss_mm, rss_rd, rss_pkl))

        metric = "valid_error"
        ours = {"mmap": mm, "read": rd}
        r = {k: per_call_us(lambda s: t.curve(s, metric), strings) for k, t in ours.items()}
        b = per_call_us(lambda s: baseline_curve_mean(baseline, s, metric), strings) if baseline else float("nan")
        rows.append(("curve by string, seed mean (us)", r["mmap"], r["read"], b))
        r = {k: per_call_us(lambda i: t.curve(i, metric), picks) for k, t in ours.items()}
        b = per_call_us(lambda i: baseline_curve_mean(baseline, index_to_string(i), metric), picks) \
            if baseline else float("nan")
        rows.append(("curve by index, seed mean (us)", r["mmap"], r["read"], b))
        r = {k: per_call_us(lambda s: t.curve(s, metric, seed=777), strings) for k, t in ours.items()}
        b = per_call_us(lambda s: np.asarray(baseline[s][777][metric]), strings) if baseline else float("nan")
        rows.append(("curve by string, one seed (us)", r["mmap"], r["read"], b))
        b = per_call_us(lambda s: baseline[s][777][metric], strings) if baseline else float("nan")
        rows.append(("  (baseline returning the list itself)", float("nan"), float("nan"), b))
        pairs = list(zip(strings, epochs))
        r = {k: per_call_us(lambda p: t.query(p[0], p[1]), pairs) for k, t in ours.items()}

        def baseline_query(p):
            runs = baseline[p[0]]
            return {m: float(np.mean([run[m][p[1] - 1] for run in runs.values()])) for m in METRICS}
        b = per_call_us(baseline_query, pairs) if baseline else float("nan")
        rows.append(("query(arch, epoch), all metrics (us)", r["mmap"], r["read"], b))

    width = max(len(name) for name, *_ in rows)
    print()
    print(f"{'':{width}}  {'ours, mmap':>12}  {'ours, read':>12}  {'pickle dict':>12}  {'pickle/mmap':>11}")
    for name, a, c, b in rows:
        ratio = b / a if a and not np.isnan(a) and not np.isnan(b) else float("nan")
        cells = [f"{v:12.4g}" if not np.isnan(v) else f"{'-':>12}" for v in (a, c, b)]
        print(f"{name:{width}}  {'  '.join(cells)}  {ratio:10.1f}x" if not np.isnan(ratio)
              else f"{name:{width}}  {'  '.join(cells)}  {'-':>11}")
    print()
    load_ok = max(t_mmap, t_read) < LOAD_TARGET_S
    curve_us = max(row[1] for row in rows if row[0].startswith("curve by"))
    curve_us = max(curve_us, max(row[2] for row in rows if row[0].startswith("curve by")))
    print(f"target: load < {LOAD_TARGET_S:g} s: mmap {t_mmap:.3f} s, read {t_read:.3f} s -> "
          f"{'met' if load_ok else 'NOT met'}")
    print(f"target: learning-curve query < {QUERY_TARGET_US:g} us: slowest curve row {curve_us:.1f} us -> "
          f"{'met' if curve_us < QUERY_TARGET_US else 'NOT met'}")


if __name__ == "__main__":
    main()
