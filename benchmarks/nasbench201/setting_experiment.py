"""The kept experiment that chose the settings of the project's NAS-Bench-201 table.

For each candidate setting it trains the same random sample of working official classes twice, exactly as the table
would train a row (each run is one table answer: the mean over the seeds of a seed group), and prints per setting
the CPU seconds per class and three Spearman rank correlations of final validation error among working classes:

- validation vs test: one run's validation and test errors (evaluation noise);
- run vs run: the two independent answers of a class (training noise: what the table can resolve), and the same
  for the first seed of each run alone (what averaging the seeds buys);
- epoch max/3 vs max: one run's validation error at a third of the epochs and at the end (what early stopping
  can learn).

Each candidate writes one JSON line per trained (class, run) to `<out>/<candidate>.jsonl`, so a stopped experiment
continues where it stopped. Run r trains seeds `r * k .. r * k + k - 1` for a setting of k seeds.

    python -m benchmarks.nasbench201.setting_experiment run --candidate fmnist16-6k-e6 --n-classes 60
    python -m benchmarks.nasbench201.setting_experiment report
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .encoding import class_representatives, index_to_string, is_working
from .setting import Setting, comparable, parse_overrides

EXPERIMENT_DIR = Path(__file__).resolve().parent / "data" / "setting-experiment"
RUNS = 2  # two independent answers per class
TARGETS = {"valid_vs_test": 0.9, "run_vs_run": 0.7, "early_vs_final": 0.5}
CPU_BUDGET = 25.0  # CPU seconds per class: ~45 core-hours for 6,466 classes


CANDIDATES: dict[str, Setting] = {
    "fmnist16-6k-e6": Setting(),
    "fmnist12-10k-e6": Setting(image_size=12, n_train=10000),
    "fmnist12-10k-e6-b64": Setting(image_size=12, n_train=10000, batch_size=64, learning_rate=0.05),
}


def parse_setting(text: str) -> tuple[str, Setting]:
    """A candidate by name, or `key=value,...` over the default setting (named by the text itself)."""
    if text in CANDIDATES:
        return text, CANDIDATES[text]
    try:
        setting = parse_overrides(text, Setting())
    except ValueError as err:
        raise SystemExit(f"error: candidate {text!r} is not a name ({', '.join(CANDIDATES)}) and {err}") from None
    return text.replace("=", "").replace(",", "-").replace("/", "_"), setting


def sample_classes(n: int, seed: int = 1) -> list[int]:
    """`n` working official classes in a seeded random order (their representatives)."""
    working = np.array([rep for rep in class_representatives() if is_working(rep)])
    return [int(a) for a in working[np.random.RandomState(seed).permutation(len(working))[:n]]]


def train_answer(arch: int, setting: Setting, run: int, splits) -> dict[str, Any]:
    """One table answer of `arch` (the seed group of run `run`): per-seed curves and CPU seconds."""
    from .training import train_architecture

    n = len(setting.seeds)
    seeds = tuple(run * n + k for k in range(n))
    info: dict[str, Any] = {}
    start = time.process_time()
    rows = train_architecture(arch, splits, setting.train_spec(), seeds=seeds, test_epochs="all", start_info=info)
    cpu = time.process_time() - start
    curves = {m: [[row[m][k] for row in rows] for k in range(n)] for m in ("valid_error", "test_error")}
    return {"arch": arch, "arch_str": index_to_string(arch), "run": run, "seeds": list(seeds),
            "cpu_seconds": round(cpu, 3), "params": info["params"], **curves}


def read_lines(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and the complete result lines of one candidate's file."""
    if not path.is_file():
        return None, []
    header, results = None, []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if "setting" in record:
            header = record
        else:
            results.append(record)
    return header, results


def run(args: argparse.Namespace) -> int:
    import torch
    torch.set_num_threads(args.threads)
    name, setting = parse_setting(args.candidate)
    if args.dataset_path:
        setting = replace(setting, dataset_path=args.dataset_path)
    out = Path(args.out) / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    header, results = read_lines(out)
    if header is not None and comparable(header["setting"]) != comparable(setting.as_dict()):
        print(f"error: {out} was made with other settings; remove it or name another candidate.", file=sys.stderr)
        return 1
    done = {(r["arch"], r["run"]) for r in results}
    todo = [(a, r) for a in sample_classes(args.n_classes) for r in range(RUNS) if (a, r) not in done]
    print(f"{name}: {setting.describe()}; {len(done)} runs done, {len(todo)} to go.", flush=True)
    from .datasets import prepare_data
    splits = prepare_data(setting.data_spec())
    with open(out, "a") as f:
        if header is None:
            f.write(json.dumps({"candidate": name, "setting": setting.as_dict(), "torch": torch.__version__}) + "\n")
        for count, (arch, r) in enumerate(todo, start=1):
            record = train_answer(arch, setting, r, splits)
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
            final = np.mean([c[-1] for c in record["valid_error"]])
            print(f"[{count}/{len(todo)}] {arch:5d} run {r}: valid_error {final:.4f}, {record['cpu_seconds']:.1f} "
                  f"CPU s", flush=True)
    return 0


def summarize(results: list[dict[str, Any]], setting: Setting) -> dict[str, float]:
    """The figures of one candidate over the classes with both runs."""
    from scipy.stats import spearmanr

    by_arch: dict[int, dict[int, dict[str, Any]]] = {}
    for r in results:
        by_arch.setdefault(r["arch"], {})[r["run"]] = r
    complete = sorted(a for a, runs in by_arch.items() if len(runs) == RUNS)
    early = max(1, setting.epochs // 3) - 1

    def answer(arch: int, run: int, metric: str, epoch: int = -1) -> float:
        return float(np.mean([curve[epoch] for curve in by_arch[arch][run][metric]]))

    def corr(x: list[float], y: list[float]) -> float:
        return float(spearmanr(x, y).statistic) if len(x) > 2 else float("nan")

    runs = [[answer(a, r, "valid_error") for a in complete] for r in range(RUNS)]
    tests = [[answer(a, r, "test_error") for a in complete] for r in range(RUNS)]
    earlies = [[answer(a, r, "valid_error", early) for a in complete] for r in range(RUNS)]
    first_seed = [[float(by_arch[a][r]["valid_error"][0][-1]) for a in complete] for r in range(RUNS)]
    diff = np.array(runs[0]) - np.array(runs[1])
    return {
        "classes": len(complete),
        "cpu_seconds": float(np.mean([r["cpu_seconds"] for r in results])) if results else float("nan"),
        "valid_vs_test": float(np.mean([corr(runs[r], tests[r]) for r in range(RUNS)])),
        "run_vs_run": corr(runs[0], runs[1]),
        "early_vs_final": float(np.mean([corr(earlies[r], runs[r]) for r in range(RUNS)])),
        "single_seed_run_vs_run": corr(first_seed[0], first_seed[1]),
        "noise_se": float(np.std(diff, ddof=1) / np.sqrt(2)) if len(diff) > 1 else float("nan"),
        "iqr": float(np.subtract(*np.quantile(runs[0], [0.75, 0.25]))) if complete else float("nan"),
        "median": float(np.median(runs[0])) if complete else float("nan"),
    }


def report_lines(folder: Path) -> list[str]:
    """The experiment's table as markdown lines (one row per candidate file in `folder`)."""
    lines = ["| candidate | setting | classes | CPU s / class | valid vs test | run vs run | epoch max/3 vs max | "
             "run vs run, 1 seed | noise SE | IQR | median error |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for path in sorted(folder.glob("*.jsonl")):
        header, results = read_lines(path)
        if header is None:
            continue
        setting = Setting.from_dict(header["setting"])
        s = summarize(results, setting)
        lines.append(f"| {header['candidate']} | {setting.describe()} | {s['classes']} | {s['cpu_seconds']:.1f} | "
                     f"{s['valid_vs_test']:.3f} | {s['run_vs_run']:.3f} | {s['early_vs_final']:.3f} | "
                     f"{s['single_seed_run_vs_run']:.3f} | {s['noise_se']:.4f} | {s['iqr']:.4f} | "
                     f"{s['median']:.4f} |")
    return lines


def report(args: argparse.Namespace) -> int:
    print("\n".join(report_lines(Path(args.out))))
    print(f"\nTargets: valid vs test >= {TARGETS['valid_vs_test']}, run vs run >= {TARGETS['run_vs_run']}, "
          f"epoch max/3 vs max >= {TARGETS['early_vs_final']}, at most ~{CPU_BUDGET:.0f} CPU s per class.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nasbench201.setting_experiment",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train one candidate's sample (resumable)")
    run_parser.add_argument("--candidate", required=True,
                            help=f"a name ({', '.join(CANDIDATES)}) or key=value pairs over the default setting")
    run_parser.add_argument("--n-classes", type=int, default=60)
    run_parser.add_argument("--dataset-path", default=None, help="override the candidate's data folder")
    run_parser.add_argument("--threads", type=int, default=1)
    report_parser = sub.add_parser("report", help="print the table of all candidates")
    for p in (run_parser, report_parser):
        p.add_argument("--out", default=str(EXPERIMENT_DIR), help="folder of the candidates' files")
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
