"""Compare methods over seeds in one command: every (scheduler, seed) pair on the simulated backend, in parallel
processes, then the comparison report.

    python launchers/compare.py --benchmark nasbench201 --schedulers random_search hyperband bohb --seeds 20 \\
        [--max-wallclock-time T | --max-num-trials N] --out DIR [--jobs K]

Each run is what ``launch.py --backend simulated --scheduler S --seed K`` writes, in ``DIR/runs/S-seedK/``; the
report (``anytime.png``, ``summary.md``) goes to ``DIR``. A rerun of the same command skips the runs that finished and
redoes the others, so an interrupted comparison is finished by running it again.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from analysis.load import RUN_SETTINGS
from launchers.cli import LaunchPlan, parse_args
from schedulers.registry import SCHEDULERS

# The flags passed on to each run as they are (the launcher checks them).
RUN_FLAGS = ("benchmark", "dataset", "n_workers", "max_wallclock_time", "max_num_trials", "min_epochs",
             "max_epochs", "eta", "table_seed")
# metadata.json entries that must match for a finished run to count as one of this comparison's: those that runs
# share to be seeds of one method in the analysis, and the method and the seed.
SAME_SETTINGS = (*RUN_SETTINGS, "scheduler", "seed")
RUNS = "runs"


class CompareError(ValueError):
    """A comparison that cannot go on; the message is one sentence for the user."""


@dataclass
class RunTask:
    """One (scheduler, seed) run of the comparison."""

    key: str
    plan: LaunchPlan


def build_parser() -> argparse.ArgumentParser:
    """compare.py's flags; those of a single run are checked by the launcher's own parser."""
    parser = argparse.ArgumentParser(
        prog="python launchers/compare.py", description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Other flags of launch.py apply to every run as given: --dataset, --n-workers, --min-epochs, "
               "--max-epochs, --eta, --table-seed. Without a limit each run stops after the simulated backend's "
               "default number of trials.")
    parser.add_argument("--benchmark", required=True, help="a tabulated benchmark (see launch.py --help)")
    parser.add_argument("--schedulers", nargs="+", required=True, metavar="NAME",
                        help=f"the methods to compare: {', '.join(SCHEDULERS)}")
    parser.add_argument("--seeds", type=int, required=True, help="runs per method, with seeds 0 .. N-1")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs (DIR/runs/) and the report")
    parser.add_argument("--max-wallclock-time", type=float, default=None, help="simulated seconds per run")
    parser.add_argument("--max-num-trials", type=int, default=None, help="trials per run")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count() or 1,
                        help="runs at once, each in a process of its own (default: one per core; 1 runs them in "
                             "this process)")
    parser.add_argument("--target", type=float, default=None,
                        help="metric value whose time to reach the summary reports (default: the median over "
                             "methods of their mean final value)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--n-workers", type=int, default=None)
    parser.add_argument("--min-epochs", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--eta", type=float, default=None)
    parser.add_argument("--table-seed", default=None)
    return parser


def _run_argv(options: argparse.Namespace, scheduler: str, seed: int, name: str) -> list[str]:
    argv = ["--scheduler", scheduler, "--backend", "simulated", "--seed", str(seed),
            "--results-dir", str(options.out / RUNS), "--experiment-name", name]
    for flag in RUN_FLAGS:
        value = getattr(options, flag)
        if value is not None:
            argv += ["--" + flag.replace("_", "-"), str(value)]
    return argv


def _finished(folder: Path) -> dict[str, Any] | None:
    """The metadata of a run that finished, else None."""
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return metadata if metadata.get("status") == "finished" else None


def _comparable(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: metadata.get(key) for key in SAME_SETTINGS}


def plan_runs(options: argparse.Namespace) -> tuple[list[RunTask], list[Path]]:
    """The runs still to do, and the folders of every run of the comparison (done or not).

    Flags are checked once per scheduler by the launcher's parser; a finished run made with other settings is an
    error (its folder would mix two comparisons), an unfinished one is deleted to be run again.
    """
    from launchers.run import experiment_metadata

    tasks, folders = [], []
    for scheduler in options.schedulers:
        check = _checked_plan(_run_argv(options, scheduler, 0, f".check-{scheduler}"))
        for seed in range(options.seeds):
            name = f"{scheduler}-seed{seed}"
            folder = options.out / RUNS / name
            folders.append(folder)
            args = argparse.Namespace(**{**vars(check.args), "seed": seed, "experiment_name": name})
            plan = replace(check, args=args, folder=folder)
            done = _finished(folder)
            if done is not None:
                config_space = plan.benchmark.script_config_space(plan.budget.max_resource, plan.args.dataset_path)
                wanted = _comparable(json.loads(json.dumps(experiment_metadata(plan, config_space), default=str)))
                if _comparable(done) != wanted:
                    raise CompareError(f"{folder} holds a finished run with other settings "
                                       f"({_difference(done, wanted)}); give another --out for a new comparison.")
                continue
            if folder.exists():
                shutil.rmtree(folder)  # an interrupted or failed run of ours: it starts again
            tasks.append(RunTask(name, plan))
    return tasks, folders


def _checked_plan(argv: list[str]) -> LaunchPlan:
    """The launcher's plan for ``argv``; its one-sentence error, if any, as a ``CompareError``."""
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            return parse_args(None, argv)
    except SystemExit:
        raise CompareError(messages.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]) from None


def _difference(done: dict[str, Any], wanted: dict[str, Any]) -> str:
    key = next(k for k in SAME_SETTINGS if done.get(k) != wanted.get(k))
    return f"{key} {done.get(key)!r} instead of {wanted.get(key)!r}"


# Running ----------------------------------------------------------------------------------------------------------

def _run_callback(slot: Any, index: int, stop: Any, plan: LaunchPlan):
    """A tuner callback for a run in a worker: it keeps the run's progress (trials started, or simulated seconds) in
    ``slot[index]``, and ends the run as Ctrl-C would (CSVs complete, marked interrupted) once ``stop`` is set."""
    from syne_tune.constants import ST_TUNER_TIME
    from syne_tune.tuner_callback import TunerCallback

    by_trials = plan.args.max_num_trials is not None
    limit = plan.args.max_num_trials if by_trials else plan.args.max_wallclock_time

    class InWorker(TunerCallback):
        def __init__(self):
            self.started = 0

        def on_start_trial(self, trial):
            self.started += 1
            if by_trials:
                slot[index] = min(self.started, limit)

        def on_trial_result(self, trial, status, result, decision):
            if not by_trials:
                slot[index] = min(result.get(ST_TUNER_TIME, 0.0), limit)

        def on_loop_end(self):
            if stop.value:
                raise KeyboardInterrupt("the comparison stops")

    return InWorker()


def _run_one(task: RunTask, callbacks: Sequence[Any] = ()) -> int:
    """Run one task quietly (its summary goes to its own log); its exit code."""
    from launchers.run import run

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        return run(task.plan, progress_bar=False, callbacks=callbacks)


def _worker(index: int, tasks: list[RunTask], next_task: Any, done: Any, slot: Any, stop: Any):
    """A worker process: runs tasks until there are none left or ``stop`` is set. (Forked: ``tasks`` are inherited,
    not pickled; a benchmark holds functions that pickle cannot carry.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers in order
    with contextlib.suppress(KeyboardInterrupt):  # a SIGTERM between two runs
        while not stop.value:
            with next_task.get_lock():
                position = next_task.value
                next_task.value += 1
            if position >= len(tasks):
                return
            code = _run_one(tasks[position], [_run_callback(slot, index, stop, tasks[position].plan)])
            slot[index] = 0.0
            done.put((tasks[position].key, code))


class _Bar:
    """One progress bar over all runs, in trials (or simulated seconds) of every run together."""

    def __init__(self, n_runs: int, plan: LaunchPlan):
        from tqdm import tqdm

        self.by_trials = plan.args.max_num_trials is not None
        self.units = plan.args.max_num_trials if self.by_trials else plan.args.max_wallclock_time
        self.bar = tqdm(total=n_runs * self.units, unit="trial" if self.by_trials else "simulated s",
                        bar_format=None if self.by_trials else
                        "{l_bar}{bar}| {n:.0f}/{total:.0f} simulated s [{elapsed}<{remaining}{postfix}]",
                        dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30)
        self.n_runs, self.finished, self.failed = n_runs, 0, 0

    def update(self, running_units: float = 0.0):
        self.bar.set_postfix({"runs": f"{self.finished}/{self.n_runs}", **({"failed": self.failed} if self.failed
                                                                           else {})}, refresh=False)
        position = min(self.finished * self.units + running_units, self.bar.total)
        position = int(position) if self.by_trials else position
        self.bar.update(position - self.bar.n)

    def close(self):
        self.bar.refresh()
        self.bar.close()


def run_tasks(tasks: list[RunTask], jobs: int) -> dict[str, int]:
    """Run every task, ``jobs`` at a time; each run's exit code. Ctrl-C (or SIGTERM) stops the runs in progress
    (their CSVs complete, marked interrupted) and raises KeyboardInterrupt."""
    codes: dict[str, int] = {}
    if not tasks:
        return codes
    if jobs == 1:
        bar = _Bar(len(tasks), tasks[0].plan)
        try:
            for task in tasks:
                codes[task.key] = _run_one(task)
                if codes[task.key] == 130:
                    raise KeyboardInterrupt
                bar.finished += 1
                bar.failed += codes[task.key] != 0
                bar.update()
        finally:
            bar.close()
        return codes
    context = multiprocessing.get_context("fork")  # the workers inherit the loaded table, imports and tasks
    next_task, done = context.Value("i", 0), context.Queue()
    slot = context.Array("d", jobs, lock=False)  # each worker's progress in its run
    stop = context.Value("b", 0, lock=False)  # set: every run ends at its next loop, as after Ctrl-C
    workers = [context.Process(target=_worker, args=(i, tasks, next_task, done, slot, stop), daemon=True)
               for i in range(min(jobs, len(tasks)))]
    for worker in workers:
        worker.start()
    bar = _Bar(len(tasks), tasks[0].plan)  # after the fork: tqdm's monitor thread stays in this process
    try:
        while len(codes) < len(tasks):
            try:
                key, code = done.get(timeout=0.25)
                codes[key] = code
                bar.finished += 1
                bar.failed += code != 0
            except queue.Empty:
                if not any(worker.is_alive() for worker in workers) and done.empty():
                    raise CompareError("Every worker process ended before the runs were done; see the runs' "
                                       "tuner.log files.") from None
            bar.update(sum(slot))
    except KeyboardInterrupt:
        stop.value = 1
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():  # stuck in one long call: stop it as `kill` would
                os.kill(worker.pid, signal.SIGTERM)
                worker.join(timeout=10)
        raise
    finally:
        bar.close()
    for worker in workers:
        worker.join(timeout=5)
    return codes


def _preload(tasks: list[RunTask]):
    """Import what every run needs before the workers fork, so that none of them pays for it again."""
    import importlib

    import backends.simulated  # noqa: F401
    import launchers.run  # noqa: F401

    for module in {task.plan.scheduler.module for task in tasks}:
        importlib.import_module(module)
    if tasks:
        tasks[0].plan.benchmark.blackbox()  # imports the blackbox's modules


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write its report; returns the exit code."""
    parser = build_parser()
    options = parser.parse_args(argv)
    unknown = [name for name in options.schedulers if name not in SCHEDULERS]
    if unknown:
        parser.error(f"Unknown scheduler '{unknown[0]}': choose from {', '.join(SCHEDULERS)}.")
    if len(set(options.schedulers)) != len(options.schedulers):
        parser.error(f"--schedulers names a scheduler twice ({' '.join(options.schedulers)}): name each once.")
    if options.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {options.seeds}.")
    if options.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {options.jobs}.")
    if options.out.exists() and not options.out.is_dir():
        parser.error(f"--out {options.out} is a file; give a folder (it is created if missing).")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the runs as Ctrl-C does
    try:
        tasks, folders = plan_runs(options)
    except CompareError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print("\nInterrupted before any run started.", file=sys.stderr)
        return 130
    n_runs = len(folders)
    if len(tasks) < n_runs:
        print(f"{n_runs - len(tasks)} of {n_runs} runs already finished in {options.out / RUNS}; running the other "
              f"{len(tasks)}.")
    started = time.perf_counter()
    try:
        _preload(tasks)
        codes = run_tasks(tasks, options.jobs)
    except KeyboardInterrupt:
        finished = sum(_finished(folder) is not None for folder in folders)
        print(f"\nInterrupted: {finished} of {n_runs} runs finished. Run the same command again to do the others.",
              file=sys.stderr)
        return 130
    failed = [key for key, code in codes.items() if code != 0]
    if tasks:
        print(f"{len(tasks)} runs in {time.perf_counter() - started:.1f} s ({min(options.jobs, len(tasks))} at a "
              "time).")
    done = [folder for folder in folders if _finished(folder) is not None]
    if done:
        from analysis.comparison import write_comparison_report
        from analysis.load import load_experiments

        by_method: dict[str, list[str]] = {}  # the summary says, per method, which of its runs are missing
        for task in tasks:
            if task.key in failed:
                by_method.setdefault(task.plan.scheduler.name, []).append(task.key)
        written = write_comparison_report(load_experiments(done), options.out, options.target, failed=by_method)
        print(f"Report: {', '.join(str(path) for path in written)}")
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; see {options.out / RUNS}/<run>/tuner.log. Run the "
              "same command again to retry them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
