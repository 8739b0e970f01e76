"""Tests of the analysis package on synthetic results folders with known answers.

Run ``python tests/test_analysis.py OUT_DIR`` to write a realistic synthetic set of results folders (random
search, Hyperband and BOHB, three seeds each) to OUT_DIR, e.g. to try ``analysis/report.py`` on it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIG_SPACE = {
    "learning_rate": "loguniform(1e-06, 0.1)",
    "n_conv_layers": "randint(1, 3)",
    "n_filters_1": "lograndint(4, 64)",
    "n_filters_2": "lograndint(4, 64)",
    "n_filters_3": "lograndint(4, 64)",
    "dropout_rate": "uniform(0.0, 0.9)",
    "optimizer": "choice(['Adam', 'SGD'])",
}


# Writing results folders per the contract ------------------------------------------------------------------------

def write_results_folder(root: Path, name: str, reports: list[dict], configs: dict[int, dict], *,
                         scheduler: str = "random_search", seed: int = 0, metric: str = "valid_error",
                         mode: str = "min", backend: str = "simulated", n_workers: int = 2,
                         min_resource: int = 1, max_resource: int = 9, eta: float | None = 3,
                         scheduler_kwargs: dict | None = None,
                         start_times: dict[int, float] | None = None, statuses: dict[int, str] | None = None,
                         brackets: dict[int, int] | None = None, model_based: dict[int, bool] | None = None,
                         benchmark: str = "mnist_convnet", config_space: dict | None = None,
                         drop_results_columns: tuple[str, ...] = (), skip_files: tuple[str, ...] = ()) -> Path:
    """Write results.csv, trials.csv and metadata.json for the given reports (dicts with trial_id, tuner_time,
    epoch and metrics) and configs (trial id -> {name: value}); trials.csv is derived from the reports.
    ``brackets``/``model_based`` given: trials.csv has that scheduler column."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    start_times = start_times or {}
    statuses = statuses or {}
    brackets = brackets or {}
    model_based = model_based or {}
    names = sorted({k for c in configs.values() for k in c})
    rows = []
    for rep in sorted(reports, key=lambda r: (r["tuner_time"], r["trial_id"])):
        row = dict(rep)
        row.update({f"config_{k}": configs[rep["trial_id"]].get(k) for k in names})
        rows.append(row)
    results = pd.DataFrame(rows)
    if results.empty:
        results = pd.DataFrame(columns=["trial_id", "tuner_time", "epoch", metric] + [f"config_{k}" for k in names])
    first = ["trial_id", "tuner_time", "epoch"]
    results = results[first + [c for c in results.columns if c not in first]]
    trial_rows = []
    for tid in sorted(configs):
        reps = results[results["trial_id"] == tid].sort_values("tuner_time", kind="mergesort")
        vals = reps[metric]
        epochs = int(reps["epoch"].max()) if len(reps) else 0
        best = (vals.min() if mode == "min" else vals.max()) if len(reps) else None
        default_start = float(reps["tuner_time"].iloc[0]) - 1.0 if len(reps) else 0.0
        status = statuses.get(tid, "Completed" if epochs >= max_resource else ("Stopped" if epochs else "Failed"))
        trial_rows.append({
            "trial_id": tid, "status": status, "epochs": epochs, "best_metric": best,
            "last_metric": float(vals.iloc[-1]) if len(reps) else None,
            "start_time": start_times.get(tid, max(default_start, 0.0)),
            "end_time": float(reps["tuner_time"].iloc[-1]) if len(reps) else None,
            # The scheduler's bookkeeping columns, where it declares them (as the launchers write them).
            **({"bracket": brackets.get(tid)} if brackets else {}),
            **({"model_based": model_based.get(tid)} if model_based else {}),
            **{f"config_{k}": configs[tid].get(k) for k in names},
        })
    trials = pd.DataFrame(trial_rows)
    if brackets:
        trials["bracket"] = trials["bracket"].astype("Int64")
    results = results.drop(columns=list(drop_results_columns))
    metadata = {
        "experiment_name": name, "benchmark": benchmark, "metric": metric, "mode": mode,
        # eta=None: a folder written before the budget was recorded.
        **({"budget": {"resource_attr": "epoch", "min_resource": min_resource, "max_resource": max_resource,
                       "eta": eta}} if eta is not None else {}),
        "scheduler": scheduler, "scheduler_kwargs": scheduler_kwargs or {}, "seed": seed, "n_workers": n_workers,
        "backend": backend, "dataset": None, "stop_criterion": {"max_wallclock_time": None, "max_num_trials": None},
        "config_space": config_space if config_space is not None else {k: "?" for k in names},
        "command_line": f"launchers/launch_{scheduler}.py --seed {seed}", "versions": {"python": "3"},
        "start_time": "2024-01-01T00:00:00", "end_time": "2024-01-01T01:00:00", "status": "finished",
    }
    if "results.csv" not in skip_files:
        results.to_csv(folder / "results.csv", index=False)
    if "trials.csv" not in skip_files:
        trials.to_csv(folder / "trials.csv", index=False)
    if "metadata.json" not in skip_files:
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return folder


# A realistic synthetic set: MNIST-convnet-like objective, simulated workers --------------------------------------

def _sample_config(rng: np.random.Generator) -> dict:
    return {
        "learning_rate": float(10 ** rng.uniform(-6, -1)),
        "n_conv_layers": int(rng.integers(1, 4)),
        "n_filters_1": int(round(2 ** rng.uniform(2, 6))),
        "n_filters_2": int(round(2 ** rng.uniform(2, 6))),
        "n_filters_3": int(round(2 ** rng.uniform(2, 6))),
        "dropout_rate": float(rng.uniform(0, 0.9)),
        "optimizer": str(rng.choice(["Adam", "SGD"])),
    }


def _perturb(config: dict, rng: np.random.Generator) -> dict:
    new = dict(config)
    new["learning_rate"] = float(np.clip(config["learning_rate"] * 10 ** rng.normal(0, 0.3), 1e-6, 0.1))
    for i in (1, 2, 3):
        new[f"n_filters_{i}"] = int(np.clip(round(config[f"n_filters_{i}"] * 2 ** rng.normal(0, 0.5)), 4, 64))
    new["dropout_rate"] = float(np.clip(config["dropout_rate"] + rng.normal(0, 0.1), 0, 0.9))
    return new


def _total_filters(config: dict) -> int:
    return sum(config[f"n_filters_{i}"] for i in range(1, config["n_conv_layers"] + 1))


def _error(config: dict, epoch: int, rng: np.random.Generator) -> float:
    lr_pen = 0.25 * ((math.log10(config["learning_rate"]) + 2.7) / 2.0) ** 2
    base = 0.008 + min(lr_pen, 0.8) + 0.03 * math.sqrt(16 / _total_filters(config)) + 0.03 * config["dropout_rate"]
    base = min(base, 0.88) * (1.1 if config["optimizer"] == "SGD" else 1.0)
    speed = 0.35 + 0.4 * max(0.0, 1 - abs(math.log10(config["learning_rate"]) + 2.5) / 3)
    err = base + (0.9 - base) * math.exp(-speed * epoch)
    return float(np.clip(err * math.exp(rng.normal(0, 0.05)), 0.005, 0.95))


class _Sim:
    """Worker simulation writing reports: jobs run a trial from one epoch to another on the first free worker."""

    def __init__(self, rng: np.random.Generator, n_workers: int, t_max: float):
        self.rng, self.t_max = rng, t_max
        self.free = [0.0] * n_workers
        self.reports: list[dict] = []
        self.configs: dict[int, dict] = {}
        self.start: dict[int, float] = {}
        self.epochs: dict[int, int] = {}
        self.last: dict[int, float] = {}
        self.cut: set[int] = set()

    def new_trial(self, config: dict) -> int:
        tid = len(self.configs)
        self.configs[tid] = config
        self.epochs[tid] = 0
        return tid

    def run(self, tid: int, to_epoch: int, not_before: float = 0.0) -> float:
        """Run trial tid up to to_epoch; returns its finish time (inf if cut by t_max)."""
        w = int(np.argmin(self.free))
        t = max(self.free[w], not_before)
        if t >= self.t_max:
            return math.inf
        self.start.setdefault(tid, t)
        config = self.configs[tid]
        per_epoch = 4 + 0.25 * _total_filters(config) * (1.3 if config["optimizer"] == "SGD" else 1.0)
        t0 = self.start[tid]
        for epoch in range(self.epochs[tid] + 1, to_epoch + 1):
            t += per_epoch * self.rng.uniform(0.85, 1.15)
            if t > self.t_max:
                self.cut.add(tid)
                self.free[w] = self.t_max
                return math.inf
            err = _error(config, epoch, self.rng)
            self.reports.append({"trial_id": tid, "tuner_time": round(t, 3), "epoch": epoch, "valid_error": err,
                                 "valid_loss": round(3 * err, 5), "train_loss": round(2.6 * err, 5),
                                 "elapsed_time": round(t - t0, 3)})
            self.epochs[tid] = epoch
            self.last[tid] = err
        self.free[w] = t
        return t


def simulate_experiment(root: Path, scheduler: str, seed: int, n_workers: int = 4, t_max: float = 1200.0) -> Path:
    """Simulate one tuning run of random search, hyperband or bohb (budgets 1, 3, 9) and write its folder."""
    rng = np.random.default_rng(1000 * seed + {"random_search": 1, "hyperband": 2, "bohb": 3}[scheduler])
    sim = _Sim(rng, n_workers, t_max)
    brackets: dict[int, int] = {}
    model_based: dict[int, bool] = {}
    kwargs: dict = {}
    if scheduler == "random_search":
        while min(sim.free) < t_max:
            tid = sim.new_trial(_sample_config(rng))
            sim.run(tid, 9)
    else:
        kwargs = {"grace_period": 1, "max_t": 9, "reduction_factor": 3, "brackets": 3}
        t_bracket = 0.0
        s = 2
        while t_bracket < t_max:
            n, r = {2: (9, 1), 1: (5, 3), 0: (3, 9)}[s]
            tids = []
            for _ in range(n):
                observed = [(sim.last[t], t) for t in sim.last if sim.epochs[t] >= 3]
                if scheduler == "bohb" and len(observed) >= 6 and rng.uniform() < 0.7:
                    parent = sim.configs[sorted(observed)[int(rng.integers(0, 3))][1]]
                    tid = sim.new_trial(_perturb(parent, rng))
                    model_based[tid] = True
                else:
                    tid = sim.new_trial(_sample_config(rng))
                    if scheduler == "bohb":
                        model_based[tid] = False
                brackets[tid] = 2 - s
                tids.append(tid)
            release = t_bracket
            while True:
                finish = [sim.run(t, r, release) for t in tids]
                release = max(finish)
                if r >= 9 or not math.isfinite(release):
                    break
                tids = sorted(tids, key=lambda t: sim.last[t])[:max(1, len(tids) // 3)]
                r *= 3
            t_bracket = release
            s = (s - 1) % 3
    statuses = {}
    for tid in sim.configs:
        if tid in sim.cut:
            statuses[tid] = "InProgress"
        elif sim.epochs[tid] >= 9:
            statuses[tid] = "Completed"
        elif sim.epochs[tid] == 0:
            statuses[tid] = "InProgress"
        else:
            statuses[tid] = "Stopped"
    configs = {t: c for t, c in sim.configs.items() if t in sim.start}
    return write_results_folder(
        root, f"{scheduler}-seed{seed}", sim.reports, configs, scheduler=scheduler, seed=seed,
        n_workers=n_workers, scheduler_kwargs=kwargs, start_times=sim.start,
        statuses={t: s for t, s in statuses.items() if t in configs},
        brackets={t: b for t, b in brackets.items() if t in configs},
        model_based={t: b for t, b in model_based.items() if t in configs}, config_space=CONFIG_SPACE)


def make_realistic_set(root: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> list[Path]:
    """BOHB, random search and Hyperband, one folder per seed, under root."""
    return [simulate_experiment(root, m, s) for m in ("random_search", "hyperband", "bohb") for s in seeds]


# A small set with known answers: 3 methods x 3 seeds ------------------------------------------------------------

METHODS = ("random_search", "hyperband", "bohb")
SPECIAL = {"learning_rate": 0.0123, "n_conv_layers": 2, "n_filters_1": 8, "n_filters_2": 16, "n_filters_3": 32,
           "optimizer": "Adam"}


def small_error(k: int, s: int, i: int, epoch: int) -> float:
    """valid_error of trial i at an epoch, for method index k and seed s."""
    return (0.8 - 0.1 * i - 0.05 * k - 0.01 * s) / epoch


def small_final(k: int, s: int) -> float:
    """The best valid_error of (method k, seed s): trial 5 at epoch 3 for random search, trial 4 at epoch 3
    otherwise (odd trials stop after one epoch), and 0.01 for the special trial of bohb seed 1."""
    if (k, s) == (2, 1):
        return 0.01
    return small_error(k, s, 5, 3) if k == 0 else small_error(k, s, 4, 3)


def write_small_set(root: Path) -> dict[tuple[str, int], Path]:
    folders = {}
    for k, method in enumerate(METHODS):
        for s in range(3):
            reports, configs, model_based = [], {}, {}
            for i in range(6):
                configs[i] = {"learning_rate": 10.0 ** -(i + 1), "n_conv_layers": 1 + i % 3, "n_filters_1": 4 * (i + 1),
                              "n_filters_2": 8, "n_filters_3": 16, "optimizer": "Adam" if i % 2 else "SGD"}
                last_epoch = 3 if k == 0 or i % 2 == 0 else 1
                for e in range(1, last_epoch + 1):
                    err = small_error(k, s, i, e)
                    if (k, s, i) == (2, 1, 3):
                        err = 0.01
                    reports.append({"trial_id": i, "tuner_time": 10.0 * i + 2 * e + s, "epoch": e,
                                    "valid_error": err, "valid_loss": 2 * err, "train_loss": err,
                                    "elapsed_time": 2.0 * e})
                if method == "bohb":
                    model_based[i] = i >= 2
            if (k, s) == (2, 1):
                configs[3] = dict(SPECIAL)
            kwargs = {} if method == "random_search" else {"grace_period": 1, "max_t": 3, "reduction_factor": 3,
                                                           "brackets": 2}
            folders[(method, s)] = write_results_folder(
                root, f"{method}-{s}", reports, configs, scheduler=method, seed=s, max_resource=3,
                scheduler_kwargs=kwargs, model_based=model_based, brackets={} if k == 0 else {i: 0 for i in configs},
                start_times={i: 10.0 * i + s for i in configs}, config_space=CONFIG_SPACE)
    return folders


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
    write_small_set(root)
    return root


@pytest.fixture(scope="module")
def small_experiments(small_set):
    from analysis.load import load_experiments
    return {e.label: e for e in load_experiments(small_set)}


# Trajectories ----------------------------------------------------------------------------------------------------

def _results(rows):
    return pd.DataFrame(rows, columns=["trial_id", "tuner_time", "epoch", "m"])


def test_incumbent_trajectory_min_is_exact():
    from analysis.trajectories import incumbent_trajectory
    res = _results([(0, 1.0, 1, 0.5), (1, 2.0, 1, 0.6), (2, 2.0, 1, 0.4), (0, 4.0, 2, 0.45), (3, 5.0, 1, 0.3),
                    (1, 6.0, 2, np.nan), (1, 7.0, 2, 0.3)])
    traj = incumbent_trajectory(res.sample(frac=1, random_state=0), "m", "min")
    assert traj["time"].tolist() == [1.0, 2.0, 5.0, 7.0]
    assert traj["best"].tolist() == [0.5, 0.4, 0.3, 0.3]
    assert traj["trial_id"].tolist() == [0, 2, 3, 3]  # a tie does not replace the incumbent


def test_incumbent_trajectory_max_is_exact():
    from analysis.trajectories import incumbent_trajectory
    res = _results([(0, 1.0, 1, 0.5), (1, 2.0, 1, 0.6), (2, 3.0, 1, 0.4), (0, 4.0, 2, 0.9), (3, 5.0, 1, 0.3)])
    traj = incumbent_trajectory(res, "m", "max")
    assert traj["time"].tolist() == [1.0, 2.0, 4.0, 5.0]
    assert traj["best"].tolist() == [0.5, 0.6, 0.9, 0.9]
    assert traj["epoch"].tolist() == [1, 1, 2, 2]


def test_step_values_and_time_to_target():
    from analysis.trajectories import step_values, time_to_target
    traj = pd.DataFrame({"time": [1.0, 3.0, 6.0, 10.0], "best": [0.5, 0.3, 0.2, 0.2]})
    # NaN before the first report and after the last (the run has ended)
    np.testing.assert_array_equal(step_values(traj, [0.5, 1.0, 2.9, 3.0, 7.0, 10.0, 20.0]),
                                  [np.nan, 0.5, 0.5, 0.3, 0.2, 0.2, np.nan])
    assert time_to_target(traj, 0.3, "min") == 3.0
    assert time_to_target(traj, 0.25, "min") == 6.0
    assert time_to_target(traj, 0.5, "min") == 1.0
    assert math.isnan(time_to_target(traj, 0.1, "min"))
    up = pd.DataFrame({"time": [1.0, 2.0, 4.0], "best": [0.5, 0.6, 0.9]})
    assert time_to_target(up, 0.55, "max") == 2.0
    assert math.isnan(time_to_target(up, 0.95, "max"))


TRAJS = [pd.DataFrame({"time": [1.0, 3.0, 6.0, 10.0], "best": [0.5, 0.3, 0.2, 0.2]}),
         pd.DataFrame({"time": [2.0, 4.0, 8.0], "best": [0.6, 0.1, 0.1]}),
         pd.DataFrame({"time": [1.0, 5.0, 9.0], "best": [0.4, 0.35, 0.35]})]


def test_time_grid_is_the_union_of_change_points():
    from analysis.trajectories import time_grid
    # with the instant after each run's end but the last, where that run leaves the aggregate
    assert time_grid(TRAJS).tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, np.nextafter(8.0, 9.0), 9.0,
                                         np.nextafter(9.0, 10.0), 10.0]
    assert time_grid(TRAJS, n_points=5).tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    np.testing.assert_allclose(time_grid(TRAJS, n_points=3, log=True), [2.0, math.sqrt(20), 10.0])


def test_aggregate_mean_and_standard_error_are_exact():
    from analysis.trajectories import aggregate_trajectories
    agg = aggregate_trajectories(TRAJS, [0.5, 1.0, 2.0, 4.0, 6.0])
    by_hand = {2.0: [0.5, 0.6, 0.4], 4.0: [0.3, 0.1, 0.4], 6.0: [0.2, 0.1, 0.35]}
    for t, vals in by_hand.items():
        row = agg[agg["time"] == t].iloc[0]
        mean = sum(vals) / 3
        se = math.sqrt(sum((v - mean) ** 2 for v in vals) / 2) / math.sqrt(3)
        assert row["center"] == pytest.approx(mean)
        assert row["lower"] == pytest.approx(mean - se)
        assert row["upper"] == pytest.approx(mean + se)
        assert row["n"] == 3
    row = agg[agg["time"] == 1.0].iloc[0]  # only two seeds have a value at t=1
    assert row["n"] == 2 and row["center"] == pytest.approx(0.45)
    assert row["upper"] - row["center"] == pytest.approx(math.sqrt(0.005) / math.sqrt(2))
    assert agg.loc[agg["time"] == 0.5, "n"].item() == 0 and agg.loc[agg["time"] == 0.5, "center"].isna().all()
    assert agg.loc[agg["time"] == 2.0, "center"].item() == pytest.approx(0.5)


def test_aggregate_median_and_quartiles_are_exact():
    from analysis.trajectories import aggregate_trajectories
    agg = aggregate_trajectories(TRAJS, [2.0, 4.0, 6.0], stat="median")
    assert agg["center"].tolist() == pytest.approx([0.5, 0.3, 0.2])
    assert agg["lower"].tolist() == pytest.approx([0.45, 0.2, 0.15])
    assert agg["upper"].tolist() == pytest.approx([0.55, 0.35, 0.275])


def test_aggregate_by_method_and_final_values(small_experiments):
    from analysis.trajectories import aggregate_by_method, final_values
    exps = list(small_experiments.values())
    agg = aggregate_by_method(exps)
    assert set(agg["method"]) == set(METHODS) and (agg["n_seeds"] == 3).all()
    for k, method in enumerate(METHODS):
        last = agg[agg["method"] == method].iloc[-1]  # seed s ends s after seed 0: only seed 2 is left
        assert last["n"] == 1 and last["center"] == pytest.approx(small_final(k, 2))
    finals = final_values(exps).set_index("experiment")
    assert finals.loc["bohb-1", "final"] == 0.01 and finals.loc["bohb-1", "trial_id"] == 3


def test_rank_correlation_matches_scipy():
    from scipy.stats import spearmanr

    from analysis.trajectories import rank_correlation_matrix
    rng = np.random.default_rng(0)
    rows = []
    for tid in range(12):
        last = (1, 3, 9)[min(tid % 4, 2)] if tid != 11 else 3
        base = rng.uniform(0.1, 0.9)
        for e in range(1, last + 1):
            rows.append((tid, float(tid * 10 + e), e, base / e + rng.normal(0, 0.05)))
    res = _results(rows)
    rho, n = rank_correlation_matrix(res, "m", [1, 3, 9])
    wide = res.pivot(index="trial_id", columns="epoch", values="m")
    for a in (1, 3, 9):
        for b in (1, 3, 9):
            both = wide[[a, b]].dropna()
            assert n.loc[a, b] == len(both)
            if a != b:
                assert rho.loc[a, b] == pytest.approx(spearmanr(both[a], both[b]).statistic)
    assert n.loc[1, 9] == 5 and n.loc[3, 3] == 9 and n.loc[1, 1] == 12
    rho2, _ = rank_correlation_matrix(res, "m", [1, 3, 9], min_count=6)
    assert math.isnan(rho2.loc[1, 9])


def test_budget_levels_and_reach_times(small_experiments):
    from analysis.trajectories import budget_levels, budget_reach_times
    hb = small_experiments["hyperband-0"]
    assert budget_levels(hb) == [1, 3]  # the recorded budget: 1..3, eta 3
    assert budget_levels(small_experiments["random_search-0"], fallback_eta=None) == [1, 3]
    reach = budget_reach_times(hb, [1, 3])
    assert reach[reach["budget"] == 3]["trial_id"].tolist() == [0, 2, 4]
    assert reach[reach["budget"] == 3]["time"].tolist() == [6.0, 26.0, 46.0]
    assert reach[reach["budget"] == 1]["time"].tolist() == [2.0, 12.0, 22.0, 32.0, 42.0, 52.0]


def test_budget_levels_ignore_trials_stopped_at_the_end_of_the_run(tmp_path):
    from analysis.load import load_experiment
    from analysis.trajectories import budget_levels
    epochs = {0: 9, 1: 9, 2: 9, 3: 4, 4: 6, 5: 2, 6: 2, 7: 2, 8: 5}  # random search, stopped at the end
    reports = [{"trial_id": t, "tuner_time": 10.0 * t + e, "epoch": e, "valid_error": 1 / e}
               for t, last in epochs.items() for e in range(1, last + 1)]
    statuses = {t: "Completed" if last == 9 else "Stopped" for t, last in epochs.items()}
    configs = {t: {"x": float(t)} for t in epochs}
    # A folder without a recorded budget: levels from the data.
    folder = write_results_folder(tmp_path, "rs", reports, configs, statuses=statuses, eta=None)
    assert budget_levels(load_experiment(folder), fallback_eta=None) == [2, 9]  # 2 is shared by three trials
    statuses.update({5: "InProgress", 6: "Failed"})
    folder = write_results_folder(tmp_path, "rs2", reports, configs, statuses=statuses, eta=None)
    assert budget_levels(load_experiment(folder), fallback_eta=None) == [9]
    assert budget_levels(load_experiment(folder)) == [1, 3, 9]  # fallback: 1 * 3^k
    # The recorded budget decides, whatever the scheduler_kwargs say.
    folder = write_results_folder(tmp_path, "rs3", reports, configs, statuses=statuses, eta=2,
                                  scheduler_kwargs={"reduction_factor": 3})
    assert budget_levels(load_experiment(folder)) == [1, 2, 4, 8, 9]


def test_concurrency_counts_each_trial_from_start_to_last_report(tmp_path):
    from analysis.load import load_experiment
    from analysis.workers import concurrency, worker_use
    reports = [{"trial_id": 0, "tuner_time": 5.0, "epoch": 1, "valid_error": 0.5},
               {"trial_id": 0, "tuner_time": 10.0, "epoch": 2, "valid_error": 0.4},
               {"trial_id": 1, "tuner_time": 10.0, "epoch": 1, "valid_error": 0.5},
               {"trial_id": 1, "tuner_time": 15.0, "epoch": 2, "valid_error": 0.4},
               {"trial_id": 2, "tuner_time": 22.0, "epoch": 1, "valid_error": 0.5},
               {"trial_id": 2, "tuner_time": 40.0, "epoch": 2, "valid_error": 0.4}]
    configs = {i: {"x": float(i)} for i in range(3)}
    folder = write_results_folder(tmp_path, "conc", reports, configs, max_resource=2,
                                  start_times={0: 0.0, 1: 5.0, 2: 20.0})
    conc = concurrency(load_experiment(folder))
    assert conc["time"].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 40.0]
    assert conc["running"].tolist() == [1, 2, 1, 0, 1, 0]
    # Busy worker-seconds 5 + 10 + 5 + 20 = 40 of 2 workers x 40 s.
    assert worker_use(load_experiment(folder)) == pytest.approx(40 / 80)


# Loading ---------------------------------------------------------------------------------------------------------

def test_load_experiments_from_parent_and_folders(small_set):
    from analysis.load import group_by_method, load_experiments
    exps = load_experiments(small_set)
    assert sorted(e.label for e in exps) == sorted(f"{m}-{s}" for m in METHODS for s in range(3))
    assert {m: len(v) for m, v in group_by_method(exps).items()} == {m: 3 for m in METHODS}
    bohb = next(e for e in exps if e.label == "bohb-1")
    assert bohb.metric == "valid_error" and bohb.mode == "min" and bohb.seed == 1 and bohb.simulated
    assert bohb.time_unit == "simulated seconds"
    assert bohb.results["tuner_time"].is_monotonic_increasing
    assert str(bohb.trials["model_based"].dtype) == "boolean"
    assert bohb.trials["model_based"].tolist() == [False, False, True, True, True, True]
    assert bohb.has_model_based and not next(e for e in exps if e.method == "hyperband").has_model_based
    assert "config_learning_rate" in bohb.config_columns
    two = load_experiments([small_set / "bohb-1", small_set / "hyperband-2", small_set / "bohb-1"])
    assert [e.label for e in two] == ["bohb-1", "hyperband-2"]


def _copy_small(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in ("results.csv", "trials.csv", "metadata.json"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def test_malformed_folders_give_one_clear_sentence(small_set, tmp_path):
    from analysis.load import ResultsFolderError, load_experiment, load_experiments
    no_trials = _copy_small(small_set / "bohb-0", tmp_path / "no_trials")
    (no_trials / "trials.csv").unlink()
    with pytest.raises(ResultsFolderError, match=r"no_trials lacks trials\.csv; a results folder holds"):
        load_experiments(tmp_path)
    no_col = _copy_small(small_set / "bohb-0", tmp_path / "no_col")
    pd.read_csv(no_col / "results.csv").drop(columns=["valid_error"]).to_csv(no_col / "results.csv", index=False)
    with pytest.raises(ResultsFolderError) as err:
        load_experiment(no_col)
    msg = str(err.value)
    assert "no_col/results.csv lacks the column 'valid_error'" in msg and "expected" in msg and "\n" not in msg
    no_status = _copy_small(small_set / "bohb-0", tmp_path / "no_status")
    pd.read_csv(no_status / "trials.csv").drop(columns=["status"]).to_csv(no_status / "trials.csv", index=False)
    with pytest.raises(ResultsFolderError, match=r"trials\.csv lacks the column 'status'"):
        load_experiment(no_status)
    bad_mode = _copy_small(small_set / "bohb-0", tmp_path / "bad_mode")
    md = json.loads((bad_mode / "metadata.json").read_text())
    md["mode"] = "minimize"
    (bad_mode / "metadata.json").write_text(json.dumps(md))
    with pytest.raises(ResultsFolderError, match="has mode 'minimize'; expected"):
        load_experiment(bad_mode)
    with pytest.raises(ResultsFolderError, match="does not exist"):
        load_experiments(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsFolderError, match="holds no results folder"):
        load_experiments(tmp_path / "empty")
    (no_status / "results.csv").write_text("")
    with pytest.raises(ResultsFolderError, match="is empty"):
        load_experiment(no_status)


# Summary ---------------------------------------------------------------------------------------------------------

def test_summary_best_config_and_method_table(small_experiments):
    from analysis.summary import best_configurations, default_target, method_summary, summary_markdown
    exps = list(small_experiments.values())
    best = best_configurations(exps).set_index("experiment")
    b = best.loc["bohb-1"]
    assert b["value"] == 0.01 and b["trial_id"] == 3 and b["epoch"] == 1 and b["config"] == SPECIAL
    assert best.loc["hyperband-2", "value"] == pytest.approx(small_final(1, 2))
    means = [np.mean([small_final(k, s) for s in range(3)]) for k in range(3)]
    target = default_target(exps)
    assert target == pytest.approx(float(np.median(means)))
    table = method_summary(exps, target).set_index("method")
    for k, m in enumerate(METHODS):
        finals = [small_final(k, s) for s in range(3)]
        assert table.loc[m, "final_mean"] == pytest.approx(np.mean(finals))
        assert table.loc[m, "final_se"] == pytest.approx(np.std(finals, ddof=1) / math.sqrt(3))
        assert table.loc[m, "n_seeds"] == 3
    # hyperband seeds reach their final value with trial 2 at epoch 3 (time 26 + seed)
    t = method_summary(exps, 0.21).set_index("method")
    assert t.loc["hyperband", "reached"] == 3 and t.loc["hyperband", "time_mean"] == pytest.approx(27.0)
    assert t.loc["random_search", "reached"] == 3  # trial 2 at epoch 3: (0.6 - s / 100) / 3 at time 26 + s
    assert t.loc["random_search", "time_mean"] == pytest.approx(27.0)
    md = summary_markdown(exps)
    assert "Best overall: valid_error = 0.01 in `bohb-1` (trial 3, epoch 1)" in md
    assert "learning_rate=0.0123, n_conv_layers=2, n_filters_1=8" in md
    assert f"{target:.4g}, derived from the data" in md
    md2 = summary_markdown(exps, target=0.001)
    assert "not reached" in md2 and "0.001, as given" in md2


# Plots -----------------------------------------------------------------------------------------------------------

def _assert_png(path: Path, min_kb: float = 5.0) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > min_kb * 1024, (path, len(data))


PLOTS = ["error_curves", "hp_scatter", "finished_per_budget", "rank_correlation", "losses_over_time",
         "model_based_hist", "concurrency"]


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "analysis/report.py", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"}, timeout=120)


@pytest.fixture(scope="module")
def report_run(small_set, tmp_path_factory) -> tuple[Path, str]:
    """report.py's main run once in this process on a BOHB and a random search experiment; (out, stdout)."""
    import contextlib
    import io

    from analysis.report import main
    out = tmp_path_factory.mktemp("report") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([str(small_set / "bohb-1"), "--out", str(out), "--dpi", "30"]) == 0
    return out, stdout.getvalue()


def _labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


@pytest.mark.parametrize("stat", ["mean", "median"])
def test_anytime_draws_one_line_per_method_ending_at_its_final_values(small_experiments, stat):
    from analysis.plots import draw_anytime
    ax = draw_anytime(list(small_experiments.values()), stat=stat, time_axis="linear").axes[0]
    # Seed s ends s after seed 0: each line ends, thin, at the final value of seed 2, the last one running.
    thin = {line.get_color(): line.get_ydata()[-1] for line in ax.get_lines() if line.get_label() == "_ended"}
    last = {line.get_label(): thin[line.get_color()] for line in ax.get_lines() if line.get_label().endswith("seeds)")}
    assert last == {f"{m} (3 seeds)": pytest.approx(small_final(k, 2)) for k, m in enumerate(METHODS)}
    assert len(ax.collections) == len(METHODS)  # one band per method
    assert ax.get_ylabel().startswith("best validation error") and ax.get_xlabel().startswith("tuner time")


def test_error_curves_draw_every_trial_and_the_best_in_red(small_experiments):
    from matplotlib.collections import LineCollection

    from analysis.plots import draw_error_curves
    ax = draw_error_curves(small_experiments["bohb-1"]).axes[0]
    curves = next(c for c in ax.collections if isinstance(c, LineCollection))
    assert len(curves.get_segments()) == 6  # one per trial
    assert _labels(ax) == ["best trial (id 3: 0.01 at 1 epoch)"]
    assert ax.get_xlabel().startswith("epoch")


def test_finished_over_time_counts_the_trials_reaching_each_budget(small_experiments):
    from analysis.plots import draw_finished_over_time
    ax = draw_finished_over_time(small_experiments["hyperband-0"], time_axis="linear").axes[0]
    assert _labels(ax) == ["1 epoch (6 trials)", "3 epochs (3 trials)"]
    assert [line.get_ydata()[-1] for line in ax.get_lines()] == [6, 3]


def test_rank_correlation_shows_the_matrix(small_experiments):
    from analysis.plots import draw_rank_correlation
    from analysis.trajectories import rank_correlation_matrix
    exp = small_experiments["random_search-0"]
    ax = draw_rank_correlation(exp).axes[0]
    rho, _ = rank_correlation_matrix(exp.results, exp.metric, [1, 3])
    np.testing.assert_allclose(ax.get_images()[0].get_array().filled(np.nan), rho.to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 epoch", "3 epochs"]


def test_model_based_histograms_split_picks_per_budget(small_experiments):
    from analysis.plots import draw_model_based_histograms
    fig = draw_model_based_histograms(small_experiments["bohb-0"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["1 epoch", "3 epochs"]
    # Trials 0 and 1 were random picks, 2..5 model-based; trials 0, 2, 4 reached 3 epochs.
    assert [t.get_text() for t in visible[0].get_legend().get_texts()] == ["random (2)", "model-based (4)"]
    assert [t.get_text() for t in visible[1].get_legend().get_texts()] == ["random (1)", "model-based (2)"]


def test_a_plot_that_does_not_apply_says_so(small_experiments):
    from analysis import plots
    fig = plots.draw_model_based_histograms(small_experiments["random_search-0"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["no data: trials.csv does not mark model-based picks"]
    assert not plots.applies_model_based(small_experiments["random_search-0"])
    assert plots.applies_model_based(small_experiments["bohb-0"])
    assert plots.applies_rank_correlation(small_experiments["bohb-0"])


def test_concurrency_plot_draws_running_trials_and_the_workers(small_experiments):
    from analysis.plots import draw_concurrency
    ax = draw_concurrency(small_experiments["hyperband-0"]).axes[0]
    assert _labels(ax) == ["running trials", "n_workers = 2"]
    running, workers = ax.get_lines()
    assert set(running.get_ydata()) == {0, 1} and set(workers.get_ydata()) == {2}  # the trials never overlap


def test_save_figure_writes_a_png_at_the_resolution_asked(small_experiments, tmp_path):
    from analysis.plots import draw_concurrency, save_figure
    small = save_figure(draw_concurrency(small_experiments["bohb-0"]), tmp_path / "a.png", dpi=50)
    large = save_figure(draw_concurrency(small_experiments["bohb-0"]), tmp_path / "b.png", dpi=100)
    assert small.read_bytes()[:8] == PNG_MAGIC and len(large.read_bytes()) > len(small.read_bytes())


def test_scatter_axes_total_filters_and_generic_pick(small_experiments, tmp_path):
    from analysis.load import load_experiment
    from analysis.plots import scatter_axes
    axes = scatter_axes(small_experiments["bohb-1"])
    assert axes["x_name"] == "learning_rate" and axes["x_log"]
    # trial i: n_conv_layers = 1 + i % 3, filters 4 (i + 1), 8, 16; trial 3 is SPECIAL: 2 layers, 8 + 16
    assert axes["y"].tolist() == [4.0, 8 + 8.0, 12 + 8 + 16.0, 8 + 16.0, 20 + 8.0, 24 + 8 + 16.0]
    reports = [{"trial_id": i, "tuner_time": float(i + 1), "epoch": 1, "valid_error": 0.1 * (i + 1)} for i in range(3)]
    folder = write_results_folder(tmp_path, "generic", reports,
                                  {i: {"x0": float(i), "kind": "a", "x1": 10.0 ** i, "c": 1} for i in range(3)},
                                  max_resource=1, config_space={"x1": "loguniform(1, 100)"})
    generic = scatter_axes(load_experiment(folder))
    assert (generic["x_name"], generic["y_name"]) == ("x0", "x1") and generic["y_log"] and not generic["x_log"]
    one = write_results_folder(tmp_path, "one", reports, {i: {"x0": float(i), "c": 1} for i in range(3)},
                               max_resource=1)
    assert scatter_axes(load_experiment(one)) is None


# Test error and estimated incumbents ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def estimated_runs(tmp_path_factory) -> list:
    """Two seeds of a tabulated benchmark's run: seed 0's incumbent was estimated, seed 1's measured; every report
    has a test_error (validation + 0.1)."""
    from analysis.load import load_experiments
    root = tmp_path_factory.mktemp("estimated")
    for seed in (0, 1):
        reports = [{"trial_id": i, "tuner_time": 10.0 * i + e, "epoch": e, "valid_error": 0.5 - 0.1 * i - 0.01 * e,
                    "test_error": 0.6 - 0.1 * i - 0.01 * e, "estimated": float(i == 2 and seed == 0)}
                   for i in range(3) for e in (1, 2)]
        write_results_folder(root, f"rea-{seed}", reports, {i: {"x0": f"op{i}"} for i in range(3)}, scheduler="rea",
                             seed=seed, max_resource=2, benchmark="nasbench201")
    return load_experiments(root)


def test_the_incumbents_test_error_is_reported_next_to_its_validation_error(estimated_runs):
    from analysis.summary import ESTIMATED_NOTE, best_configurations, method_summary, summary_markdown
    best = best_configurations(estimated_runs).set_index("experiment")
    # Validation chooses trial 2 at epoch 2; test only reports it.
    assert best.loc["rea-0", ["value", "test", "estimated", "trial_id"]].tolist() == [
        pytest.approx(0.28), pytest.approx(0.38), True, 2]
    assert not best.loc["rea-1", "estimated"]
    table = method_summary(estimated_runs, 0.3).set_index("method")
    assert table.loc["rea", "test_mean"] == pytest.approx(0.38) and table.loc["rea", "n_estimated"] == 1
    md = summary_markdown(estimated_runs)
    assert "| best valid_error | test_error | epoch |" in md
    assert "| rea-0 | rea | 0 | 0.28* | 0.38 | 2 | 2 |" in md and "| rea-1 | rea | 1 | 0.28 | 0.38 | 2 | 2 |" in md
    assert ESTIMATED_NOTE in md and "Best overall: valid_error = 0.28* (test_error 0.38) in `rea-0`" in md
    assert "| rea | 2 | 0.28 ± 0 | 0.38 ± 0 | 1/2 | 2/2 |" in md


def test_incumbent_plots_mark_estimated_incumbents(estimated_runs):
    from analysis.plots import ESTIMATED_NOTE, draw_anytime, draw_error_curves
    ax = draw_anytime(estimated_runs).axes[0]
    assert _labels(ax) == ["rea (2 seeds; 1 final incumbent estimated*)", ESTIMATED_NOTE]
    assert [line.get_marker() for line in ax.get_lines()] == ["None", "*", "*"]  # the line, its star, the legend's
    assert _labels(draw_error_curves(estimated_runs[0]).axes[0]) == [
        "best trial (id 2: 0.28 at 2 epochs; * estimated: the table's surrogate answered)"]
    assert _labels(draw_error_curves(estimated_runs[1]).axes[0]) == ["best trial (id 2: 0.28 at 2 epochs)"]
    assert _labels(draw_anytime(estimated_runs[1:]).axes[0]) == ["rea (1 seed)"]


# The command line ------------------------------------------------------------------------------------------------

def test_report_cli_writes_all_figures_and_summary(report_run):
    out, stdout = report_run
    assert sorted(p.name for p in out.iterdir()) == ["anytime.png", "bohb-1", "summary.md"]
    _assert_png(out / "anytime.png", min_kb=1)
    assert sorted(p.name for p in (out / "bohb-1").iterdir()) == sorted(f"{n}.png" for n in PLOTS)
    md = (out / "summary.md").read_text()
    assert "Best overall: valid_error = 0.01 in `bohb-1` (trial 3, epoch 1)" in md
    assert "learning_rate=0.0123" in md and "(bohb-1/error_curves.png)" in md
    assert "summary.md" in stdout and "anytime.png" in stdout


def test_report_cli_user_errors_exit_2_without_traceback(small_set, tmp_path):
    broken = _copy_small(small_set / "hyperband-0", tmp_path / "broken")
    (broken / "trials.csv").unlink()
    proc = _report(str(broken), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {broken} lacks trials.csv; a results folder holds results.csv, "
                                   f"trials.csv, metadata.json.")
    assert not (tmp_path / "out").exists()


def test_report_main_errors_and_help(tmp_path, capsys):
    from analysis.report import main
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'} does not exist; expected a results folder " \
                                      f"or a folder holding some.\n"
    (tmp_path / "file").write_text("x")
    assert main([str(tmp_path), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "--target" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path), "--out", str(tmp_path / "o"), "--time-axis", "loglog"])
    assert exit_.value.code == 2


def test_realistic_simulation_follows_the_contract(tmp_path):
    from analysis.load import load_experiment
    from analysis.trajectories import budget_levels
    exp = load_experiment(simulate_experiment(tmp_path, "bohb", 0, t_max=400.0))
    assert set(exp.trials["model_based"].dropna()) == {True, False}
    assert budget_levels(exp) == [1, 3, 9]
    assert set(exp.trials["status"]) <= {"Completed", "Stopped", "InProgress"}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/analysis_synthetic")
    for p in make_realistic_set(out):
        print(p)
