"""Plots of tuning results: each ``draw_*`` function returns a ``matplotlib.figure.Figure``; ``save_figure`` writes it.

Figures are drawn with ``Figure`` (no pyplot, no display needed). Functions for plots that may not apply to an
experiment (e.g. model-based histograms for random search) have an ``applies_*`` partner; called anyway, they draw
a figure with a "no data" note. The numbers behind the plots come from ``trajectories`` and ``workers``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis.load import Experiment, group_by_method, time_unit
from analysis.trajectories import (aggregate_trajectories, budget_levels, budget_reach_times,
                                   experiment_trajectory, incumbent_trajectory, rank_correlation_matrix,
                                   reports_at_budgets, time_grid)
from analysis.workers import concurrency, worker_use

DPI = 120
ESTIMATED_NOTE = "* final incumbent estimated: the table's surrogate answered, not a measurement"
ENDED_NOTE = "thin line: only the seeds still running (the others had ended)"
WIDE = (8.0, 4.8)
TimeAxis = Literal["linear", "log"]
METRIC_NAMES = {
    "valid_error": "validation error", "valid_loss": "validation loss", "train_loss": "training loss",
    "test_error": "test error", "valid_acc": "validation accuracy", "valid_accuracy": "validation accuracy",
}


# Helpers --------------------------------------------------------------------------------------------------------

def metric_label(metric: str) -> str:
    """A readable name for a metric column (``valid_error`` -> ``validation error``)."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def budget_label(budget: int, resource_attr: str = "epoch") -> str:
    """``1 epoch``, ``3 epochs``, ... ."""
    return f"{budget} {resource_attr}{'' if budget == 1 else 's'}"


def _figure(figsize: tuple[float, float] = WIDE) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _plain_log_ticks(ax, which: str) -> None:
    """Log axis labels as plain numbers (0.05, 200) instead of powers of ten, with labelled minor ticks when the
    axis spans few decades; left as powers of ten for very small or large numbers."""
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = min(lo, hi), max(lo, hi)
    if not (lo > 0 and 1e-3 <= lo and hi <= 1e6):
        return
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    decades = np.log10(hi / lo)
    if decades < 3:
        axis.set_minor_locator(LogLocator(base=10, subs=(2, 3, 5) if decades < 1.5 else (2, 5)))
        axis.set_minor_formatter(fmt)
    else:
        axis.set_minor_formatter(NullFormatter())


def save_figure(fig: Figure, out: str | Path, dpi: int = DPI) -> Path:
    """Write a drawn figure as a PNG file (log axes labelled with plain numbers); returns its path."""
    for ax in fig.axes:
        for which in ("x", "y"):
            if (ax.get_xscale() if which == "x" else ax.get_yscale()) == "log":
                _plain_log_ticks(ax, which)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def _no_data(title: str, why: str) -> Figure:
    fig = _figure((7.5, 2.5))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, fontsize="medium")
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", transform=ax.transAxes, wrap=True)
    return fig


def _auto_log(values: Iterable[float] | np.ndarray, ratio: float = 8.0) -> bool:
    """Log scale for positive values spanning more than ``ratio``."""
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > ratio)


def _set_time_axis(ax, scale: TimeAxis, unit: str, times: np.ndarray | None = None) -> None:
    ax.set_xlabel(f"tuner time ({unit}{', log scale' if scale == 'log' else ''})")
    if scale == "log":
        ax.set_xscale("log")
        if times is not None:
            pos = np.asarray(times, dtype=float)
            pos = pos[np.isfinite(pos) & (pos > 0)]
            if len(pos):
                ax.set_xlim(pos.min() / 1.15, pos.max() * 1.15)
    else:
        ax.set_xlim(left=0)


def _metric_axis(ax, metric: str, values: np.ndarray | Sequence[float], log: bool | None, prefix: str = "") -> bool:
    log = _auto_log(values) if log is None else log
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(f"{prefix}{metric_label(metric)}{' (log scale)' if log else ''}")
    return log


def _budget_colors(levels: Sequence[int]) -> dict[int, tuple]:
    cmap = matplotlib.colormaps["viridis"]
    n = len(levels)
    return {b: cmap(0.05 + 0.7 * (i / max(n - 1, 1))) for i, b in enumerate(levels)}


def _truncated(name: str, reverse: bool = False, lo: float = 0.0, hi: float = 0.82):
    """A colormap without its palest end (which is hard to see on white)."""
    colors = matplotlib.colormaps[name](np.linspace(lo, hi, 256))
    return ListedColormap(colors[::-1] if reverse else colors)


def _method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def _legend(ax, n_entries: int, title: str | None = None, **kwargs) -> None:
    """Inside the axes for few entries, outside on the right for many."""
    if n_entries > 5:
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize="small",
                  **kwargs)
    else:
        ax.legend(title=title, fontsize="small", **kwargs)


def _title(exp: Experiment, what: str) -> str:
    return f"{exp.label}: {what}"


# Any-time performance -------------------------------------------------------------------------------------------

def draw_anytime(experiments: Sequence[Experiment], stat: Literal["mean", "median"] = "mean",
                 time_axis: TimeAxis = "log", log_y: bool | None = None, title: str | None = None) -> Figure:
    """Best metric so far against tuner time, one line per method with a band over seeds (experiments of one
    benchmark and metric: see ``group_by_benchmark``).

    The band is the standard error around the mean (``stat="mean"``) or the interquartile range around the
    median (``stat="median"``). Aggregates are exact on the union of the seeds' change points, from the time
    every seed has a result on. A seed leaves the aggregate after its last report; from the first such end the
    line is thin (it then shows fewer seeds than its label counts).
    """
    experiments = list(experiments)
    if not experiments or all(e.results.empty for e in experiments):
        return _no_data(title or "any-time performance", "no reports in these experiments")
    metric, mode = experiments[0].metric, experiments[0].mode
    groups = group_by_method(experiments)
    colors = _method_colors(list(groups))
    fig = _figure()
    ax = fig.add_subplot()
    all_times, all_values = [], []
    any_estimated = any_ended = False
    for method, exps in groups.items():
        trajs = [t for t in (experiment_trajectory(e) for e in exps) if len(t)]
        if not trajs:
            continue
        grid = time_grid(trajs)
        agg = aggregate_trajectories(trajs, grid, stat=stat)
        t = agg["time"].to_numpy()
        estimated = sum(bool(traj["estimated"].iloc[-1]) for traj in trajs)
        label = f"{method} ({len(trajs)} seed{'s' if len(trajs) != 1 else ''}"
        label += f"; {estimated} final incumbent{'s' if estimated != 1 else ''} estimated*)" if estimated else ")"
        all_seeds = agg["n"].to_numpy() == len(trajs)
        ax.plot(t, agg["center"].where(all_seeds), drawstyle="steps-post", color=colors[method], lw=1.8,
                label=label)
        if not all_seeds.all():  # thin where some seeds have ended, so that their absence shows
            ax.plot(t, agg["center"], drawstyle="steps-post", color=colors[method], lw=0.8, label="_ended")
            any_ended = True
        if estimated:  # a star where the line ends: some run's final incumbent is an estimate, not a measurement
            ax.plot(t[-1:], agg["center"].to_numpy()[-1:], ls="", marker="*", ms=12, color=colors[method],
                    markeredgecolor="black", label="_estimated")
            any_estimated = True
        if len(trajs) > 1:
            ax.fill_between(t, agg["lower"], agg["upper"], step="post", color=colors[method], alpha=0.2, lw=0)
        all_times.append(t)
        all_values.append(agg[["center", "lower", "upper"]].to_numpy().ravel())
    values = np.concatenate(all_values) if all_values else np.array([])
    _set_time_axis(ax, time_axis, time_unit(experiments), np.concatenate(all_times) if all_times else None)
    _metric_axis(ax, metric, values, log_y, prefix="best " if mode == "min" else "best (highest) ")
    band = "mean ± standard error" if stat == "mean" else "median and interquartile range"
    ax.set_title(title or f"{experiments[0].benchmark}: best {metric_label(metric)} so far ({band} over seeds)",
                 fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    if any_estimated:  # a legend entry that explains the stars
        ax.plot([], [], ls="", marker="*", ms=12, color="grey", markeredgecolor="black", label=ESTIMATED_NOTE)
    if any_ended:
        ax.plot([], [], color="grey", lw=0.8, label=ENDED_NOTE)
    _legend(ax, len(groups) + any_estimated + any_ended, title="method")
    return fig


# Per-trial curves -----------------------------------------------------------------------------------------------

def draw_error_curves(exp: Experiment, log_y: bool | None = None) -> Figure:
    """The metric per epoch of every trial in one figure, coloured by the trial's last value; best trial in red."""
    res = exp.results
    metric, rattr = exp.metric, exp.resource_attr
    df = res.loc[res[metric].notna(), ["trial_id", rattr, metric]].sort_values(["trial_id", rattr], kind="mergesort")
    if df.empty:
        return _no_data(_title(exp, f"{metric_label(metric)} per {rattr}"), "no reports")
    fig = _figure()
    ax = fig.add_subplot()
    last = df.groupby("trial_id")[metric].last()
    values = df[metric].to_numpy(dtype=float)
    log = _metric_axis(ax, metric, values, log_y)
    norm = LogNorm(last.min(), last.max()) if log and last.min() > 0 and last.max() > last.min() else \
        Normalize(last.min(), max(last.max(), last.min() + 1e-12))
    cmap = _truncated("viridis", reverse=exp.mode == "max")
    segments = [g[[rattr, metric]].to_numpy(dtype=float) for _, g in df.groupby("trial_id", sort=True)]
    lc = LineCollection(segments, cmap=cmap, norm=norm, linewidths=1.0, alpha=0.75)
    lc.set_array(last.sort_index().to_numpy(dtype=float))
    ax.add_collection(lc)
    single = df.groupby("trial_id").filter(lambda g: len(g) == 1)
    if len(single):
        ax.scatter(single[rattr], single[metric], c=single[metric], cmap=cmap, norm=norm, s=10, alpha=0.75)
    best_idx = df[metric].idxmin() if exp.mode == "min" else df[metric].idxmax()
    best_tid = int(df.loc[best_idx, "trial_id"])
    best = df[df["trial_id"] == best_tid]
    best_at = budget_label(int(df.loc[best_idx, rattr]), rattr)
    estimated = exp.has_estimates and res.loc[best_idx, "estimated"] == 1
    ax.plot(best[rattr], best[metric], color="crimson", lw=2.2, marker="o", ms=3,
            label=f"best trial (id {best_tid}: {df.loc[best_idx, metric]:.4g} at {best_at}"
                  + ("; * estimated: the table's surrogate answered)" if estimated else ")"))
    if estimated:
        ax.plot([df.loc[best_idx, rattr]], [df.loc[best_idx, metric]], ls="", marker="*", ms=14, color="crimson",
                markeredgecolor="black", label="_estimated")
    ax.autoscale_view()
    epochs = df[rattr].to_numpy()
    ax.set_xlim(epochs.min() - 0.3, epochs.max() + 0.3)
    if epochs.max() <= 30:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(int(epochs.max()), 15)))
    for b in budget_levels(exp):
        ax.axvline(b, color="grey", lw=0.6, ls=":", zorder=0)
    ax.set_xlabel(f"{rattr} (dotted lines: budget levels)")
    cbar = fig.colorbar(lc, ax=ax, pad=0.01)
    cbar.set_label(f"last reported {metric_label(metric)} of the trial")
    ax.set_title(_title(exp, f"{metric_label(metric)} per {rattr} of the {last.size} trials that reported"),
                 fontsize="medium")
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize="small", loc="outside lower left")
    return fig


# Hyperparameter scatter -----------------------------------------------------------------------------------------

def _is_log_param(exp: Experiment, name: str, values: np.ndarray) -> bool:
    desc = str((exp.metadata.get("config_space") or {}).get(name, ""))
    if "log" in desc.lower():
        return True
    return _auto_log(values, ratio=1000.0)


def scatter_axes(exp: Experiment, x: str | None = None, y: str | None = None) -> dict | None:
    """What the hyperparameter scatter shows: a dict with per-trial ``x``, ``y`` arrays, labels and log flags.

    MNIST convnet default: learning rate against total filters (sum of ``n_filters_i`` for i <= n_conv_layers).
    Otherwise two numeric config columns (``x``/``y`` names without the ``config_`` prefix pick them; learning
    rates first). None when fewer than two numeric hyperparameters vary.
    """
    trials = exp.trials
    cols = {c[len("config_"):]: c for c in trials.columns if c.startswith("config_")}
    if x is None and y is None and {"learning_rate", "n_conv_layers", "n_filters_1"} <= set(cols):
        layers = pd.to_numeric(trials[cols["n_conv_layers"]], errors="coerce").to_numpy(dtype=float)
        total = np.zeros(len(trials))
        i = 1
        while f"n_filters_{i}" in cols:
            f = pd.to_numeric(trials[cols[f"n_filters_{i}"]], errors="coerce").fillna(0).to_numpy(dtype=float)
            total += np.where(layers >= i, f, 0.0)
            i += 1
        lr = pd.to_numeric(trials[cols["learning_rate"]], errors="coerce").to_numpy(dtype=float)
        return {"x": lr, "y": total, "x_name": "learning_rate", "y_name": "total filters",
                "x_label": "learning rate", "y_label": f"total filters (n_filters_1..{i - 1}, layers used only)",
                "x_log": True, "y_log": _auto_log(total, ratio=10.0)}
    numeric = {}
    for name, col in cols.items():
        v = pd.to_numeric(trials[col], errors="coerce")
        if v.notna().all() and v.nunique() > 1:
            numeric[name] = v.to_numpy(dtype=float)
    if x is not None and x not in numeric or y is not None and y not in numeric:
        return None
    order = sorted(numeric, key=lambda n: (not ("learning_rate" in n or n in ("lr", "eta")), list(cols).index(n)))
    picks = [n for n in (x, y) if n is not None]
    picks += [n for n in order if n not in picks][:2 - len(picks)]
    if len(picks) < 2:
        return None
    xn, yn = picks
    return {"x": numeric[xn], "y": numeric[yn], "x_name": xn, "y_name": yn,
            "x_label": xn.replace("_", " "), "y_label": yn.replace("_", " "),
            "x_log": _is_log_param(exp, xn, numeric[xn]), "y_log": _is_log_param(exp, yn, numeric[yn])}


def _size_scale(values: np.ndarray, mode: str, log: bool, s_min: float = 12.0, s_max: float = 260.0):
    """A function mapping metric values to marker areas: better values get bigger markers."""
    f = np.log if log else (lambda v: np.asarray(v, dtype=float))
    lo, hi = float(np.nanmin(f(values))), float(np.nanmax(f(values)))
    span = hi - lo if hi > lo else 1.0

    def size(v):
        z = (np.asarray(f(np.asarray(v, dtype=float))) - lo) / span
        z = 1 - z if mode == "min" else z
        return s_min + (s_max - s_min) * np.clip(z, 0, 1)
    return size


def _nice_levels(values: np.ndarray, log: bool, n: int = 4) -> list[float]:
    qs = np.nanquantile(values, np.linspace(0, 1, n))
    out = []
    for q in qs:
        r = float(f"{q:.2g}") if q != 0 else 0.0
        if r not in out:
            out.append(r)
    return out


def draw_hyperparameter_scatter(exp: Experiment, x: str | None = None,
                                y: str | None = None) -> Figure:
    """Two hyperparameters of every trial, marker size by the trial's last metric (better = bigger), colour by
    epochs reached; the best trial is starred."""
    axes = scatter_axes(exp, x, y)
    metric = exp.metric
    if axes is None:
        return _no_data(_title(exp, "hyperparameters"), "fewer than two numeric hyperparameters vary")
    trials = exp.trials
    final = trials["last_metric"].to_numpy(dtype=float)
    ok = np.isfinite(final) & np.isfinite(axes["x"]) & np.isfinite(axes["y"])
    if not ok.any():
        return _no_data(_title(exp, "hyperparameters"), "no trial has reported")
    xs, ys, vals = axes["x"][ok], axes["y"][ok], final[ok]
    epochs = trials["epochs"].to_numpy()[ok]
    log_size = _auto_log(vals, ratio=5.0)
    size = _size_scale(vals, exp.mode, log_size)
    fig = _figure((8.4, 5.2))
    ax = fig.add_subplot()
    levels = sorted(set(int(e) for e in epochs))
    if len(levels) <= 6:
        colors = _budget_colors(levels)
        color_handles = []
        for b in levels:
            m = epochs == b
            ax.scatter(xs[m], ys[m], s=size(vals[m]), color=colors[b], alpha=0.65, edgecolors="black",
                       linewidths=0.4)
            color_handles.append(Line2D([], [], ls="", marker="o", markersize=8, color=colors[b], alpha=0.8,
                                        markeredgecolor="black", markeredgewidth=0.4,
                                        label=budget_label(b, exp.resource_attr) + f" ({int(m.sum())})"))
        fig.legend(handles=color_handles, title=f"{exp.resource_attr}s reached\n(trials)", fontsize="small",
                   title_fontsize="small", loc="outside right upper")
    else:
        bounds = np.arange(min(levels) - 0.5, max(levels) + 1.5)
        norm = BoundaryNorm(bounds, 256)
        sc = ax.scatter(xs, ys, s=size(vals), c=epochs, cmap="viridis", norm=norm, alpha=0.65,
                        edgecolors="black", linewidths=0.4)
        fig.colorbar(sc, ax=ax, pad=0.01).set_label(f"{exp.resource_attr}s reached")
    ib = int(np.nanargmin(vals) if exp.mode == "min" else np.nanargmax(vals))
    ax.scatter([xs[ib]], [ys[ib]], marker="*", s=320, facecolors="none", edgecolors="crimson", linewidths=1.5)
    handles = [Line2D([], [], ls="", marker="o", color="grey", alpha=0.6, markeredgecolor="black",
                      markersize=float(np.sqrt(size(v))), label=f"{v:g}") for v in _nice_levels(vals, log_size)]
    handles.append(Line2D([], [], ls="", marker="*", markersize=14, markerfacecolor="none",
                          markeredgecolor="crimson", label=f"best: {vals[ib]:.4g}"))
    fig.legend(handles=handles, title=f"last {metric_label(metric)}", fontsize="small", title_fontsize="small",
               loc="outside right lower", labelspacing=1.3, borderpad=0.9)
    if axes["x_log"]:
        ax.set_xscale("log")
    if axes["y_log"]:
        ax.set_yscale("log")
    ax.set_xlabel(axes["x_label"] + (" (log scale)" if axes["x_log"] else ""))
    ax.set_ylabel(axes["y_label"] + (" (log scale)" if axes["y_log"] else ""))
    better = "smaller" if exp.mode == "min" else "larger"
    ax.set_title(_title(exp, f"{len(xs)} trials; bigger marker = {better} last {metric_label(metric)}"),
                 fontsize="medium")
    ax.grid(True, alpha=0.3)
    return fig


# Per-budget plots -----------------------------------------------------------------------------------------------

def draw_finished_over_time(exp: Experiment, time_axis: TimeAxis = "log") -> Figure:
    """Cumulative number of trials that reached each budget level against tuner time."""
    levels = budget_levels(exp)
    reach = budget_reach_times(exp, levels)
    title = _title(exp, f"trials that reached each budget ({exp.resource_attr}s)")
    if reach.empty:
        return _no_data(title, "no reports")
    fig = _figure()
    ax = fig.add_subplot()
    colors = _budget_colors(levels)
    for b in levels:
        t = reach.loc[reach["budget"] == b, "time"].to_numpy()
        if not len(t):
            continue
        count = np.arange(1, len(t) + 1)
        ax.step(np.r_[t, reach["time"].max()], np.r_[count, count[-1]], where="post", color=colors[b], lw=1.8,
                label=f"{budget_label(b, exp.resource_attr)} ({len(t)} trials)")
    _set_time_axis(ax, time_axis, exp.time_unit, reach["time"].to_numpy())
    ax.set_ylabel("trials that reached the budget (cumulative)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    _legend(ax, len(levels), title="budget")
    return fig


def applies_rank_correlation(exp: Experiment) -> bool:
    """At least two budget levels, each pair of neighbours shared by three trials."""
    levels = budget_levels(exp)
    if len(levels) < 2:
        return False
    _, n = rank_correlation_matrix(exp.results, exp.metric, levels, exp.resource_attr)
    return bool((n.to_numpy()[np.triu_indices(len(levels), 1)] >= 3).any())


def draw_rank_correlation(exp: Experiment) -> Figure:
    """Spearman rank correlation of the metric between budgets, over the trials evaluated at both (a matrix)."""
    levels = budget_levels(exp)
    title = _title(exp, f"rank correlation of {metric_label(exp.metric)} between budgets")
    if len(levels) < 2:
        return _no_data(title, "fewer than two budget levels")
    rho, n = rank_correlation_matrix(exp.results, exp.metric, levels, exp.resource_attr)
    k = len(levels)
    size = min(2.6 + 1.0 * k, 9.0)
    fig = _figure((size + 1.8, size))
    ax = fig.add_subplot()
    values = rho.to_numpy(dtype=float)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    counts = n.to_numpy()
    for i in range(k):
        for j in range(k):
            r = values[i, j]
            text = f"ρ = {r:.2f}\nn = {counts[i, j]}" if np.isfinite(r) else f"ρ n/a\nn = {counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize="medium" if k <= 4 else "x-small",
                    color="white" if np.isfinite(r) and abs(r) > 0.6 else "black")
    labels = [budget_label(b, exp.resource_attr) for b in levels]
    ax.set_xticks(range(k), labels, rotation=30 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("budget")
    ax.set_ylabel("budget")
    fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02).set_label("Spearman ρ (trials evaluated at both budgets)")
    ax.set_title(title, fontsize="medium")
    return fig


def draw_losses_over_time(exp: Experiment, time_axis: TimeAxis = "log",
                          log_y: bool | None = None) -> Figure:
    """The metric of every report at each budget level against its tuner time, one colour per budget, with the
    best value so far at that budget as a step line (as HpBandSter's ``losses_over_time``)."""
    levels = budget_levels(exp)
    df = reports_at_budgets(exp.results, exp.metric, levels, exp.resource_attr)
    title = _title(exp, f"{metric_label(exp.metric)} of the reports at each budget")
    if df.empty:
        return _no_data(title, "no reports at the budget levels")
    fig = _figure()
    ax = fig.add_subplot()
    colors = _budget_colors(levels)
    end = float(exp.results["tuner_time"].max())
    for b in levels:
        d = df[df["budget"] == b]
        if d.empty:
            continue
        ax.scatter(d["tuner_time"], d[exp.metric], s=14, color=colors[b], alpha=0.6, lw=0,
                   label=f"{budget_label(b, exp.resource_attr)} ({len(d)} reports)")
        traj = incumbent_trajectory(d, exp.metric, exp.mode, resource_attr=exp.resource_attr)
        ax.step(np.r_[traj["time"], end], np.r_[traj["best"], traj["best"].iloc[-1]], where="post",
                color=colors[b], lw=1.5)
    _set_time_axis(ax, time_axis, exp.time_unit, df["tuner_time"].to_numpy())
    _metric_axis(ax, exp.metric, df[exp.metric].to_numpy(), log_y)
    ax.set_title(title + "\n(points: reports; lines: best so far at that budget)", fontsize="medium")
    ax.grid(True, alpha=0.3)
    _legend(ax, len(levels), title="budget")
    return fig


def applies_model_based(exp: Experiment) -> bool:
    """Whether trials.csv marks model-based picks (BOHB) and some trial has reported."""
    return exp.has_model_based and not exp.results.empty


def draw_model_based_histograms(exp: Experiment, log_x: bool | None = None) -> Figure:
    """Per budget, histograms of the metric of model-based against random picks (BOHB)."""
    title = _title(exp, f"{metric_label(exp.metric)} of model-based vs random picks")
    if not exp.has_model_based:
        return _no_data(title, "trials.csv does not mark model-based picks")
    levels = budget_levels(exp)
    df = reports_at_budgets(exp.results, exp.metric, levels, exp.resource_attr)
    kinds = exp.trials.set_index("trial_id")["model_based"]
    df = df.assign(model_based=df["trial_id"].map(kinds)).dropna(subset=["model_based"])
    levels = [b for b in levels if (df["budget"] == b).any()]
    if not levels:
        return _no_data(title, "no reports at the budget levels")
    ncols = min(len(levels), 3)
    nrows = -(-len(levels) // ncols)
    fig = _figure((3.7 * ncols + 0.6, 3.3 * nrows + 0.6))
    axs = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, b in zip(axs, levels):
        d = df[df["budget"] == b]
        vals = d[exp.metric].to_numpy(dtype=float)
        log = _auto_log(vals, ratio=3.0) if log_x is None else log_x
        n_bins = int(np.clip(np.sqrt(len(vals)) + 3, 6, 15))
        lo, hi = vals.min(), vals.max()
        if hi <= lo:
            bins = np.linspace(lo - 0.5 * abs(lo or 1), hi + 0.5 * abs(hi or 1), 3)
        else:
            bins = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
        mb = d.loc[d["model_based"].astype(bool), exp.metric]
        rd = d.loc[~d["model_based"].astype(bool), exp.metric]
        ax.hist([rd, mb], bins=bins, color=["tab:grey", "tab:orange"], alpha=0.85,
                label=[f"random ({len(rd)})", f"model-based ({len(mb)})"])
        if log:
            ax.set_xscale("log")
        ax.set_title(budget_label(b, exp.resource_attr), fontsize="medium")
        ax.set_xlabel(metric_label(exp.metric) + (" (log scale)" if log else ""))
        ax.set_ylabel("trials")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="x-small")
    for ax in axs[len(levels):]:
        ax.set_visible(False)
    fig.suptitle(title + " (per budget)")
    return fig


# Worker use -----------------------------------------------------------------------------------------------------

def _drop_glitches(t: np.ndarray, r: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop steps shorter than ``tol`` (a trial starting a moment before the last one's final report is logged)
    from a right-continuous step function, for drawing."""
    dur = np.r_[np.diff(t), np.inf]
    keep = dur >= tol
    keep[0] = True
    t, r = t[keep], r[keep]
    same = np.r_[False, r[1:] == r[:-1]]
    return t[~same], r[~same]


def draw_concurrency(exp: Experiment) -> Figure:
    """Running trials over (linear) tuner time, with the number of workers as a reference line."""
    conc = concurrency(exp)
    title = _title(exp, "running trials (how busy the workers were)")
    if conc.empty:
        return _no_data(title, "no trial start and report times")
    fig = _figure((8.0, 4.2))
    ax = fig.add_subplot()
    t = np.r_[0.0, conc["time"].to_numpy()]
    r = np.r_[0, conc["running"].to_numpy()]
    t_draw, r_draw = _drop_glitches(t, r, tol=(t[-1] - t[0]) / 1000)
    ax.fill_between(t_draw, r_draw, step="post", color="tab:blue", alpha=0.3, lw=0)
    ax.step(t_draw, r_draw, where="post", color="tab:blue", lw=1.2, label="running trials")
    n_workers = exp.n_workers
    note = ""
    if n_workers:
        ax.axhline(n_workers, color="crimson", ls="--", lw=1.2, label=f"n_workers = {n_workers}")
        note = f"; mean use {worker_use(exp):.0%} of the workers"
    ax.set_xlim(0, t[-1] * 1.01 if t[-1] > 0 else 1)
    ax.set_ylim(0, max(r_draw.max(), n_workers or 0) * 1.25 + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"tuner time ({exp.time_unit})")
    ax.set_ylabel("running trials")
    ax.set_title(f"{title}{note}\n(each trial from its start or resume to its last report before a pause)",
                 fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper right", ncols=2)
    return fig
