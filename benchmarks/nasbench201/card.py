"""The card of a table made by ``generate_table``: what was trained and how, cost, coverage and what the data shows.

``python -m benchmarks.nasbench201.generate_table build`` writes it beside the table (``<dataset>.md``), so the card
always describes the table it sits next to.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .encoding import index_to_string
from .table import NB201Table

ZERO_CLASS = 0  # canonical index of the cells whose output is always zero


def rank_correlation(table: NB201Table, early_epoch: int, late_epoch: int | None = None,
                     metric: str = "valid_error", late_metric: str | None = None) -> float:
    """Spearman rank correlation of the seed-mean `metric` at one epoch and `late_metric` (default: the same) at
    another (default: the last), over the trained classes."""
    from scipy.stats import spearmanr

    late = table.n_epochs if late_epoch is None else late_epoch
    early_values = np.nanmean(table.array(metric), axis=1)[:, early_epoch - 1]
    late_values = np.nanmean(table.array(late_metric or metric), axis=1)[:, late - 1]
    return float(spearmanr(early_values, late_values).statistic)


def _histogram(values: np.ndarray, edges: list[float]) -> list[str]:
    counts, _ = np.histogram(values, bins=edges)
    width = max(counts.max(), 1)
    return [f"| {lo:.2f}-{hi:.2f} | {count} | {'#' * int(round(40 * count / width))} |"
            for lo, hi, count in zip(edges[:-1], edges[1:], counts)]


def card_markdown(table: NB201Table) -> str:
    """The card as markdown."""
    meta, settings = table.meta, table.meta["settings"]
    data, train, cov, prov = settings["data"], settings["train"], meta["coverage"], meta["provenance"]
    final = np.nanmean(table.array("valid_error"), axis=1)[:, -1]
    test = np.nanmean(table.array("test_error"), axis=1)[:, -1]
    archs = table.archs
    order = np.argsort(final)
    sizes = settings["split_sizes"]
    early = [e for e in (1, 3) if e < table.n_epochs]
    median = float(np.nanmedian(final))
    noise = float(np.sqrt(median * (1 - median) / sizes["n_valid"]))
    spread = float(np.nanquantile(final, 0.9) - np.nanquantile(final, 0.1))
    lines = [
        f"# NAS-Bench-201 on {meta['dataset']}: a table trained by this project",
        "",
        f"`{meta['runs_file']}` holds one JSON line per trained architecture; `{meta['dataset']}.npz` is the table "
        "built from it (`python -m benchmarks.nasbench201.generate_table build`), the default of "
        "`--benchmark nasbench201`.",
        "",
        "## What was trained, and how",
        "",
        f"- Data: {data['dataset']} from `{data['dataset_path']}` (real MNIST digits), resized to "
        f"{data['image_size']}x{data['image_size']}: {sizes['n_train']} training, {sizes['n_valid']} validation "
        f"(both from the training images, split seed {data['split_seed']}) and {sizes['n_test']} test images.",
        f"- Network: the NAS-Bench-201 macro skeleton with {train['channels']} channels and "
        f"{train['cells_per_stage']} cell per stage.",
        f"- Training: {train['epochs']} epochs, batch {train['batch_size']}, SGD (Nesterov momentum "
        f"{train['momentum']}, weight decay {train['weight_decay']}), learning rate {train['learning_rate']} with a "
        f"cosine schedule, seed {train['seed']}; one seed per architecture.",
        "- Per epoch: train, validation and test loss and error, CPU seconds (`epoch_time`: training plus "
        "validation on one thread) and wall seconds; per architecture: parameters, FLOPs.",
        f"- Reproduce a row: `{meta['reproduce']}`",
        f"- Code: commits {', '.join(prov['git_commits'])}; torch {', '.join(prov['torch_versions'])}; "
        f"{', '.join(prov['devices'])}; results from {prov['created']} to {prov['last_result']}.",
        "",
        "## Cost",
        "",
        f"{prov['train_valid_cpu_seconds'] / 3600:.2f} core-hours of training and validation "
        f"({prov['train_valid_cpu_seconds'] / max(len(table), 1):.1f} CPU seconds per architecture), "
        f"{prov['worker_wall_seconds'] / 3600:.2f} worker-hours of wall time on a shared 2-core machine.",
        "",
        "## Coverage",
        "",
        f"{cov['classes_trained']} of the {cov['classes_total']} isomorphism classes "
        f"({100 * cov['class_fraction']:.1f}%), answering {cov['architectures_covered']} of the "
        f"{cov['architectures_total']} architectures exactly: "
        f"{cov['sample']}. The zero-output class (index {ZERO_CLASS}) was trained first, as the reference for the "
        "worst cell. Every other architecture is answered by Syne Tune's nearest-neighbour surrogate over the "
        "trained classes and marked `estimated` (`NB201Blackbox.resolve`, and the lookup script's `estimated` "
        "report field).",
        "",
        f"## Final validation error (epoch {table.n_epochs})",
        "",
        f"Over the trained classes: min {np.nanmin(final):.4f}, 10% {np.nanquantile(final, 0.1):.4f}, median "
        f"{np.nanmedian(final):.4f}, 90% {np.nanquantile(final, 0.9):.4f}, max {np.nanmax(final):.4f}.",
        "",
        "| validation error | classes | |",
        "| --- | --- | --- |",
        *_histogram(final, [0.0, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.2, 0.5, 1.0]),
        "",
        "## Best architectures",
        "",
        "| rank | architecture | class size | validation error | test error | parameters |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rank, row in enumerate(order[:10], start=1):
        arch = int(archs[row])
        cell = index_to_string(arch).replace("|", "\\|")  # a bare | would end the markdown table cell
        lines.append(f"| {rank} | `{cell}` | {int(table.figure(arch, 'class_size'))} | {final[row]:.4f} | "
                     f"{test[row]:.4f} | {1e6 * table.figure(arch, 'params'):,.0f} |")
    if ZERO_CLASS in table:
        zero = final[int(np.searchsorted(archs, ZERO_CLASS))]
        lines += ["", f"The zero-output cells reach {zero:.4f} (chance is 0.9)."]
    lines += [
        "",
        "## Rank correlation across budgets",
        "",
        "Spearman rank correlation of the validation errors of the trained classes:",
        "",
        "| epochs | " + " | ".join(str(e) for e in early) + " |",
        "| --- |" + " --- |" * len(early),
        f"| against epoch {table.n_epochs} | " + " | ".join(f"{rank_correlation(table, e):.3f}" for e in early) + " |",
        "",
        f"MNIST-10k is easy: half of the trained classes end between {np.nanquantile(final, 0.25):.3f} and "
        f"{np.nanquantile(final, 0.75):.3f} validation error (1,000 validation images, so steps of 0.001), and "
        "early ranks predict final ones only weakly: early stopping (Hyperband, BOHB) has less to gain on this table "
        "than where the correlation is high.",
        "",
        f"Part of that is measurement noise, which caps any correlation: at epoch {table.n_epochs} the validation and "
        f"test errors of the same trained networks ({sizes['n_valid']:,} and {sizes['n_test']:,} held-out images) "
        f"correlate at only {rank_correlation(table, table.n_epochs, late_metric='test_error'):.3f}, and the "
        f"binomial standard error of a {median:.3f} error on {sizes['n_valid']:,} images is {noise:.4f}, against a "
        f"spread of {spread:.4f} between the 10% and 90% quantiles.",
        "",
    ]
    return "\n".join(lines)


def write_card(table: NB201Table, path: str | Path) -> Path:
    """Write the card of ``table`` to ``path``."""
    path = Path(path)
    path.write_text(card_markdown(table))
    return path
