"""Worker use: when each trial ran, how many ran at once, and how busy the workers were on average."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import Experiment


def busy_intervals(exp: Experiment) -> pd.DataFrame:
    """When each trial ran (columns ``trial_id``, ``start``, ``end``): from its start to its last report.

    The launchers' schedulers stop trials but never pause them, so a trial occupies its worker throughout, start-up
    and data loading before the first report included. A trial still ``InProgress`` runs on to the end of the run.
    """
    trials = exp.trials
    end_of_run = float(exp.results["tuner_time"].max()) if len(exp.results) else 0.0
    end = trials["end_time"].astype(float)
    end = end.where(trials["status"] != "InProgress", end_of_run)
    intervals = pd.DataFrame({"trial_id": trials["trial_id"], "start": trials["start_time"].astype(float),
                              "end": end})
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
