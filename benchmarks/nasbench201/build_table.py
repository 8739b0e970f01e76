"""Build the table (`NB201Table`, one row per trained class, one column per seed) and its card from a runs file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .encoding import NUM_ARCHS, class_members, class_representatives
from .generate_table import PER_SEED
from .runs import REPO_ROOT, GenerationError, read_runs
from .setting import Setting
from .table import DATA_DIR, NB201Table


def train_script_command(setting: Setting, arch: str = "ARCH") -> str:
    """The `nasbench201_train.py` command line that trains one class exactly as the table did."""
    data = Path(setting.dataset_path)
    if data.is_absolute() and data.is_relative_to(REPO_ROOT.parent):  # ../shared/... reads the same on every clone
        data = Path(os.path.relpath(data, REPO_ROOT))
    parts = ["python training_scripts/nasbench201_train.py", f"--arch '{arch}'", f"--dataset {setting.dataset}",
             f"--dataset_path {data}", f"--valid_fraction {setting.valid_fraction}"]
    parts += [f"--{name} {getattr(setting, name)}" for name in ("n_train", "n_valid", "n_test", "image_size")
              if getattr(setting, name) is not None]
    parts += [f"--channels {setting.channels}", f"--cells_per_stage {setting.cells_per_stage}",
              f"--epochs {setting.epochs}", f"--batch_size {setting.batch_size}",
              f"--learning_rate {setting.learning_rate}", f"--seeds {','.join(map(str, setting.seeds))}",
              "--report_test --device cpu --num_threads 1"]
    return " ".join(parts)


def build_table(runs: str | os.PathLike, name: str | None = None) -> NB201Table:
    """The table of a runs file: rows are the trained class representatives, one column per seed."""
    runs = Path(runs)
    header, results = read_runs(runs)
    if header is None:
        raise GenerationError(f"No runs file at {runs}; make one with `python -m benchmarks.nasbench201."
                              f"generate_table --out {runs}`.")
    if not results:
        raise GenerationError(f"{runs} holds no trained classes yet; let the generator run first.")
    setting = Setting.from_dict(header["setting"])
    by_arch = {int(r["arch"]): r for r in results}
    archs = sorted(by_arch)
    shape = (len(archs), len(setting.seeds), setting.epochs)
    metrics = {m: np.full(shape, np.nan, dtype=np.float32) for m in (*PER_SEED, "epoch_time", "epoch_wall_time")}
    for row, arch in enumerate(archs):
        record = by_arch[arch]
        for m in PER_SEED:
            metrics[m][row] = np.asarray(record["metrics"][m], dtype=np.float64)
        metrics["epoch_time"][row] = np.asarray(record["epoch_cpu_time"])[None, :]
        metrics["epoch_wall_time"][row] = np.asarray(record["epoch_time"])[None, :]
    figures = {"params": np.array([by_arch[a]["params"] / 1e6 for a in archs]),
               "flops": np.array([by_arch[a]["flops"] / 1e6 for a in archs]),
               "class_size": np.array([len(class_members(a)) for a in archs], dtype=np.int64)}
    total = len(class_representatives())
    meta: dict[str, Any] = {
        "source": "benchmarks.nasbench201.generate_table (trained for real by this project)",
        "runs_file": runs.name, "class_rows": True,
        "coverage": {"classes_trained": len(archs), "classes_total": total,
                     "class_fraction": round(len(archs) / total, 4),
                     "architectures_covered": int(figures["class_size"].sum()), "architectures_total": NUM_ARCHS,
                     "sample": f"the first {len(archs)} classes of a seeded random order (sample_seed "
                               f"{header['sample_seed']}), a uniform random sample of classes"},
        "setting": setting.as_dict(), "split_sizes": header["split_sizes"], "data_digest": header["data_digest"],
        "reproduce": train_script_command(setting),
        "provenance": {
            "created": header["created"], "last_result": max(r.get("finished", "") for r in results),
            "git_commits": sorted({r.get("git", header.get("git_commit", "")) for r in results}),
            "torch_versions": sorted({r.get("torch", header.get("torch", "")) for r in results}),
            "devices": sorted({r.get("device", header.get("device", "")) for r in results}),
            "worker_wall_seconds": round(sum(float(r.get("seconds", 0.0)) for r in results), 1),
            "cpu_seconds": round(sum(float(r.get("cpu_seconds", 0.0)) for r in results), 1),
        },
        "epoch_time_note": "epoch_time: CPU seconds of training plus validation of the answer in that epoch (all its "
                           "seeds, trained side by side in one one-thread process), i.e. its time on an otherwise "
                           "idle core; epoch_wall_time: the wall-clock seconds measured; test evaluation not counted",
    }
    return NB201Table(archs, list(setting.seeds), metrics, figures, dataset=name or header.get("name", ""), meta=meta)


def build(runs: str | os.PathLike, out: str | os.PathLike | None = None, name: str | None = None) -> int:
    """Write the table file and its card; returns the exit status."""
    from .card import write_card

    table = build_table(runs, name)
    path = table.save(Path(out) if out else DATA_DIR / f"{table.dataset}.npz")
    card = write_card(table, path.with_suffix(".md"))
    cov = table.meta["coverage"]
    print(f"{path}: {cov['classes_trained']} of {cov['classes_total']} classes ({cov['architectures_covered']} of "
          f"{NUM_ARCHS} architectures), {table.n_epochs} epochs, {path.stat().st_size / 1e6:.2f} MB; card: {card}.")
    return 0
