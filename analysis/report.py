"""Write every figure that applies to some tuning results, and a markdown summary.

Usage: python analysis/report.py RESULTS_DIR [RESULTS_DIR ...] --out DIR [--target X] [--time-axis linear|log]
       [--stat mean|median] [--dpi N]
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: do not let analysis/*.py shadow top-level modules
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

import argparse  # noqa: E402
import re  # noqa: E402
from typing import Literal, Sequence  # noqa: E402

from analysis.load import Experiment, ResultsFolderError, group_by_benchmark, load_experiments  # noqa: E402

# analysis.plots (matplotlib) is imported when needed, so that --help and user errors answer fast.
DEFAULT_DPI = 120

DESCRIPTION = """\
Read one or many results folders (results.csv, trials.csv, metadata.json as written by the launchers) and write
PNG figures and summary.md to --out. A RESULTS_DIR may be one experiment's folder or a folder holding several
(searched recursively). Experiments of the same benchmark and settings (dataset, backend, workers, budget, table
seed, stop criterion) are compared across methods (the scheduler in metadata.json), with seeds aggregated; each
such group has its own section and any-time plot.

Written:
  anytime.png                      best metric so far against time, per method, band over seeds
                                   (anytime_<group>.png when there are several groups)
  <experiment>/error_curves.png    metric per epoch of every trial
  <experiment>/hp_scatter.png      two hyperparameters, marker size by the trial's last metric
  <experiment>/finished_per_budget.png  trials that reached each budget over time
  <experiment>/rank_correlation.png     Spearman rank correlation between budgets
  <experiment>/losses_over_time.png     metric at each budget against time
  <experiment>/model_based_hist.png     model-based vs random picks per budget (BOHB only)
  <experiment>/concurrency.png          running trials over time against the number of workers
  summary.md                       best configuration per experiment; per method the final metric (mean and
                                   standard error over seeds) and the time to reach a target; where reported,
                                   the incumbents' test metric, and * marking incumbents a table estimated
Figures that do not apply (e.g. model-based picks for random search) are not written.
"""


def _slug(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text).strip("_") or "experiment"


def experiment_figures(exp: Experiment, folder: Path, time_axis: Literal["linear", "log"] = "log",
                       dpi: int = DEFAULT_DPI) -> list[Path]:
    """Write the per-experiment figures that apply to ``exp`` into ``folder``; return their paths."""
    from analysis import plots
    from analysis.trajectories import budget_levels, budget_reach_times, reports_at_budgets
    from analysis.workers import concurrency
    save = plots.save_figure
    written: list[Path] = []
    if exp.results[exp.metric].notna().any():
        written.append(save(plots.draw_error_curves(exp), folder / "error_curves.png", dpi))
        axes = plots.scatter_axes(exp)
        if axes is not None and exp.trials["last_metric"].notna().any():
            written.append(save(plots.draw_hyperparameter_scatter(exp), folder / "hp_scatter.png", dpi))
        levels = budget_levels(exp)
        if not budget_reach_times(exp, levels).empty:
            written.append(save(plots.draw_finished_over_time(exp, time_axis), folder / "finished_per_budget.png", dpi))
        if plots.applies_rank_correlation(exp):
            written.append(save(plots.draw_rank_correlation(exp), folder / "rank_correlation.png", dpi))
        if not reports_at_budgets(exp.results, exp.metric, levels, exp.resource_attr).empty:
            written.append(save(plots.draw_losses_over_time(exp, time_axis), folder / "losses_over_time.png", dpi))
        if plots.applies_model_based(exp):
            written.append(save(plots.draw_model_based_histograms(exp), folder / "model_based_hist.png", dpi))
    if not concurrency(exp).empty:
        written.append(save(plots.draw_concurrency(exp), folder / "concurrency.png", dpi))
    return written


def write_report(experiments: Sequence[Experiment], out: Path, target: float | None = None,
                 time_axis: Literal["linear", "log"] = "log", stat: Literal["mean", "median"] = "mean",
                 dpi: int = DEFAULT_DPI) -> list[Path]:
    """Write all figures that apply and summary.md under ``out``; return the written paths (summary first)."""
    from analysis import plots
    from analysis.summary import write_summary
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    groups = group_by_benchmark(experiments)
    for bench, exps in groups.items():
        if not any(e.results[e.metric].notna().any() for e in exps):
            continue
        name = "anytime.png" if len(groups) == 1 else f"anytime_{_slug(bench)}.png"
        written.append(plots.save_figure(plots.draw_anytime(exps, stat=stat, time_axis=time_axis), out / name, dpi))
    used: set[str] = set()
    for exp in experiments:
        sub = _slug(exp.label)
        while sub in used:
            sub += "_"
        used.add(sub)
        written += experiment_figures(exp, out / sub, time_axis, dpi)
    summary = write_summary(experiments, out / "summary.md", target,
                            figures=[p.relative_to(out) for p in written])
    return [summary] + written


def _print_written(out: Path, written: list[Path], experiments: Sequence[Experiment]) -> None:
    print(f"Wrote {len(written)} files under {out}/:")
    top = [p for p in written if p.parent == out]
    for p in top:
        print(f"  {p.name}")
    folders: dict[str, list[str]] = {}
    for p in written:
        if p.parent != out:
            folders.setdefault(str(p.parent.relative_to(out)), []).append(p.stem)
    for folder, names in folders.items():
        print(f"  {folder}/ ({len(names)}: {', '.join(names)})")
    bare = [e.label for e in experiments if not any(p.parent.name == _slug(e.label) for p in written)]
    if bare:
        print(f"No figures for {', '.join(bare)} (no reports yet).")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a user error, with one sentence on stderr)."""
    parser = argparse.ArgumentParser(prog="python analysis/report.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR",
                        help="an experiment's results folder, or a folder holding several")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the figures and summary.md")
    parser.add_argument("--target", type=float, default=None, metavar="X",
                        help="metric value whose time to reach is reported per method (default: the median over "
                             "methods of their mean final value)")
    parser.add_argument("--time-axis", choices=("linear", "log"), default="log",
                        help="scale of the time axes (default: log; the concurrency plot is always linear)")
    parser.add_argument("--stat", choices=("mean", "median"), default="mean",
                        help="any-time plot: mean with standard error (default) or median with quartiles")
    parser.add_argument("--dpi", type=int, default=DEFAULT_DPI,
                        help=f"resolution of the PNG files in dots per inch (default: {DEFAULT_DPI})")
    args = parser.parse_args(argv)
    if args.dpi <= 0:
        parser.error(f"--dpi must be a positive number, not {args.dpi}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file; expected a folder (it is created if missing).", file=sys.stderr)
        return 2
    try:
        experiments = load_experiments(args.results_dirs)
    except ResultsFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    written = write_report(experiments, out, args.target, args.time_axis, args.stat, args.dpi)
    _print_written(out, written, experiments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
