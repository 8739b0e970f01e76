"""Simulation speed: our engine (``--backend simulated``) against Syne Tune's stock Tuner + simulator, on the same
table with the same scheduler and the same number of trials, side by side in one run.

- stock: Syne Tune's ``Tuner`` with its ``UserBlackboxBackend`` and ``SimulatorCallback`` as shipped (a simulated tick
  of 5 s while all workers are busy, its own results store, the tuner saved every 10 s), driving the scheduler that
  our launcher builds (kept to the cells the table measured, stopped after N trials). For ``bohb``, whose stock
  counterpart is Syne Tune's BOHB, the stock side runs ``async_bohb`` (Syne Tune's asynchronous BOHB).
- engine: ``launchers.run.run`` on ``--backend simulated``, writing the results folder as a launch does (no progress
  bar), timed from the start of its tuning loop to the results written (building the scheduler and the backend is
  left out on both sides).
- today's Syne Tune path (``--backend simulated_syne_tune``) too where ``--with-syne-tune-path`` is given.

Each measurement runs in a process of its own; interpreter start, imports and table loading are left out (the same
for all). A run still going after ``--time-limit`` seconds is stopped and shown as "> limit" (a lower bound).
Targets (issue 13): at 3,000 trials the engine is at least 10x faster than stock for random search, asha and bohb,
and 3,000 trials cost the engine at most 3.5x what 1,000 cost for random search and asha.

    python perf/simulation_speed.py [--schedulers random_search asha bohb] [--trials 300 1000 3000]
        [--n-workers 4] [--dataset mnist10k] [--seed 0] [--time-limit 900] [--with-syne-tune-path]
"""
import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The scheduler the stock side runs for each of ours: Syne Tune's own counterpart.
STOCK_COUNTERPART = {"bohb": "async_bohb"}
PATHS = ("stock", "engine", "syne_tune_path")


def _plan(scheduler: str, backend: str, trials: int, n_workers: int, dataset: str | None, seed: int, out: str):
    from launchers.cli import parse_args

    flags = ["--scheduler", scheduler, "--backend", backend, "--benchmark", "nasbench201", "--max-num-trials",
             str(trials), "--n-workers", str(n_workers), "--seed", str(seed), "--results-dir", out,
             "--experiment-name", "run"]
    return parse_args(None, flags + (["--dataset", dataset] if dataset else []))


class _OverTime(BaseException):
    """The run went past its time limit (a BaseException: the launcher's run must not take it for a failure)."""


def _timed(run, limit: float) -> tuple[float, int | None]:
    """Seconds ``run()`` takes from the start of its tuning loop, and the trials it ran; ``(limit, None)`` if it was
    stopped at ``limit``. ``run`` returns the trials and when its loop started."""
    def over(signum, frame):
        raise _OverTime

    signal.signal(signal.SIGALRM, over)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        ran, started = run()
    except _OverTime:
        return limit, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return time.perf_counter() - started, ran


def _launch(plan):
    """A function that runs ``plan`` as ``launch.py`` does (no progress bar); it returns the trials run and when the
    tuning loop started (building the scheduler and the backend is left out, as on the stock side)."""
    import pandas as pd
    from syne_tune.tuner_callback import TunerCallback

    from launchers.run import run

    class Started(TunerCallback):
        at = time.perf_counter()

        def on_tuning_start(self, tuner):
            self.at = time.perf_counter()

    def launch() -> tuple[int, float]:
        started = Started()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            code = run(plan, progress_bar=False, callbacks=[started])
        if code != 0:
            raise RuntimeError(f"the run failed (exit code {code}); see {plan.folder}/tuner.log")
        return len(pd.read_csv(plan.folder / "trials.csv")), started.at
    return launch


def _stock(plan):
    """A function that runs ``plan``'s scheduler on Syne Tune's stock Tuner + simulator; returns the trials run."""
    import numpy as np
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend

    from schedulers.trial_limit import TrialLimit

    args, benchmark, budget = plan.args, plan.benchmark, plan.budget
    random.seed(args.seed)
    np.random.seed(args.seed)
    config_space = benchmark.script_config_space(budget.max_resource, args.dataset_path)
    scheduler = TrialLimit(plan.scheduler.build(config_space, benchmark.metric, benchmark.mode, budget, args.seed,
                                                config_key=benchmark.config_key, accepts=benchmark.accepts),
                           args.max_num_trials)
    backend = UserBlackboxBackend(blackbox=benchmark.blackbox(), elapsed_time_attr="elapsed_time",
                                  max_resource_attr=benchmark.epochs_flag)
    os.environ["SYNETUNE_FOLDER"] = str(plan.folder.resolve())
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, n_workers=args.n_workers, sleep_time=0,
                  stop_criterion=StoppingCriterion(max_wallclock_time=1e12), callbacks=[SimulatorCallback()],
                  tuner_name="stock", suffix_tuner_name=False)

    def stock() -> tuple[int, float]:
        started = time.perf_counter()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            tuner.run()
        return tuner.tuning_status.num_trials_started, started
    return stock


def measure_one(path: str, scheduler: str, trials: int, n_workers: int, dataset: str | None, seed: int,
                limit: float) -> tuple[float, int | None]:
    """Seconds one run takes on ``path`` (in this process), and the trials it ran (None: stopped at ``limit``)."""
    import benchmarks.nasbench201.blackbox  # noqa: F401  (imported before the clock starts, for every path)

    with tempfile.TemporaryDirectory() as out:
        if path == "stock":
            plan = _plan(STOCK_COUNTERPART.get(scheduler, scheduler), "simulated", trials, n_workers, dataset, seed,
                         out)
            return _timed(_stock(plan), limit)
        backend = "simulated" if path == "engine" else "simulated_syne_tune"
        return _timed(_launch(_plan(scheduler, backend, trials, n_workers, dataset, seed, out)), limit)


def _measure(path: str, scheduler: str, trials: int, options: argparse.Namespace) -> tuple[float, int | None]:
    """Seconds and trials run; ``(limit, None)`` for a run that took longer than ``--time-limit`` seconds."""
    command = [sys.executable, __file__, "--one", path, scheduler, str(trials), "--n-workers", str(options.n_workers),
               "--seed", str(options.seed), "--time-limit", str(options.time_limit)] + \
        (["--dataset", options.dataset] if options.dataset else [])
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{path} {scheduler} {trials}: {done.stderr.strip().splitlines()[-1:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return measured["seconds"], measured["trials"]


def _fmt(seconds: float, ran: int | None) -> str:
    return f"{seconds:.2f}" if ran is not None else f"> {seconds:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedulers", nargs="+", default=["random_search", "asha", "bohb"])
    parser.add_argument("--trials", nargs="+", type=int, default=[300, 1000, 3000])
    parser.add_argument("--n-workers", type=int, default=4)
    parser.add_argument("--dataset", default=None, help="the NAS-Bench-201 table (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=900,
                        help="seconds a run may take (imports excluded); a slower one is stopped and reported "
                             "as '> limit'")
    parser.add_argument("--with-syne-tune-path", action="store_true",
                        help="also time --backend simulated_syne_tune (the path before the engine)")
    parser.add_argument("--one", nargs=3, metavar=("PATH", "SCHEDULER", "TRIALS"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.one:
        path, scheduler, trials = options.one
        seconds, ran = measure_one(path, scheduler, int(trials), options.n_workers, options.dataset, options.seed,
                                   options.time_limit)
        print(json.dumps({"seconds": seconds, "trials": ran}))
        return 0
    paths = [p for p in PATHS if p != "syne_tune_path" or options.with_syne_tune_path]
    print(f"NAS-Bench-201 table {options.dataset or '(shipped)'}, {options.n_workers} workers, seed {options.seed}; "
          "seconds per run, one process each, imports excluded.")
    header = ["scheduler (stock runs)", "trials", *[f"{p} s" for p in paths], "stock / engine", "engine ms/trial"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    table: dict[tuple[str, int, str], tuple[float, int | None]] = {}
    notes = []
    for scheduler in options.schedulers:
        stock_name = STOCK_COUNTERPART.get(scheduler, scheduler)
        for trials in options.trials:
            for path in paths:
                table[scheduler, trials, path] = _measure(path, scheduler, trials, options)
            (engine, engine_ran), (stock, stock_ran) = table[scheduler, trials, "engine"], table[scheduler, trials,
                                                                                                 "stock"]
            ratio = "–" if engine_ran is None else f"{stock / engine:.1f}x" if stock_ran is not None else \
                f"> {stock / engine:.0f}x"
            name = scheduler if stock_name == scheduler else f"{scheduler} ({stock_name})"
            per_trial = f"{1000 * engine / engine_ran:.2f}" if engine_ran else "–"
            print(f"| {name} | {trials} | " + " | ".join(_fmt(*table[scheduler, trials, p]) for p in paths)
                  + f" | {ratio} | {per_trial} |", flush=True)
            ran = {p: table[scheduler, trials, p][1] for p in paths}
            if any(n is not None and n != trials for n in ran.values()):
                notes.append(f"  {scheduler}, {trials} asked: trials run " + ", ".join(
                    f"{p} {n if n is not None else '?'}" for p, n in ran.items()))
    if notes:
        print("\nRuns that ran fewer trials than asked (their scheduler had nothing left to run):")
        print("\n".join(notes))
    if {1000, 3000} <= set(options.trials):
        print("\nGrowth from 1,000 to 3,000 trials (3.0 is flat time per trial; target for the engine: at most 3.5):")
        for scheduler in options.schedulers:
            growth = {p: table[scheduler, 3000, p][0] / table[scheduler, 1000, p][0] for p in paths
                      if table[scheduler, 3000, p][1] is not None and table[scheduler, 1000, p][1] is not None}
            print(f"  {scheduler}: " + ", ".join(f"{p} {g:.2f}x" for p, g in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
