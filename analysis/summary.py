"""The markdown summary: best configuration per experiment, and per method the final metric and time to a target."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.load import CONFIG_PREFIX, Experiment, group_by_benchmark, time_unit
from analysis.trajectories import final_values, times_to_target


BEST_COLUMNS = ["experiment", "method", "seed", "metric", "value", "test", "estimated", "epoch", "trial_id",
                "tuner_time", "config"]
ESTIMATED_NOTE = ("Marked *: estimated; the table never measured this cell, so its surrogate answered and the "
                  "value is a prediction.")


def best_configuration(exp: Experiment) -> dict | None:
    """The best report of an experiment (by mode; earliest on ties): value, epoch, trial id, time and config.

    The metric chooses it; ``test`` is the same report's test metric (NaN where none was reported) and
    ``estimated`` whether a tabulated benchmark's surrogate answered it instead of a measurement.
    """
    res = exp.results[exp.results[exp.metric].notna()]
    if res.empty:
        return None
    values = res[exp.metric].to_numpy(dtype=float)
    i = int(np.argmin(values) if exp.mode == "min" else np.argmax(values))  # results are sorted by time
    row = res.iloc[i]
    config = {c[len(CONFIG_PREFIX):]: _plain(row[c]) for c in exp.config_columns}
    test = float(row[exp.test_metric]) if exp.test_metric else float("nan")
    estimated = exp.has_estimates and bool(row["estimated"] == 1)
    return {"experiment": exp.label, "method": exp.method, "seed": exp.seed, "metric": exp.metric,
            "value": float(row[exp.metric]), "test": test, "estimated": estimated,
            "epoch": int(row[exp.resource_attr]), "trial_id": int(row["trial_id"]),
            "tuner_time": float(row["tuner_time"]), "config": config}


def best_configurations(experiments: Iterable[Experiment]) -> pd.DataFrame:
    """One row per experiment with its best report (see ``best_configuration``); experiments without reports
    are left out."""
    rows = [b for b in (best_configuration(e) for e in experiments) if b is not None]
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


def default_target(experiments: Sequence[Experiment]) -> float:
    """The median over methods of each method's mean final incumbent value (NaN without reports)."""
    finals = final_values(experiments)
    per_method = finals.groupby("method", sort=False)["final"].mean().dropna()
    return float(per_method.median()) if len(per_method) else float("nan")


def _se(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def method_summary(experiments: Sequence[Experiment], target: float) -> pd.DataFrame:
    """Per method: seeds, mean and standard error of the final incumbent and of its test value (over the seeds
    that reported one: ``n_test`` counts them), how many final incumbents were estimated, and the time to reach
    ``target`` over the seeds that reached it (``reached`` counts them). A run without a report is no seed: it counts
    in ``n_silent``."""
    finals = final_values(experiments)
    ttt = times_to_target(experiments, target)
    rows = []
    for method, f in finals.groupby("method", sort=False):
        silent = int(f["final"].isna().sum())
        f = f[f["final"].notna()]
        t = ttt.loc[(ttt["method"] == method) & ttt["experiment"].isin(f["experiment"]), "time"]
        rows.append({"method": method, "n_seeds": len(f), "n_silent": silent, "final_mean": float(f["final"].mean()),
                     "final_se": _se(f["final"]), "n_test": int(f["test"].notna().sum()),
                     "test_mean": float(f["test"].mean()), "test_se": _se(f["test"]),
                     "n_estimated": int(f["estimated"].sum()), "reached": int(t.notna().sum()),
                     "time_mean": float(t.mean()) if t.notna().any() else float("nan"), "time_se": _se(t)})
    return pd.DataFrame(rows, columns=["method", "n_seeds", "n_silent", "final_mean", "final_se", "n_test",
                                       "test_mean", "test_se", "n_estimated", "reached", "time_mean", "time_se"])


def _plain(value: object) -> object:
    """numpy scalars to Python ones."""
    return value.item() if hasattr(value, "item") else value


def _fmt(x: object, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (float, np.floating)):
        text = f"{x:.{digits}g}"
        if "e" in text and 1e-4 <= abs(x) < 1e9:  # 3.8e+02 -> 380
            text = f"{float(text):f}".rstrip("0").rstrip(".")
        return text
    return str(x)


def _pm(mean: float, se: float) -> str:
    """``mean ± se`` (just the mean when there is no standard error)."""
    return _fmt(mean) if math.isnan(se) else f"{_fmt(mean)} ± {_fmt(se, 2)}"


def _test_cell(r: pd.Series) -> str:
    """The test value's mean ± se, followed by the seeds it is over where some seeds reported none."""
    text = _pm(r["test_mean"], r["test_se"])
    return text if r["n_test"] in (0, r["n_seeds"]) else f"{text} ({r['n_test']}/{r['n_seeds']})"


def _marked(value: float, estimated: bool) -> str:
    """A value with ``*`` where it is an estimate (see ``ESTIMATED_NOTE``)."""
    return _fmt(value) + ("*" if estimated else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _config_text(config: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in config.items())


def noise_note(experiments: Sequence[Experiment], metric: str) -> list[str]:
    """What differences the benchmark's table resolves, from the noise its runs recorded (largest if they differ)."""
    recorded = [e.metadata.get("table_noise") for e in experiments]
    recorded = [n for n in recorded if n]
    noises = [n for n in recorded if n.get("answer_se") is not None]
    if not noises:
        return ["", f"The table holds one training seed per cell, so it cannot measure the noise of its {metric}: "
                    "a difference between methods may be the table's noise rather than a result (its card says "
                    "what is known)."] if recorded else []
    n = max(noises, key=lambda n: n["answer_se"])
    if n["seeds_per_answer"] == 1:
        answers = "one seed"
    else:
        answers = f"the mean of {n['seeds_per_answer']} seeds; one seed's standard deviation {_fmt(n['seed_sd'])}"
    which = " (the noisiest of these runs' settings)" if len({x["answer_se"] for x in noises}) > 1 else ""
    return ["", f"The table's {metric} is a measurement with noise, estimated from its seeds: each answer "
                f"({answers}) has a standard error of {_fmt(n['answer_se'])}{which}. Answers closer than "
                f"{_fmt(2 * 2 ** 0.5 * n['answer_se'])} (twice the standard error of a difference) are not told "
                "apart by the table, so neither is a difference between methods smaller than that, however small "
                "their standard errors over seeds."]


def summary_markdown(experiments: Sequence[Experiment], target: float | None = None,
                     figures: Sequence[str | Path] = (), failed: Mapping[str, Sequence[str]] | None = None) -> str:
    """The summary as markdown: per group of comparable runs (``group_by_benchmark``), the best configuration of each
    experiment and a table per method.

    ``target`` applies to every group; by default each group gets the median of its methods' mean final
    values. ``figures`` (paths relative to the summary) are listed at the end. ``failed``: per method, the names of
    its runs that failed and are not among ``experiments`` (a comparison's), said first.
    """
    lines = ["# Tuning results summary", ""]
    for method, names in (failed or {}).items():
        asked = len(names) + sum(e.method == method for e in experiments)
        lines += [f"{len(names)} of {asked} {method} runs failed, not counted: {', '.join(names)}.", ""]
    groups = group_by_benchmark(experiments)
    for bench, exps in groups.items():
        metric, mode = exps[0].metric, exps[0].mode
        unit = time_unit(exps)
        lines += [f"## {bench}", "",
                  f"Metric `{metric}` ({'lower' if mode == 'min' else 'higher'} is better); "
                  f"{len(exps)} experiment{'s' if len(exps) != 1 else ''}; times in {unit}.", ""]
        best = best_configurations(exps)
        test = next((e.test_metric for e in exps if e.test_metric), None)
        estimates = any(e.has_estimates for e in exps)
        lines += ["### Best configuration per experiment", ""]
        if test:
            lines += [f"The {metric} chooses each run's incumbent; `{test}` is the same report's test value, which "
                      "only reports how that choice does.", ""]
        rows = []
        for exp in exps:
            b = best[best["experiment"] == exp.label]
            n_trials = len(exp.trials)
            status = exp.status
            if b.empty:
                rows.append([exp.label, exp.method, _fmt(exp.seed), "–", *(["–"] if test else []), "–", "–", "–",
                             str(n_trials), status, ""])
                continue
            r = b.iloc[0]
            rows.append([exp.label, exp.method, _fmt(exp.seed), _marked(r["value"], r["estimated"]),
                         *([_fmt(r["test"])] if test else []), str(r["epoch"]), str(r["trial_id"]),
                         _fmt(r["tuner_time"]), str(n_trials), status, _config_text(r["config"])])
        lines += _table(["experiment", "method", "seed", f"best {metric}", *([test] if test else []),
                         exps[0].resource_attr, "trial", f"time ({unit})", "trials", "status", "configuration"], rows)
        if best["estimated"].any():
            lines += ["", ESTIMATED_NOTE]
        if not best.empty:
            i = int(best["value"].idxmin() if mode == "min" else best["value"].idxmax())
            r = best.loc[i]
            test_text = f" ({test} {_fmt(r['test'])})" if test else ""
            lines += ["", f"Best overall: {metric} = {_marked(r['value'], r['estimated'])}{test_text} in "
                          f"`{r['experiment']}` (trial {r['trial_id']}, {exps[0].resource_attr} {r['epoch']}): "
                          f"{_config_text(r['config'])}."]
        if best.empty:
            lines += ["", "No experiment of this benchmark has reported yet.", ""]
            continue
        if target is None:
            tgt = default_target(exps)
            note = (f"derived from the data as the median over methods of their mean final {metric} "
                    f"(choose another with --target)")
        else:
            tgt = float(target)
            note = "as given"
        summary = method_summary(exps, tgt)
        lines += ["", "### Per method", "",
                  f"Final {metric}: the best value of each run, mean ± standard error over seeds"
                  + (f"; `{test}`: the test value of those incumbents, over the seeds that reported one (their count "
                     "in parentheses where that is not all)" if test else "")
                  + ("; estimated: runs whose final incumbent the table's surrogate answered" if estimates else "")
                  + ".", "",
                  f"Target: {metric} {'≤' if mode == 'min' else '≥'} {_fmt(tgt)}, {note}. Time to target: the "
                  f"first time the best value so far reached it, mean ± standard error over the seeds that did.", ""]
        rows = []
        for _, r in summary.iterrows():
            rows.append([r["method"], str(r["n_seeds"]), _pm(r["final_mean"], r["final_se"]),
                         *([_test_cell(r)] if test else []),
                         *([f"{r['n_estimated']}/{r['n_seeds']}"] if estimates else []),
                         f"{r['reached']}/{r['n_seeds']}",
                         _pm(r["time_mean"], r["time_se"]) if r["reached"] else "not reached"])
        lines += _table(["method", "seeds", f"final {metric}", *([f"final {test}"] if test else []),
                         *(["estimated"] if estimates else []), "reached target", f"time to target ({unit})"], rows)
        lines += noise_note(exps, metric)
        # A run that did not finish counts with the best value it reached; the reader should know which ones did.
        unfinished = [f"`{e.label}` ({e.status if e.status != '?' else 'no status recorded'})" for e in exps
                      if e.status != "finished" and e.label in set(best["experiment"])]
        if unfinished:
            lines += ["", f"Counted as seeds with the best value they reached, though they did not finish: "
                          f"{', '.join(unfinished)}."]
        silent = [f"{r['method']} {r['n_silent']}" for _, r in summary.iterrows() if r["n_silent"]]
        if silent:
            lines += ["", f"Runs without any report of {metric}, not counted as seeds: {', '.join(silent)}."]
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"- [{Path(f).as_posix()}]({Path(f).as_posix()})" for f in figures] + [""]
    return "\n".join(lines)


def write_summary(experiments: Sequence[Experiment], path: str | Path, target: float | None = None,
                  figures: Sequence[str | Path] = (), failed: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write ``summary_markdown`` to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(experiments, target, figures, failed))
    return path
