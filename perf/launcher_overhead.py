"""Launcher overhead: start-up time, and trials per minute at 4 workers against the ideal given the script's run time.

Start-up: seconds for a bare interpreter, for importing Syne Tune, for ``launch.py --help`` and from starting a
launcher to its first trial's first line (local backend), the median of ``--rounds`` runs each. ``--help`` and flag
errors load no Syne Tune scheduler and no simulator; a local run never loads the simulator.

Throughput: the training script only reports 9 epochs (sleeping a little per epoch) and exits. The ideal runs
``n_workers`` copies back to back with no gap; the launcher is measured with this project's tuner sleep time and with
Syne Tune's default (5 s), side by side in one run. Target: the launcher adds less than 0.5 s per trial.

    python perf/launcher_overhead.py [--what all|startup|throughput] [--n-workers 4] [--n-trials 40]
        [--epoch-seconds 0.05] [--rounds 5]
"""
import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ConfigSpace as CS

from backends import local
from launchers import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = '''
import sys, time
started = time.time()  # before any import: the launcher's start-up ends when the trial's process runs
import argparse
from syne_tune import Reporter
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--epoch_seconds", type=float)
parser.add_argument("--started_file", default="")
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()
if args.started_file:
    open(args.started_file, "a").write(f"{started}\\n")
report = Reporter()
for epoch in range(1, 10):
    time.sleep(args.epoch_seconds)
    report(epoch=epoch, loss=args.x / epoch)
'''


def write_space(path: Path, **constants) -> Path:
    space = CS.ConfigurationSpace()
    space.add([CS.UniformFloatHyperparameter("x", 0, 1)] + [CS.Constant(k, v) for k, v in constants.items()])
    space.to_json(path)
    return path


def custom_flags(script: Path, space: Path) -> list[str]:
    return ["--training-script", str(script), "--config-space", str(space), "--metric", "loss", "--mode", "min",
            "--resource-attr", "epoch", "--max-resource", "9"]


def seconds_of(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - start


def first_trial_seconds(tmp: Path, script: Path, name: str) -> float:
    """Seconds from starting ``launch.py`` to the first line of its first trial's process."""
    started_file = tmp / f"{name}.started"
    space = write_space(tmp / f"{name}.json", epoch_seconds=0.0, started_file=str(started_file))
    start = time.time()
    subprocess.run([sys.executable, str(REPO_ROOT / "launchers" / "launch.py"), "--scheduler", "random_search",
                    *custom_flags(script, space), "--n-workers", "1", "--max-num-trials", "1",
                    "--results-dir", str(tmp / "results"), "--experiment-name", name],
                   cwd=tmp, capture_output=True, check=True)
    return float(started_file.read_text().split()[0]) - start


def startup_rows(tmp: Path, script: Path, rounds: int) -> list[tuple[str, float]]:
    """Median seconds of each start-up step over ``rounds`` runs."""
    steps = {
        "python -c pass (interpreter)": lambda i: seconds_of([sys.executable, "-c", "pass"], tmp),
        "python -c 'import syne_tune'": lambda i: seconds_of([sys.executable, "-c", "import syne_tune"], tmp),
        "launch.py --help": lambda i: seconds_of(
            [sys.executable, str(REPO_ROOT / "launchers" / "launch.py"), "--help"], tmp),
        "launch.py (local) to its first trial": lambda i: first_trial_seconds(tmp, script, f"start-{i}"),
    }
    return [(label, statistics.median(step(i) for i in range(rounds))) for label, step in steps.items()]


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
    local.TUNER_SLEEP_TIME = sleep_time
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main("random_search", [*flags, "--results-dir", str(folder), "--experiment-name", name])
    assert code == 0, f"launcher run {name} failed: see {folder / name / 'tuner.log'}"
    metadata = json.loads((folder / name / "metadata.json").read_text())
    assert metadata["status"] == "finished"
    import pandas as pd

    trials = pd.read_csv(folder / name / "trials.csv")
    return float(trials["end_time"].max() - trials["start_time"].min())


def throughput(tmp: Path, script: Path, args: argparse.Namespace) -> None:
    space = write_space(tmp / "space.json", epoch_seconds=args.epoch_seconds)
    flags = [*custom_flags(script, space), "--n-workers", str(args.n_workers), "--max-num-trials", str(args.n_trials)]
    per_script = script_seconds(script, args.n_workers, args.epoch_seconds)
    ideal = args.n_trials * per_script / args.n_workers
    rows = [("ideal (script alone)", ideal, 0.0)]
    ours = local.TUNER_SLEEP_TIME
    settings = ((f"launcher, sleep {ours} s (ours)", ours), ("launcher, sleep 5 s (Syne Tune default)", 5.0))
    for label, sleep_time in settings:
        seconds = tuning_seconds(tmp / "results", f"sleep-{sleep_time}", sleep_time, flags)
        rows.append((label, seconds, (seconds - ideal) * args.n_workers / args.n_trials))
    print(f"{args.n_trials} trials, {args.n_workers} workers; one script run takes {per_script:.2f} s "
          f"(9 reports, {args.epoch_seconds} s each, {args.n_workers} at once)")
    print(f"{'setting':42} {'wall s':>8} {'trials/min':>11} {'vs ideal':>9} {'added s/trial':>14}")
    for label, seconds, added in rows:
        print(f"{label:42} {seconds:8.1f} {60 * args.n_trials / seconds:11.1f} {ideal / seconds:9.2f} {added:14.2f}")
    added = rows[1][2]
    print(f"target: less than 0.5 s added per trial -> {'met' if added < 0.5 else 'NOT met'} ({added:.2f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=("all", "startup", "throughput"), default="all")
    parser.add_argument("--n-workers", type=int, default=4)
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--epoch-seconds", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=5, help="start-up runs per step (the median is shown)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "report_only.py"
        script.write_text(SCRIPT)
        if args.what in ("all", "startup"):
            print(f"start-up, median of {args.rounds} runs")
            for label, seconds in startup_rows(tmp, script, args.rounds):
                print(f"{label:42} {seconds:8.2f} s")
            print()
        if args.what in ("all", "throughput"):
            throughput(tmp, script, args)


if __name__ == "__main__":
    main()
