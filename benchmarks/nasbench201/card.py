"""The card of a table made by `generate_table`: how it was trained, its cost and coverage, and what it can resolve.

`python -m benchmarks.nasbench201.generate_table build` writes it beside the table (`<dataset>.md`), so the card
always describes the table it sits next to. Every figure is computed from the table (the tests recompute them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .encoding import index_to_string, working_mask
from .table import NB201Table


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(x, y).statistic) if len(x) > 2 else float("nan")


def working_rows(table: NB201Table) -> np.ndarray:
    """Rows of the working cells (a path from input to output): the degenerate ones would inflate correlations."""
    return working_mask(table.archs)


def answer(table: NB201Table, metric: str = "valid_error", epoch: int | None = None) -> np.ndarray:
    """The table's answer per row (the mean over seeds) at `epoch` (default: the last)."""
    values = np.nanmean(table.array(metric), axis=1)
    return values[:, (epoch or table.n_epochs) - 1]


def final_seed_pairs(table: NB201Table, metric: str = "valid_error") -> tuple[np.ndarray, np.ndarray] | None:
    """The final `metric` of the first two seeds over the working rows that have both; None with one seed."""
    if len(table.seeds) < 2:
        return None
    per_seed = table.array(metric)[working_rows(table)][:, :2, -1]
    both = ~np.isnan(per_seed).any(axis=1)
    return per_seed[both, 0], per_seed[both, 1]


def seed_noise(table: NB201Table, metric: str = "valid_error") -> tuple[float, int] | None:
    """One seed's noise in the final `metric`: the standard deviation of the difference between the first two seeds
    over the working rows that have both, divided by sqrt(2); and how many rows gave it. None with fewer than two
    seeds or three such rows."""
    pairs = final_seed_pairs(table, metric)
    if pairs is None or len(pairs[0]) < 3:
        return None
    a, b = pairs
    return float(np.std(a - b, ddof=1) / np.sqrt(2)), len(a)


def figures(table: NB201Table) -> dict[str, float]:
    """What the table can resolve, over its working rows: rank correlations and the noise of an answer."""
    rows = working_rows(table)
    final = answer(table)[rows]
    out = {"n_working": int(rows.sum()), "median": float(np.median(final)),
           "q10": float(np.quantile(final, 0.1)), "q90": float(np.quantile(final, 0.9)),
           "iqr": float(np.subtract(*np.quantile(final, [0.75, 0.25]))),
           "valid_vs_test": spearman(final, answer(table, "test_error")[rows]),
           "early_vs_final": spearman(answer(table, epoch=max(1, table.n_epochs // 3))[rows], final)}
    noise = seed_noise(table)
    if noise is not None:
        out["seed_vs_seed"] = spearman(*final_seed_pairs(table))
        out["seed_sd"], out["seed_pairs"] = noise
        out["answer_se"] = out["seed_sd"] / np.sqrt(len(table.seeds))  # the noise of the mean over the seeds
        # Spearman-Brown: how two independent answers, each the mean of the seeds, would agree (the setting
        # experiment's "run vs run", which a table of one answer per class cannot measure directly).
        n, r = len(table.seeds), out["seed_vs_seed"]
        out["answer_vs_answer"] = n * r / (1 + (n - 1) * r)
    return out


def target_line(f: dict[str, float]) -> str:
    """How the table's figures stand against the setting experiment's targets."""
    from .setting_experiment import TARGETS
    checks = [("validation vs test", f["valid_vs_test"], TARGETS["valid_vs_test"]),
              ("answer vs answer", f["answer_vs_answer"], TARGETS["run_vs_run"]),
              ("epoch max/3 vs max", f["early_vs_final"], TARGETS["early_vs_final"])]
    parts = [f"{name} {value:.3f} {'meets' if value >= target else 'misses'} {target}"
             for name, value, target in checks]
    return f"- Against the setting experiment's targets: {'; '.join(parts)}."


def _histogram(values: np.ndarray, edges: list[float]) -> list[str]:
    counts, _ = np.histogram(values, bins=edges)
    width = max(counts.max(), 1)
    return [f"| {lo:.3f}-{hi:.3f} | {count} | {'#' * int(round(40 * count / width))} |"
            for lo, hi, count in zip(edges[:-1], edges[1:], counts)]


def card_markdown(table: NB201Table, experiment: list[str] | None = None) -> str:
    """The card as markdown; `experiment` are the lines of the setting experiment's table, if any."""
    meta, setting, sizes = table.meta, table.meta["setting"], table.meta["split_sizes"]
    cov, prov = meta["coverage"], meta["provenance"]
    f = figures(table)
    final = answer(table)
    rows = working_rows(table)
    order = [int(i) for i in np.argsort(np.where(rows, final, np.inf))[:10]]
    seeds = ", ".join(map(str, setting["seeds"]))
    lines = [
        f"# NAS-Bench-201 on {meta['dataset']}: a table trained by this project",
        "",
        f"`{meta['runs_file']}` holds one JSON line per trained class; `{meta['dataset']}.npz` is the table built "
        "from it (`python -m benchmarks.nasbench201.generate_table build`).",
        "",
        "## What was trained, and how",
        "",
        f"- Data: {setting['dataset']} resized to {setting['image_size']}x{setting['image_size']}: "
        f"{sizes['n_train']:,} training and {sizes['n_valid']:,} validation images (both from the training set, "
        f"split seed 0) and {sizes['n_test']:,} test images (from the test set).",
        f"- Network: the NAS-Bench-201 macro skeleton with {setting['channels']} channels and "
        f"{setting['cells_per_stage']} cell(s) per stage.",
        f"- Training: {setting['epochs']} epochs, batch {setting['batch_size']}, SGD (Nesterov momentum 0.9, weight "
        f"decay 5e-4), learning rate {setting['learning_rate']} with a cosine schedule; seeds {seeds}, trained side "
        "by side as one grouped network. The table's answer is the mean over the seeds (the simulated backend's "
        "`--table-seed` picks one seed instead).",
        "- Per epoch and seed: train, validation and test loss and error; per epoch: CPU seconds (`epoch_time`, "
        "training plus validation of all seeds on one thread) and wall seconds; per class: parameters and FLOPs "
        "of one network.",
        f"- Reproduce a row: `{meta['reproduce']}`",
        f"- Code: commits {', '.join(prov['git_commits'])}; torch {', '.join(prov['torch_versions'])}; "
        f"{', '.join(prov['devices'])}; results from {prov['created']} to {prov['last_result']}.",
        "",
        "## Architectures and their numbering",
        "",
        "Rows are classes of NAS-Bench-201's official equivalence rule (6,466 classes: cells that compute the same "
        "expression once `none` edges give zero and `skip_connect` passes its input on), each trained once through "
        "its smallest member. Every member of a class gets its class's answer. Our architecture index reads the six "
        "edges x0..x5 as base-5 digits over (none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3); it is "
        "not the official API's index, so compare cells with the official benchmark by architecture string.",
        "",
        "## Cost and coverage",
        "",
        f"{prov['cpu_seconds'] / 3600:.2f} core-hours ({prov['cpu_seconds'] / max(len(table), 1):.1f} CPU seconds "
        f"per class, all seeds and the test evaluations included), {prov['worker_wall_seconds'] / 3600:.2f} "
        "worker-hours of wall time on a shared 2-core machine.",
        "",
        f"{cov['classes_trained']} of the {cov['classes_total']} classes ({100 * cov['class_fraction']:.1f}%), "
        f"answering {cov['architectures_covered']:,} of the {cov['architectures_total']:,} cells: {cov['sample']}."
        + (f" The other {cov['classes_total'] - cov['classes_trained']:,} would take about "
           f"{(cov['classes_total'] - cov['classes_trained']) * prov['cpu_seconds'] / max(len(table), 1) / 3600:.0f} "
           "core-hours more at this cost per class." if cov['classes_trained'] < cov['classes_total'] else ""),
    ]
    if cov["classes_trained"] < cov["classes_total"]:
        lines += [
            "",
            "Cells of classes not yet trained are not answered: no surrogate estimates them (on the MNIST-10k table "
            "a leave-one-out nearest-neighbour estimate was worse than predicting the median). Simulated runs on "
            "this table sample only the cells it answers, and say so in `metadata.json`.",
        ]
    lines += [
        "",
        "## What the table resolves",
        "",
        f"Over the {f['n_working']:,} working classes (some path of non-`none` edges from input to output):",
        "",
        f"- Final validation error: 10% {f['q10']:.4f}, median {f['median']:.4f}, 90% {f['q90']:.4f}; "
        f"interquartile range {f['iqr']:.4f}.",
        f"- Validation vs test error of the same answers (Spearman): {f['valid_vs_test']:.3f} "
        f"({sizes['n_valid']:,} and {sizes['n_test']:,} images).",
        f"- Epoch {max(1, table.n_epochs // 3)} vs epoch {table.n_epochs} validation error (Spearman): "
        f"{f['early_vs_final']:.3f}.",
    ]
    if "seed_vs_seed" in f:
        lines += [
            f"- Seed {setting['seeds'][0]} vs seed {setting['seeds'][1]} (Spearman over {f['seed_pairs']:,} classes): "
            f"{f['seed_vs_seed']:.3f}. One seed's final validation error has a noise standard deviation of "
            f"{f['seed_sd']:.4f}; the table's answer, the mean of {len(setting['seeds'])} seeds, a standard error of "
            f"{f['answer_se']:.4f}. Two independent answers would agree at about {f['answer_vs_answer']:.3f} "
            f"(Spearman-Brown from the seed-vs-seed correlation).",
            target_line(f),
            "",
            f"So two answers that differ by less than about {2 * np.sqrt(2) * f['answer_se']:.4f} (twice the "
            "standard error of a difference) are not distinguished by this table, and a method comparison on it "
            "should report the mean and standard error over several seeds of the method.",
        ]
    lines += [
        "",
        "| validation error | working classes | |",
        "| --- | --- | --- |",
        *_histogram(final[rows], list(np.round(np.linspace(f["q10"] - 2 * f["iqr"], f["q90"] + 2 * f["iqr"], 9), 3))),
        "",
        "## Best architectures",
        "",
        "| rank | architecture | class size | validation error | test error | parameters |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    test = answer(table, "test_error")
    for rank, row in enumerate(order, start=1):
        arch = int(table.archs[row])
        cell = index_to_string(arch).replace("|", "\\|")  # a bare | would end the markdown table cell
        lines.append(f"| {rank} | `{cell}` | {int(table.figure(arch, 'class_size'))} | {final[row]:.4f} | "
                     f"{test[row]:.4f} | {1e6 * table.figure(arch, 'params'):,.0f} |")
    if experiment:
        from .setting import TABLE_SETTING_REASON
        lines += ["", "## How the setting was chosen", "",
                  "`python -m benchmarks.nasbench201.setting_experiment report` (the runs are in "
                  "`data/setting-experiment/`; `... run --candidate NAME` reproduces a row): each candidate trained "
                  "the same random working classes twice (two independent answers), with the figures below.", "",
                  *experiment, "", TABLE_SETTING_REASON]
    return "\n".join(lines) + "\n"


def write_card(table: NB201Table, path: str | Path) -> Path:
    """Write the card of `table` to `path`, with the setting experiment's table."""
    from .setting_experiment import EXPERIMENT_DIR, report_lines

    path = Path(path)
    path.write_text(card_markdown(table, report_lines(EXPERIMENT_DIR)))
    return path
