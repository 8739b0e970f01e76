"""The report of a method comparison: the any-time plot (band over seeds) and the summary, without the per-run figures
that ``analysis/report.py`` also draws (seven per run would cost a comparison of 60 runs minutes)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping, Sequence

from analysis.load import Experiment, group_by_benchmark


def write_comparison_report(experiments: Sequence[Experiment], out: Path, target: float | None = None,
                            time_axis: Literal["linear", "log"] = "log", dpi: int = 120,
                            failed: Mapping[str, Sequence[str]] | None = None) -> list[Path]:
    """Write ``anytime.png`` (``anytime_<benchmark>.png`` for several benchmarks) and ``summary.md`` (per method the
    final metric and its incumbents' test metric, mean ± standard error over seeds, and the time to reach
    ``target``; first, per method, its ``failed`` runs) under ``out``; return the written paths, the summary
    first."""
    from analysis import plots
    from analysis.summary import write_summary

    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    groups = group_by_benchmark(experiments)
    for bench, exps in groups.items():
        if not any(e.results[e.metric].notna().any() for e in exps):
            continue
        name = "anytime.png" if len(groups) == 1 else f"anytime_{bench.replace('/', '_')}.png"
        figures.append(plots.save_figure(plots.draw_anytime(exps, time_axis=time_axis), out / name, dpi))
    summary = write_summary(experiments, out / "summary.md", target, figures=[p.relative_to(out) for p in figures],
                            failed=failed)
    return [summary, *figures]
