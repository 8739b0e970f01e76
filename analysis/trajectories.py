"""Incumbent trajectories, their aggregation over seeds, time to a target, and per-budget statistics.

An incumbent trajectory is the best metric value seen so far (by mode) as a right-continuous step function of
tuner time. It is stored as a frame with one row per improvement (plus a last row at the time of the last
report, so the step function spans the whole run): ``time``, ``best``, ``trial_id`` (the incumbent's trial) and
``epoch`` (the resource at which the incumbent value was reported).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from analysis.load import METADATA_FILE, Experiment, ResultsFolderError, group_by_method

TRAJECTORY_COLUMNS = ("time", "best", "trial_id", "epoch")


def incumbent_trajectory(results: pd.DataFrame, metric: str, mode: str, time_col: str = "tuner_time",
                         resource_attr: str = "epoch", carry: dict[str, str] | None = None) -> pd.DataFrame:
    """The best ``metric`` so far against ``time_col``: one row per strict improvement, plus the last report time.

    ``carry`` maps output names to other columns of the incumbent's report to keep (e.g. ``{"test": "test_error"}``):
    they describe the incumbent that ``metric`` chose and never take part in choosing it.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    carry = carry or {}
    cols = [time_col, metric, "trial_id"] + ([resource_attr] if resource_attr in results.columns else [])
    cols += [c for c in carry.values() if c not in cols]
    df = results.loc[results[metric].notna() & results[time_col].notna(), cols]
    if df.empty:
        return pd.DataFrame({"time": pd.Series(dtype=float), "best": pd.Series(dtype=float),
                             "trial_id": pd.Series(dtype="int64"), "epoch": pd.Series(dtype="int64"),
                             **{name: pd.Series(dtype=results[c].dtype) for name, c in carry.items()}})
    df = df.sort_values(time_col, kind="mergesort")
    values = df[metric].to_numpy(dtype=float)
    signed = values if mode == "min" else -values
    best_signed = np.minimum.accumulate(signed)
    # A row is an improvement if it is strictly better than everything before it.
    improved = np.empty(len(signed), dtype=bool)
    improved[0] = True
    improved[1:] = signed[1:] < best_signed[:-1]
    # Among reports at the same time, only the last improvement at that time is kept (the value at that time).
    times = df[time_col].to_numpy(dtype=float)
    idx = np.flatnonzero(improved)
    keep_idx = idx[np.r_[times[idx][1:] != times[idx][:-1], True]]
    epochs = df[resource_attr].to_numpy() if resource_attr in df.columns else np.zeros(len(df), dtype=np.int64)
    traj = pd.DataFrame({
        "time": times[keep_idx],
        "best": values[keep_idx],
        "trial_id": df["trial_id"].to_numpy()[keep_idx],
        "epoch": epochs[keep_idx],
        **{name: df[column].to_numpy()[keep_idx] for name, column in carry.items()},
    })
    if times[-1] > traj["time"].iloc[-1]:
        last = traj.iloc[[-1]].copy()
        last["time"] = times[-1]
        traj = pd.concat([traj, last], ignore_index=True)
    return traj


def experiment_trajectory(exp: Experiment) -> pd.DataFrame:
    """The incumbent trajectory of one experiment (its metric and mode, tuner time), with the incumbent's ``test``
    value (its test metric, NaN where none was reported) and whether it was ``estimated`` (False where unknown)."""
    results = exp.results
    test = results[exp.test_metric] if exp.test_metric else np.nan
    estimated = results["estimated"].fillna(0).astype(bool) if exp.has_estimates else False
    results = results.assign(_test=test, _estimated=estimated)
    return incumbent_trajectory(results, exp.metric, exp.mode, resource_attr=exp.resource_attr,
                                carry={"test": "_test", "estimated": "_estimated"})


def step_values(trajectory: pd.DataFrame, times: np.ndarray | Sequence[float]) -> np.ndarray:
    """The incumbent value at each of ``times``: NaN before the first report and after the last, where the run had
    ended (holding its last value would count a finished run as if it were still going)."""
    times = np.asarray(times, dtype=float)
    t = trajectory["time"].to_numpy(dtype=float)
    pos = np.searchsorted(t, times, side="right") - 1
    out = np.full(times.shape, np.nan)
    ok = (pos >= 0) & (times <= (t[-1] if len(t) else -np.inf))
    out[ok] = trajectory["best"].to_numpy(dtype=float)[pos[ok]]
    return out


def time_grid(trajectories: Sequence[pd.DataFrame], n_points: int | None = None, log: bool = False,
              start: float | None = None, end: float | None = None) -> np.ndarray:
    """A common time grid for trajectories.

    By default it starts when every trajectory has a value (the latest first report) and ends at the last
    report of any. With ``n_points=None`` it is the union of all change points in that range, on which the
    aggregate of step functions is exact: each trajectory's times, and the instant after each one's last report
    (where it leaves the aggregate, see ``step_values``); otherwise ``n_points`` evenly (or log-) spaced times.
    """
    trajs = [t for t in trajectories if len(t)]
    if not trajs:
        return np.empty(0)
    if start is None:
        start = max(float(t["time"].iloc[0]) for t in trajs)
    if end is None:
        end = max(float(t["time"].iloc[-1]) for t in trajs)
    if end < start:
        end = start
    if n_points is None:
        ends = np.array([float(t["time"].iloc[-1]) for t in trajs])
        all_times = np.concatenate([t["time"].to_numpy(dtype=float) for t in trajs]
                                   + [np.array([start, end]), np.nextafter(ends, np.inf)])
        return np.unique(all_times[(all_times >= start) & (all_times <= end)])
    if log:
        lo = start if start > 0 else min((float(t["time"][t["time"] > 0].min()) for t in trajs
                                          if (t["time"] > 0).any()), default=1.0)
        return np.geomspace(lo, max(end, lo), n_points)
    return np.linspace(start, end, n_points)


def aggregate_trajectories(trajectories: Sequence[pd.DataFrame], grid: np.ndarray | Sequence[float],
                           stat: Literal["mean", "median"] = "mean") -> pd.DataFrame:
    """Aggregate step trajectories (one per seed) at each grid time.

    ``stat="mean"``: ``center`` is the mean and ``lower``/``upper`` are mean -/+ standard error (std with ddof=1
    over sqrt(n); NaN for one seed). ``stat="median"``: median with the 25% and 75% quantiles (linear
    interpolation). Seeds without a value yet, or whose run has ended, are left out at a time; ``n`` counts the seeds
    used.
    """
    grid = np.asarray(grid, dtype=float)
    if stat not in ("mean", "median"):
        raise ValueError(f"stat must be 'mean' or 'median', not {stat!r}")
    if not trajectories:
        values = np.full((0, len(grid)), np.nan)
    else:
        values = np.vstack([step_values(t, grid) for t in trajectories])
    n = np.sum(~np.isnan(values), axis=0)
    nan = np.full(len(grid), np.nan)
    with warnings.catch_warnings():  # all-NaN columns (no seed has a value yet) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat == "mean":
            center = np.nanmean(values, axis=0) if len(values) else nan
            std = np.nanstd(values, axis=0, ddof=1) if len(values) else nan
            se = np.where(n > 1, std / np.sqrt(np.maximum(n, 1)), np.nan)
            lower, upper = center - se, center + se
        elif len(values):
            center = np.nanmedian(values, axis=0)
            lower, upper = np.nanquantile(values, [0.25, 0.75], axis=0)
        else:
            center = lower = upper = nan
    return pd.DataFrame({"time": grid, "center": center, "lower": lower, "upper": upper, "n": n})


def aggregate_by_method(experiments: Iterable[Experiment], stat: Literal["mean", "median"] = "mean",
                        n_points: int | None = None, log: bool = False) -> pd.DataFrame:
    """Aggregated incumbent trajectories per method on one grid per method (see ``time_grid``).

    Returns a long frame with columns ``method``, ``time``, ``center``, ``lower``, ``upper``, ``n``, ``n_seeds``;
    ``n`` falls below ``n_seeds`` where some seeds' runs have ended.
    """
    frames = []
    for method, exps in group_by_method(experiments).items():
        trajs = [experiment_trajectory(e) for e in exps]
        grid = time_grid(trajs, n_points=n_points, log=log)
        agg = aggregate_trajectories(trajs, grid, stat=stat)
        agg.insert(0, "method", method)
        agg["n_seeds"] = len(exps)
        frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=["method", "time", "center", "lower", "upper", "n", "n_seeds"])
    return pd.concat(frames, ignore_index=True)


def time_to_target(trajectory: pd.DataFrame, target: float, mode: str) -> float:
    """The first tuner time at which the incumbent is at least as good as ``target``; NaN if never."""
    best = trajectory["best"].to_numpy(dtype=float)
    reached = best <= target if mode == "min" else best >= target
    if not reached.any():
        return float("nan")
    return float(trajectory["time"].to_numpy(dtype=float)[np.argmax(reached)])


def final_values(experiments: Iterable[Experiment]) -> pd.DataFrame:
    """Per experiment: method, seed, the final incumbent value, its trial, the last report time, the incumbent's
    test value (NaN where no test metric was reported) and whether it was estimated."""
    rows = []
    for exp in experiments:
        traj = experiment_trajectory(exp)
        last = traj.iloc[-1] if len(traj) else None
        rows.append({
            "method": exp.method, "experiment": exp.label, "seed": exp.seed,
            "final": float(last["best"]) if last is not None else float("nan"),
            "trial_id": int(last["trial_id"]) if last is not None else None,
            "end_time": float(last["time"]) if last is not None else float("nan"),
            "test": float(last["test"]) if last is not None else float("nan"),
            "estimated": bool(last["estimated"]) if last is not None else False,
        })
    return pd.DataFrame(rows, columns=["method", "experiment", "seed", "final", "trial_id", "end_time", "test",
                                       "estimated"])


def times_to_target(experiments: Iterable[Experiment], target: float) -> pd.DataFrame:
    """Per experiment: method, seed and the time its incumbent first reached ``target`` (NaN if never)."""
    rows = [{"method": e.method, "experiment": e.label, "seed": e.seed,
             "time": time_to_target(experiment_trajectory(e), target, e.mode)} for e in experiments]
    return pd.DataFrame(rows, columns=["method", "experiment", "seed", "time"])


# Per-budget statistics ------------------------------------------------------------------------------------------

# Synchronous Hyperband and BOHB put their rungs on a grid anchored at the largest budget, round(max * eta^-k)
# (``schedulers/hyperband_schedule.py``); the asynchronous ones (asha, async_bohb) at min * eta^k.
SYNC_HYPERBAND = ("hyperband", "bohb", "bohb_uncapped")


def rung_levels(min_resource: int, max_resource: int, eta: float) -> list[int]:
    """Geometric budget levels min_resource * eta^k below max_resource, each as the first whole budget at or above
    it (where asynchronous successive halving first judges a trial), with max_resource itself last."""
    levels = []
    r = float(min_resource)
    while r < max_resource - 1e-9 and eta > 1:
        levels.append(math.ceil(r - 1e-9))  # the slack keeps 1.1 * 10 = 11.000000000000002 at 11
        r *= eta
    levels.append(int(max_resource))
    return sorted(set(levels))


def synchronous_rungs(exp: Experiment) -> list[int] | None:
    """The rungs of a synchronous Hyperband/BOHB run as ``metadata.json`` records them (``scheduler_kwargs``'s
    ``budgets``); None where it does not."""
    recorded = (exp.metadata.get("scheduler_kwargs") or {}).get("budgets")
    if recorded is None:
        return None
    whole = isinstance(recorded, list) and recorded and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 1 and b == int(b) for b in recorded)
    if not whole:
        raise ResultsFolderError(f"{exp.path / METADATA_FILE} has scheduler_kwargs budgets {recorded!r}; expected a "
                                 f"list of whole numbers of {exp.resource_attr}s (the rungs of the run).")
    return sorted({int(b) for b in recorded})


def budget_levels(exp: Experiment, max_levels: int = 8, fallback_eta: float | None = 3) -> list[int]:
    """The budget levels (epochs) at which trials of an experiment stopped or were promoted.

    Synchronous Hyperband and BOHB: their rungs, round(max_resource * eta^-k), as recorded (``synchronous_rungs``).
    Other schedulers: the levels min_resource * eta^k (and max_resource) of the budget that ``metadata.json`` records
    (see ``rung_levels``). For folders without either, the epochs of completed trials, and the epochs at which at
    least max(2, 5%) of the finished trials stopped or were paused (so that trials stopped at the end of the run do
    not count), the ``max_levels`` most frequent. When that gives fewer than two levels (every trial ran to the end) and
    ``fallback_eta`` is set, the levels 1 * fallback_eta^k are used, so that budgets can still be compared. Only
    levels reached by some report are returned.
    """
    budget = exp.budget
    reached = exp.results[exp.resource_attr].dropna()
    max_reached = int(reached.max()) if len(reached) else 0
    synchronous = exp.method in SYNC_HYPERBAND
    levels = synchronous_rungs(exp) if synchronous else None
    if levels is None and budget is not None and not synchronous:
        levels = rung_levels(budget.min_resource, budget.max_resource, budget.eta)
    if levels is None:
        trials = exp.trials[exp.trials["epochs"] > 0]
        completed = trials.loc[trials["status"] == "Completed", "epochs"].value_counts()
        stopped = trials.loc[trials["status"].isin(["Stopped", "Paused"]), "epochs"].value_counts()
        threshold = max(2.0, 0.05 * (completed.sum() + stopped.sum()))
        counts = pd.concat([completed, stopped[stopped >= threshold]]).groupby(level=0).sum()
        counts = counts.sort_values(ascending=False, kind="mergesort")
        levels = sorted(int(v) for v in counts.index[:max_levels])
        if len(levels) < 2 and fallback_eta and max_reached:
            levels = rung_levels(1, max_reached, float(fallback_eta))
    return [lv for lv in levels if lv <= max_reached]


def budget_reach_times(exp: Experiment, levels: Sequence[int]) -> pd.DataFrame:
    """For each level b and trial that reached it: the tuner time of its first report with epoch >= b."""
    res = exp.results[["trial_id", "tuner_time", exp.resource_attr]]
    frames = []
    for b in levels:
        first = res[res[exp.resource_attr] >= b].groupby("trial_id", sort=True)["tuner_time"].min()
        frames.append(pd.DataFrame({"budget": int(b), "trial_id": first.index.to_numpy(),
                                    "time": first.to_numpy(dtype=float)}))
    if not frames:
        return pd.DataFrame({"budget": pd.Series(dtype="int64"), "trial_id": pd.Series(dtype="int64"),
                             "time": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True).sort_values(["budget", "time"], kind="mergesort",
                                                            ignore_index=True)


def reports_at_budgets(results: pd.DataFrame, metric: str, levels: Sequence[int],
                       resource_attr: str = "epoch") -> pd.DataFrame:
    """The reports made exactly at the given budget levels (last one per trial and level), with a ``budget`` column."""
    df = results[results[resource_attr].isin(list(levels)) & results[metric].notna()]
    df = df.drop_duplicates(["trial_id", resource_attr], keep="last")
    return df.assign(budget=df[resource_attr].astype("int64"))


def values_by_budget(results: pd.DataFrame, metric: str, levels: Sequence[int],
                     resource_attr: str = "epoch") -> pd.DataFrame:
    """A trials x budgets frame of the metric each trial reported at each budget level (NaN where it did not)."""
    df = reports_at_budgets(results, metric, levels, resource_attr)
    wide = df.pivot(index="trial_id", columns="budget", values=metric)
    return wide.reindex(columns=[int(b) for b in levels])


def rank_correlation_matrix(results: pd.DataFrame, metric: str, levels: Sequence[int],
                            resource_attr: str = "epoch", min_count: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman rank correlation of the metric between budget levels, over trials evaluated at both.

    Returns ``(rho, n)``: budgets x budgets frames; rho is NaN where fewer than ``min_count`` trials share the
    two budgets or the values are constant.
    """
    wide = values_by_budget(results, metric, levels, resource_attr)
    present = wide.notna().to_numpy(dtype=float)
    n = pd.DataFrame(present.T @ present, index=wide.columns, columns=wide.columns).astype("int64")
    rho = wide.corr(method="spearman", min_periods=min_count)
    return rho, n
