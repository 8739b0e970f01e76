"""Per-trial overhead of the Ray backend against the local backend, on the same short script, in one run.

Both launchers run random search over the script of ``perf/launcher_overhead.py`` (9 reports, ``--epoch-seconds``
each, then exit) with the same flags, in alternating order for ``--rounds`` rounds (the machine's load drifts; the
medians are shown). The Ray runs join one local Ray instance started here, as ``--backend ray`` would start it, so
that its start-up and shutdown (paid once per run, not per trial) are shown apart. Per trial: the mean time from a
trial's start to its last report as the tuner saw them ("s per trial"), and the time from the first trial's start to
the last trial's end divided by the trials ("run s/trial"). Target: the Ray backend adds less than 0.5 s per trial.

    python perf/ray_overhead.py [--n-workers 2] [--n-trials 20] [--epoch-seconds 0.05] [--rounds 3]
"""
import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from launcher_overhead import SCRIPT, custom_flags, script_seconds, write_space
from launchers import cli


def launch(folder: Path, name: str, flags: list[str]) -> dict[str, float]:
    """Run the launcher in this process: mean seconds per trial and of the whole tuning, from its trials.csv."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main("random_search", [*flags, "--results-dir", str(folder), "--experiment-name", name])
    assert code == 0, f"launcher run {name} failed: see {folder / name / 'tuner.log'}"
    assert json.loads((folder / name / "metadata.json").read_text())["status"] == "finished"
    trials = pd.read_csv(folder / name / "trials.csv")
    assert (trials["status"] == "Completed").all(), trials
    tuning = float(trials["end_time"].max() - trials["start_time"].min())
    return {"trial": float((trials["end_time"] - trials["start_time"]).mean()), "tuning": tuning}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--epoch-seconds", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each backend, in alternating order")
    args = parser.parse_args()
    try:
        import ray
    except ImportError:
        sys.exit("This measurement needs Ray: pip install -e \".[ray]\".")
    from backends import ray_cluster

    runs: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "report_only.py"
        script.write_text(SCRIPT)
        space = write_space(tmp / "space.json", epoch_seconds=args.epoch_seconds)
        flags = [*custom_flags(script, space), "--n-workers", str(args.n_workers), "--max-num-trials",
                 str(args.n_trials)]
        alone = script_seconds(script, args.n_workers, args.epoch_seconds)
        start = time.perf_counter()
        ray_cluster.connect(None, args.n_workers, 1)  # the local instance --backend ray starts
        ray_start = time.perf_counter() - start
        for round_ in range(args.rounds):
            for backend in ("local", "ray") if round_ % 2 == 0 else ("ray", "local"):
                extra = ["--backend", "ray"] if backend == "ray" else []
                runs[backend].append(launch(tmp / "results", f"{backend}-{round_}", [*flags, *extra]))
        start = time.perf_counter()
        ray.shutdown()
        ray_stop = time.perf_counter() - start

    median = {backend: {key: statistics.median(run[key] for run in figures) for key in figures[0]}
              for backend, figures in runs.items()}
    print(f"{args.n_trials} trials, {args.n_workers} workers, median of {args.rounds} runs each; the script alone "
          f"runs {alone:.2f} s from start to exit ({args.n_workers} at once; 9 reports, {args.epoch_seconds} s each)")
    print(f"{'backend':28} {'s per trial':>12} {'run s':>8} {'run s/trial':>12}")
    for label, figures in (("local", median["local"]), ("ray (local Ray instance)", median["ray"])):
        print(f"{label:28} {figures['trial']:12.2f} {figures['tuning']:8.1f} {figures['tuning'] / args.n_trials:12.2f}")
    per_trial = median["ray"]["trial"] - median["local"]["trial"]
    per_run = (median["ray"]["tuning"] - median["local"]["tuning"]) * args.n_workers / args.n_trials
    print(f"ray - local: {per_trial:+.2f} s per trial (start to last report), {per_run:+.2f} s per trial over the "
          f"run ({median['ray']['tuning'] / median['local']['tuning']:.2f}x the local run's time)")
    print(f"once per run: starting the local Ray instance {ray_start:.1f} s, stopping it {ray_stop:.1f} s")
    worst = max(per_trial, per_run)
    print(f"target: the Ray backend adds less than 0.5 s per trial -> {'met' if worst < 0.5 else 'NOT met'} "
          f"({worst:+.2f} s)")


if __name__ == "__main__":
    main()
