"""Launcher overhead: trials per minute at 4 workers against the ideal given the training script's own run time.

The training script only reports 9 epochs (sleeping a little per epoch) and exits. The ideal throughput runs
``n_workers`` copies back to back with no gap; the launcher is measured with this project's tuner sleep time and with
Syne Tune's default (5 s), side by side in one run. Target: the launcher adds less than 0.5 s per trial.

    python perf/launcher_overhead.py [--n-workers 4] [--n-trials 40] [--epoch-seconds 0.05]
"""
import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ConfigSpace as CS

from launchers import cli

SCRIPT = '''
import argparse, time
from syne_tune import Reporter
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--epoch_seconds", type=float)
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()
report = Reporter()
for epoch in range(1, 10):
    time.sleep(args.epoch_seconds)
    report(epoch=epoch, loss=args.x / epoch)
'''


def script_seconds(script: Path, n_workers: int, epoch_seconds: float, rounds: int = 3) -> float:
    """Mean wall time of one script run while ``n_workers`` copies run at once (as they do under the tuner)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, str(script), "--x", "0.5", "--epoch_seconds", str(epoch_seconds),
                                       "--st_checkpoint_dir", "/tmp/unused"], stdout=subprocess.DEVNULL)
                     for _ in range(n_workers)]
        for process in processes:
            process.wait()
        times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def tuning_seconds(folder: Path, name: str, sleep_time: float, flags: list[str]) -> float:
    """Seconds from the first trial's start to the last trial's end in a launcher run with ``sleep_time``."""
    cli.TUNER_SLEEP_TIME = sleep_time
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main("random_search", [*flags, "--results-dir", str(folder), "--experiment-name", name])
    assert code == 0, f"launcher run {name} failed: see {folder / name / 'tuner.log'}"
    metadata = json.loads((folder / name / "metadata.json").read_text())
    assert metadata["status"] == "finished"
    import pandas as pd

    trials = pd.read_csv(folder / name / "trials.csv")
    return float(trials["end_time"].max() - trials["start_time"].min())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-workers", type=int, default=4)
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--epoch-seconds", type=float, default=0.05)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "report_only.py"
        script.write_text(SCRIPT)
        space = CS.ConfigurationSpace()
        space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.Constant("epoch_seconds", args.epoch_seconds)])
        space.to_json(tmp / "space.json")
        flags = ["--training-script", str(script), "--config-space", str(tmp / "space.json"), "--metric", "loss",
                 "--mode", "min", "--resource-attr", "epoch", "--max-resource", "9",
                 "--n-workers", str(args.n_workers), "--max-num-trials", str(args.n_trials)]

        per_script = script_seconds(script, args.n_workers, args.epoch_seconds)
        ideal = args.n_trials * per_script / args.n_workers
        rows = [("ideal (script alone)", ideal, 0.0)]
        for label, sleep_time in ((f"launcher, sleep {cli.TUNER_SLEEP_TIME} s (ours)", cli.TUNER_SLEEP_TIME),
                                  ("launcher, sleep 5 s (Syne Tune default)", 5.0)):
            seconds = tuning_seconds(tmp / "results", f"sleep-{sleep_time}", sleep_time, flags)
            rows.append((label, seconds, (seconds - ideal) * args.n_workers / args.n_trials))

    print(f"{args.n_trials} trials, {args.n_workers} workers; one script run takes {per_script:.2f} s "
          f"(9 reports, {args.epoch_seconds} s each, {args.n_workers} at once)")
    print(f"{'setting':42} {'wall s':>8} {'trials/min':>11} {'vs ideal':>9} {'added s/trial':>14}")
    for label, seconds, added in rows:
        print(f"{label:42} {seconds:8.1f} {60 * args.n_trials / seconds:11.1f} {ideal / seconds:9.2f} {added:14.2f}")
    ours = rows[1][2]
    print(f"target: less than 0.5 s added per trial -> {'met' if ours < 0.5 else 'NOT met'} ({ours:.2f} s)")


if __name__ == "__main__":
    main()
