"""Worker use: when each trial ran, how many ran at once, and how busy the workers were on average."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import Experiment
from analysis.trajectories import SYNC_HYPERBAND, synchronous_rungs


def _pause_budgets(exp: Experiment) -> list[int]:
    """The budgets at which the run paused trials (every rung but the largest), smallest first; none if its
    scheduler never pauses (only synchronous Hyperband and BOHB do, ``schedulers/hyperband_sync.py``)."""
    if exp.method not in SYNC_HYPERBAND:
        return []
    return (synchronous_rungs(exp) or [])[:-1]


def _segments(times: np.ndarray, epochs: np.ndarray, pauses: list[int]) -> list[tuple[int, int]]:
    """A trial's runs as (first, last) indices into its reports (in time order): a run ends at the first report
    reaching its next pause budget (as the scheduler decides: ``epoch >= budget``) and the next report starts
    another, however its epochs go on (from a checkpoint, or from 1 where the script keeps none)."""
    segments, first, k = [], 0, 0
    for i, epoch in enumerate(epochs):
        if k < len(pauses) and epoch >= pauses[k]:
            k += 1
            if i + 1 < len(times):
                segments.append((first, i))
                first = i + 1
    segments.append((first, len(times) - 1))
    return segments


def busy_intervals(exp: Experiment) -> pd.DataFrame:
    """When each trial ran (columns ``trial_id``, ``start``, ``end``; one row per run of a trial).

    A trial occupies its worker from its start to its last report, start-up and data loading before the first report
    included; one still ``InProgress`` runs on to the end of the run. Synchronous Hyperband and BOHB pause trials at
    their rungs, freeing the worker: there each run of a trial ends at its report at the rung, and a resumed run is
    taken to need as long before its first report as the trial's first run did (its start is not recorded; both
    are a fresh process that trains one epoch), but never to start before the previous run ended.
    """
    trials = exp.trials
    end_of_run = float(exp.results["tuner_time"].max()) if len(exp.results) else 0.0
    end = trials["end_time"].astype(float)
    end = end.where(trials["status"] != "InProgress", end_of_run)
    intervals = pd.DataFrame({"trial_id": trials["trial_id"], "start": trials["start_time"].astype(float),
                              "end": end})
    pauses = _pause_budgets(exp)
    if pauses:
        brackets = trials["bracket"] if "bracket" in trials.columns else pd.Series(0, index=trials.index)
        # A trial's bracket starts at budgets[bracket], so it is paused at pauses[bracket:].
        first_pause = dict(zip(trials["trial_id"], brackets.fillna(0).astype(int)))
        rows = []
        reports = exp.results.groupby("trial_id", sort=False)
        for trial_id, start, last_end in intervals.itertuples(index=False):
            if trial_id not in reports.groups:
                rows.append((trial_id, start, last_end))
                continue
            own = reports.get_group(trial_id)
            times = own["tuner_time"].to_numpy(dtype=float)
            epochs = own[exp.resource_attr].to_numpy()
            lead = times[0] - start
            segments = _segments(times, epochs, pauses[first_pause[trial_id]:])
            previous_end = start
            for n, (first, last) in enumerate(segments):
                seg_start = start if n == 0 else max(previous_end, times[first] - lead)
                previous_end = last_end if n == len(segments) - 1 else times[last]
                rows.append((trial_id, seg_start, previous_end))
        intervals = pd.DataFrame(rows, columns=["trial_id", "start", "end"])
    return intervals.dropna().sort_values(["start", "trial_id"], ignore_index=True)


def concurrency(exp: Experiment) -> pd.DataFrame:
    """Number of running trials over time (a right-continuous step function: ``time``, ``running``)."""
    iv = busy_intervals(exp)
    iv = iv[iv["end"] > iv["start"]]
    times = np.r_[iv["start"].to_numpy(dtype=float), iv["end"].to_numpy(dtype=float)]
    delta = np.r_[np.ones(len(iv)), -np.ones(len(iv))]
    order = np.lexsort((delta, times))  # ends before starts at the same time
    times, running = times[order], np.cumsum(delta[order])
    keep = np.r_[times[1:] != times[:-1], True] if len(times) else np.array([], dtype=bool)
    return pd.DataFrame({"time": times[keep], "running": running[keep].astype(int)})


def worker_use(exp: Experiment) -> float:
    """Mean share of the ``n_workers`` that ran a trial, from time 0 to the last trial's end (NaN if unknown)."""
    conc = concurrency(exp)
    if conc.empty or not exp.n_workers:
        return float("nan")
    t = np.r_[0.0, conc["time"].to_numpy(dtype=float)]
    running = np.r_[0, conc["running"].to_numpy()]
    if t[-1] <= t[0]:
        return float("nan")
    return float(np.sum(running[:-1] * np.diff(t)) / (exp.n_workers * (t[-1] - t[0])))
