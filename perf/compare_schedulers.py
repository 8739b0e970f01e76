"""Random search, both Hyperbands and both BOHBs over seeds at equal simulated time, on two NAS-Bench-201 tables.

(a) ``synthetic``: a table built here with every official class of NAS-Bench-201's 15,625 cells, whose final
    validation error is a sum of per-edge effects plus class noise, and whose early epochs predict the last one
    (the script prints the Spearman correlation of epoch 1 and epoch 9 over classes): the setting multi-fidelity
    methods are made for. (b) ``shipped``: the default table (``DEFAULT_TABLE``; ``--shipped NAME`` picks another
    of the project's tables): measured architectures, whose early epochs predict the last one far less.

Each method runs ``--seeds`` seeds of ``--time`` simulated seconds at 4 workers through the real launcher
(``launch.py --backend simulated``, in process). Per method it prints: the best validation error found (mean and
standard error over seeds; the incumbent is the best report at any budget, as in ``analysis``), its ratio to random
search's and its difference in standard errors; how fast it gets to what random search ends with (the median over
seeds of the first time it reports random search's mean final best, censored at the time limit, and the speed-up:
the run's length over that time); on the synthetic table the regret (best minus the optimum) as a ratio to
random search's, and how many seeds found a top-10 class and how fast; and the trials started, and the share of
starts that repeated a configuration (by official class) already started in the run. ``--scaling`` adds the wall
time per trial of BOHB and Hyperband runs of growing length. Without ``--time`` a table's runs last as long as
35 trials at full budget per worker (a table's epochs cost different simulated times: about 250 s on the synthetic
table, 630 s on ``fmnist``), so tables are compared at the same number of full-budget evaluations.

    python perf/compare_schedulers.py                       # both tables, 20 seeds: ~5 min on 2 cores
    python perf/compare_schedulers.py --tables synthetic --seeds 5 --time 500
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("random_search", "asha", "hyperband", "async_bohb", "bohb", "bohb_uncapped")
WORKERS = 4
EPOCHS = 9
FULL_TRIALS_PER_WORKER = 35  # the default budget, in trials at full budget


def synthetic_table(path: Path, seed: int = 0) -> dict[str, float]:
    """Write the synthetic table to ``path``; returns the optimum, the top-10 target and the epoch 1/9 Spearman."""
    from scipy.stats import spearmanr

    from benchmarks.nasbench201.encoding import NUM_ARCHS, OPS, class_of, index_to_ops
    from benchmarks.nasbench201.table import NB201Table

    rng = np.random.default_rng(seed)
    classes = np.array([class_of(i) for i in range(NUM_ARCHS)])
    reps, class_index = np.unique(classes, return_inverse=True)
    effects = rng.normal(0, 1, size=(6, len(OPS)))  # an additive effect per edge and operation
    ops = np.array([[OPS.index(op) for op in index_to_ops(int(rep))] for rep in reps])
    score = effects[np.arange(6), ops].sum(axis=1) + rng.normal(0, 0.5, len(reps))
    z = (score - score.mean()) / score.std()
    final = np.clip(0.045 + 0.008 * z, 0.01, None)
    epochs = np.arange(1, EPOCHS + 1)
    noise_sd = 0.004 * (EPOCHS - epochs) / (EPOCHS - 1)  # early epochs are noisier; epoch 9 is exact
    curves = final[:, None] + 0.15 * np.exp(-(epochs - 1) / 2.0)[None, :] \
        + rng.normal(0, 1, (len(reps), EPOCHS)) * noise_sd[None, :]
    epoch_time = rng.uniform(0.6, 1.0, len(reps))
    per_cell = curves[class_index][:, None, :]  # every cell answers with its class's curve
    metrics = {"valid_error": per_cell, "valid_loss": 2 * per_cell, "train_loss": 1.5 * per_cell,
               "test_error": per_cell + 0.002,
               "epoch_time": np.broadcast_to(epoch_time[class_index][:, None, None], per_cell.shape)}
    metrics = {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in metrics.items()}
    NB201Table(np.arange(NUM_ARCHS), [0], metrics, dataset="synthetic").save(path)
    stored = curves.astype(np.float32)[:, -1]
    return {"optimum": float(stored.min()), "top10": float(np.sort(stored)[9]),
            "spearman_1_9": float(spearmanr(curves[:, 0], curves[:, -1]).statistic)}


def run_one(task: tuple[str, str, int, float, str, int | None]) -> dict[str, float]:
    """One tuning run in this process; returns its figures."""
    method, table, seed, limit, root, max_trials = task
    from benchmarks.nasbench201.encoding import class_of, config_to_index
    from launchers.cli import main

    name = f"{Path(table).stem}-{method}-{seed}-{max_trials or 0}"
    flags = ["--scheduler", method, "--backend", "simulated", "--benchmark", "nasbench201", "--dataset", table,
             "--n-workers", str(WORKERS), "--seed", str(seed), "--results-dir", root, "--experiment-name", name]
    flags += ["--max-num-trials", str(max_trials)] if max_trials else ["--max-wallclock-time", str(limit)]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(None, flags)
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{name} failed with exit code {code}")
    results = pd.read_csv(Path(root) / name / "results.csv")
    trials = pd.read_csv(Path(root) / name / "trials.csv")
    within = results[results["tuner_time"] <= limit] if not max_trials else results
    hp = [f"config_x{k}" for k in range(6)]
    keys = [class_of(config_to_index({f"x{k}": row[f"config_x{k}"] for k in range(6)}))
            for _, row in trials[hp].iterrows()]
    return {"method": method, "seed": seed, "best": within["valid_error"].min(), "trials": len(trials),
            "repeats": 1 - len(set(keys)) / max(len(keys), 1), "seconds": seconds,
            "results": within[["tuner_time", "valid_error"]].to_numpy()}


def default_time(table: str) -> float:
    """Simulated seconds of ``FULL_TRIALS_PER_WORKER`` full-budget trials per worker: the mean class's whole curve."""
    from benchmarks.nasbench201.table import NB201Table

    epoch_time = np.asarray(NB201Table.load(table).array("epoch_time"), dtype=float)
    return FULL_TRIALS_PER_WORKER * float(np.nanmean(np.nanmean(epoch_time, axis=1).sum(axis=1)))


def time_to(results: np.ndarray, target: float) -> float:
    """First tuner time at which a report reached ``target`` (inf if none did)."""
    hit = results[results[:, 1] <= target + 1e-9]
    return float(hit[:, 0].min()) if len(hit) else math.inf


def median_time(runs: list[dict], target: float) -> float:
    """Median over runs of the first time a report reached ``target`` (inf where half the runs never did)."""
    return float(np.median([time_to(r["results"], target) for r in runs]))


def seconds(value: float, limit: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else f"> {limit:.0f}"


def summarise(runs: list[dict], limit: float, reference: dict[str, float] | None) -> str:
    """One Markdown row per method (see the module docstring)."""
    frame = pd.DataFrame(runs)
    by_method = {m: [r for r in runs if r["method"] == m] for m in METHODS if any(r["method"] == m for r in runs)}
    base = frame[frame["method"] == "random_search"]["best"]
    base_mean, base_se = base.mean(), base.std(ddof=1) / math.sqrt(len(base))
    # How fast each method gets to what random search has at the end of the run: the median time to its mean final
    # best, and the speed-up (the run's length over that time).
    header = ("| method | best valid error | / random search | difference (se) | time to random search's final "
              "value (s) | speed-up |")
    sep = "|---|---|---|---|---|---|"
    if reference:
        header += " regret / random search | seeds finding a top-10 class | median time to it (s) |"
        sep += "---|---|---|"
        base_regret = base_mean - reference["optimum"]
    header += " trials | repeated starts (same class) |"
    sep += "---|---|"
    lines = [header, sep]
    for method, method_runs in by_method.items():
        rows = frame[frame["method"] == method]
        mean, se = rows["best"].mean(), rows["best"].std(ddof=1) / math.sqrt(len(rows))
        diff = (mean - base_mean) / math.sqrt(se ** 2 + base_se ** 2) if method != "random_search" else 0.0
        reach = median_time(method_runs, base_mean)
        speedup = "1 (by definition)" if method == "random_search" else \
            f"{limit / reach:.1f}x" if math.isfinite(reach) else "< 1x"
        line = (f"| {method} | {mean:.4f} ± {se:.4f} | {mean / base_mean:.3f} | {diff:+.1f} | "
                f"{seconds(reach, limit)} | {speedup} |")
        if reference:
            times = [time_to(r["results"], reference["top10"]) for r in method_runs]
            found = sum(math.isfinite(t) for t in times)
            line += (f" {(mean - reference['optimum']) / base_regret:.3f} | {found}/{len(rows)} | "
                     f"{seconds(float(np.median(times)), limit)} |")
        line += f" {rows['trials'].mean():.0f} | {rows['repeats'].mean():.1%} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", choices=["synthetic", "shipped"], default=["synthetic", "shipped"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--time", type=float, default=None,
                        help=f"simulated seconds per run (default: {FULL_TRIALS_PER_WORKER} full-budget trials per "
                        "worker on each table)")
    parser.add_argument("--shipped", default=None, help="the project's table to compare on (default: the default "
                        "table)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel")
    parser.add_argument("--scaling", action="store_true", help="also time BOHB's scheduler over longer runs")
    args = parser.parse_args(argv)
    from benchmarks.nasbench201.table import DEFAULT_TABLE, default_table_path

    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
        tables = {}
        if "synthetic" in args.tables:
            path = Path(tmp) / "synthetic.npz"
            reference = synthetic_table(path)
            tables["synthetic"] = (str(path), reference)
            print(f"synthetic table: optimum {reference['optimum']:.4f}, 10th best class {reference['top10']:.4f}, "
                  f"Spearman(epoch 1, epoch 9) over classes {reference['spearman_1_9']:.2f}")
        if "shipped" in args.tables:
            tables["shipped"] = (str(default_table_path(args.shipped or DEFAULT_TABLE)), None)
        for label, (table, reference) in tables.items():
            started = time.perf_counter()
            limit = args.time or round(default_time(table))
            tasks = [(m, table, s, limit, tmp, None) for m in args.methods for s in range(args.seeds)]
            runs = list(pool.map(run_one, tasks))
            print(f"\n{label} table ({Path(table).stem}): {args.seeds} seeds x {limit:.0f} simulated s, {WORKERS} "
                  f"workers ({time.perf_counter() - started:.0f} s)")
            print(summarise(runs, limit, reference))
        if args.scaling and "synthetic" in tables:
            print("\nCost as runs grow (synthetic table, seed 0, whole simulated runs in one process): wall ms per "
                  "trial, and per trial added since the shorter run (flat if nothing grows with the run)")
            print("| trials | bohb: per trial | per added trial | hyperband: per trial | per added trial |\n"
                  "|---|---|---|---|---|")
            previous = {}
            for n in (500, 1000, 2000, 4000):
                row = f"| {n} |"
                for m in ("bohb", "hyperband"):
                    spent = run_one((m, tables["synthetic"][0], 0, math.inf, tmp, n))["seconds"]
                    added = (spent - previous[m][1]) / (n - previous[m][0]) if m in previous else math.nan
                    previous[m] = (n, spent)
                    row += f" {spent / n * 1e3:.2f} | {added * 1e3:.2f} |" if math.isfinite(added) else \
                        f" {spent / n * 1e3:.2f} | |"
                print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
