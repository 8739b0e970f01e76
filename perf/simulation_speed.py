"""Simulation speed: our engine (``--backend simulated``) with our schedulers against Syne Tune's stock Tuner +
simulator with Syne Tune's schedulers for the same methods, on the same table and the same number of trials, side by
side in one run.

- stock: Syne Tune's ``Tuner`` with its ``UserBlackboxBackend`` and ``SimulatorCallback`` as shipped (a simulated tick
  of 5 s while all workers are busy, its own results store), driving Syne Tune's own scheduler for the method:
  ``RandomSearch`` (kept to one trial per class, as ours), ``AsynchronousSuccessiveHalving`` with a random searcher
  in Li et al.'s brackets for ``asha``, its BOHB (``async_bohb``) for ``bohb``; each kept to the cells the table
  measured and stopped after N trials. The Tuner's default of saving itself every 10 s is turned off unless
  ``--save-tuner`` is given: it pickles the whole tuner, table included, and that alone takes minutes of a
  3,000-trial run.
- engine: ``launchers.run.run`` on ``--backend simulated``, writing the results folder as a launch does (no progress
  bar). Both sides are timed from the start of the tuning loop to its end (results written); building the scheduler
  and the backend is left out on both.
- syne_tune_path: ``--backend simulated_syne_tune``, the path before the engine (with ``--with-syne-tune-path``).

The seconds spent inside the scheduler's calls (``suggest``, ``on_trial_result``, ...) are counted on both sides, so the
speed-up is also given outside the scheduler: what the engine itself gains over the Tuner. Each run is a process of its
own; interpreter start, imports and table loading are left out. A run still going after ``--time-limit`` seconds is
stopped and shown as "> limit" (a lower bound).

Targets (issue 13): at 3,000 trials the engine is at least 10x faster than stock for random search, asha and bohb,
and 3,000 trials cost the engine at most 3.5x what 1,000 cost for random search and asha.

    python perf/simulation_speed.py [--schedulers random_search asha bohb] [--trials 300 1000 3000]
        [--n-workers 4] [--dataset mnist10k | --synthetic-table] [--seed 0] [--repeat 1] [--time-limit 900]
        [--save-tuner]
        [--with-syne-tune-path]
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
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
# The scheduler the stock side runs for each of ours: Syne Tune's own counterpart (see ``stock_scheduler``).
STOCK_COUNTERPART = {"bohb": "async_bohb", "random_search": "RandomSearch", "asha": "ASHA"}
PATHS = ("stock", "engine", "syne_tune_path")
SCHEDULER_CALLS = ("suggest", "on_trial_add", "on_trial_result", "on_trial_complete", "on_trial_remove",
                   "on_trial_error")


def timed_scheduler(scheduler: Any) -> Any:
    """``scheduler`` wrapped so that the seconds spent in its decision calls add up in ``.seconds``."""
    from schedulers.wrapper import SchedulerWrapper

    class Timed(SchedulerWrapper):
        seconds = 0.0

    def timing(name: str):
        def call(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return getattr(self.scheduler, name)(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return call

    for name in SCHEDULER_CALLS:
        setattr(Timed, name, timing(name))
    return Timed(scheduler)


class _OverTime(BaseException):
    """The run went past its time limit (a BaseException: the launcher's run must not take it for a failure)."""


def write_synthetic_table(path: Path, epochs: int = 9, seed: int = 0) -> Path:
    """A NAS-Bench-201 table that answers every cell (15,625, one seed): smooth learning curves, epochs of 0.5-1 s.
    With it no scheduler runs out of configurations or redraws ones the table lacks."""
    import numpy as np

    from benchmarks.nasbench201.encoding import NUM_ARCHS
    from benchmarks.nasbench201.table import NB201Table

    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.03, 0.9, size=(NUM_ARCHS, 1, 1))
    valid_error = np.clip(quality + 0.5 / np.arange(1, epochs + 1) + rng.normal(0, 0.01, (NUM_ARCHS, 1, epochs)), 0, 1)
    metrics = {"valid_error": valid_error, "valid_loss": 2 * valid_error, "train_loss": 1.5 * valid_error,
               "test_error": np.clip(valid_error + rng.normal(0, 0.005, valid_error.shape), 0, 1),
               "epoch_time": np.broadcast_to(rng.uniform(0.5, 1.0, (NUM_ARCHS, 1, 1)), valid_error.shape)}
    return NB201Table(np.arange(NUM_ARCHS), [0], {k: np.ascontiguousarray(v, dtype=np.float32)
                                                  for k, v in metrics.items()}, dataset="synthetic-full").save(path)


def _plan(scheduler: str, backend: str, trials: int, options: argparse.Namespace, out: str):
    from launchers.cli import parse_args

    flags = ["--scheduler", scheduler, "--backend", backend, "--benchmark", "nasbench201", "--max-num-trials",
             str(trials), "--n-workers", str(options.n_workers), "--seed", str(options.seed), "--results-dir", out,
             "--experiment-name", "run"]
    return parse_args(None, flags + (["--dataset", options.dataset] if options.dataset else []))


def _launch(plan) -> tuple[Callable[[], tuple[int, float]], list[Any]]:
    """A function that runs ``plan`` as ``launch.py`` does (no progress bar) and returns the trials run and when the
    tuning loop started; and where the timed scheduler will be."""
    import pandas as pd
    from syne_tune.tuner_callback import TunerCallback

    import launchers.run

    timed: list[Any] = []
    trial_limit = launchers.run.TrialLimit
    launchers.run.TrialLimit = lambda scheduler, n: timed.append(timed_scheduler(trial_limit(scheduler, n))) or \
        timed[-1]

    class Started(TunerCallback):
        at = time.perf_counter()

        def on_tuning_start(self, tuner):
            self.at = time.perf_counter()

    def launch() -> tuple[int, float]:
        started = Started()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            code = launchers.run.run(plan, progress_bar=False, callbacks=[started])
        if code != 0:
            raise RuntimeError(f"the run failed (exit code {code}); see {plan.folder}/tuner.log")
        return len(pd.read_csv(plan.folder / "trials.csv")), started.at
    return launch, timed


def stock_scheduler(plan, counterpart: str, config_space: dict[str, Any]) -> Any:
    """Syne Tune's scheduler for ``plan``: its ``RandomSearch`` and ``AsynchronousSuccessiveHalving`` (random
    searcher, Li et al.'s brackets) kept to what the table answers as ours are (random search: each class once), or
    the registry's entry (``async_bohb``, Syne Tune's BOHB)."""
    from syne_tune.optimizer.baselines import RandomSearch
    from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

    from schedulers import asha
    from schedulers.accepted_only import accepted_only

    args, benchmark, budget = plan.args, plan.benchmark, plan.budget
    minimise = benchmark.mode == "min"
    if counterpart == "RandomSearch":
        return accepted_only(RandomSearch(config_space, metrics=[benchmark.metric], do_minimize=minimise,
                                          random_seed=args.seed), benchmark.accepts, benchmark.config_key,
                             distinct=True)
    if counterpart == "ASHA":
        return accepted_only(AsynchronousSuccessiveHalving(
            config_space=config_space, metric=benchmark.metric, do_minimize=minimise, time_attr=budget.resource_attr,
            searcher="random_search", random_seed=args.seed, **asha.arguments(config_space, budget)),
            benchmark.accepts)
    return plan.scheduler.build(config_space, benchmark.metric, benchmark.mode, budget, args.seed,
                                config_key=benchmark.config_key, accepts=benchmark.accepts)


def _stock(plan, counterpart: str, save_tuner: bool) -> tuple[Callable[[], tuple[int, float]], list[Any]]:
    """A function that runs ``plan``'s scheduler on Syne Tune's stock Tuner + simulator and returns the trials run
    and when it started; and the timed scheduler."""
    import numpy as np
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend

    from schedulers.trial_limit import TrialLimit

    args, benchmark, budget = plan.args, plan.benchmark, plan.budget
    random.seed(args.seed)
    np.random.seed(args.seed)
    config_space = benchmark.script_config_space(budget.max_resource, args.dataset_path)
    scheduler = timed_scheduler(TrialLimit(stock_scheduler(plan, counterpart, config_space), args.max_num_trials))
    backend = UserBlackboxBackend(blackbox=benchmark.blackbox(), elapsed_time_attr="elapsed_time",
                                  max_resource_attr=benchmark.epochs_flag)
    os.environ["SYNETUNE_FOLDER"] = str(plan.folder.resolve())
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, n_workers=args.n_workers, sleep_time=0,
                  stop_criterion=StoppingCriterion(max_wallclock_time=1e12), callbacks=[SimulatorCallback()],
                  tuner_name="stock", suffix_tuner_name=False, save_tuner=save_tuner)

    def stock() -> tuple[int, float]:
        started = time.perf_counter()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            tuner.run()
        return tuner.tuning_status.num_trials_started, started
    return stock, [scheduler]


def measure_one(path: str, scheduler: str, trials: int, options: argparse.Namespace) -> dict[str, Any]:
    """One run on ``path`` in this process: seconds, trials run (None if stopped at the time limit) and seconds spent
    in the scheduler."""
    import benchmarks.nasbench201.blackbox  # noqa: F401  (imported before the clock starts, for every path)

    def over(signum, frame):
        raise _OverTime

    with tempfile.TemporaryDirectory() as out:
        if path == "stock":
            from schedulers.registry import SCHEDULERS

            counterpart = STOCK_COUNTERPART.get(scheduler, scheduler)
            plan = _plan(counterpart if counterpart in SCHEDULERS else scheduler, "simulated", trials, options, out)
            run, timed = _stock(plan, counterpart, options.save_tuner)
        else:
            run, timed = _launch(_plan(scheduler, "simulated" if path == "engine" else "simulated_syne_tune", trials,
                                       options, out))
        signal.signal(signal.SIGALRM, over)
        signal.setitimer(signal.ITIMER_REAL, options.time_limit)
        try:
            ran, started = run()
        except _OverTime:
            return {"seconds": options.time_limit, "trials": None, "in_scheduler": None}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return {"seconds": time.perf_counter() - started, "trials": ran, "in_scheduler": timed[0].seconds}


def _measure(path: str, scheduler: str, trials: int, options: argparse.Namespace) -> dict[str, Any]:
    """The fastest of ``--repeat`` runs (what the machine's other load did not slow down)."""
    return min((_measure_once(path, scheduler, trials, options) for _ in range(options.repeat)),
               key=lambda run: run["seconds"])


def _measure_once(path: str, scheduler: str, trials: int, options: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", path, scheduler, str(trials), "--n-workers", str(options.n_workers),
               "--seed", str(options.seed), "--time-limit", str(options.time_limit)]
    command += (["--dataset", options.dataset] if options.dataset else []) + \
        (["--save-tuner"] if options.save_tuner else [])
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{path} {scheduler} {trials}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _seconds(run: dict[str, Any]) -> str:
    return f"{run['seconds']:.2f}" if run["trials"] is not None else f"> {run['seconds']:.0f}"


def _ratio(slow: float, fast: float, bound: bool = False) -> str:
    return f"> {slow / fast:.0f}x" if bound else f"{slow / fast:.1f}x"


def _row(scheduler: str, trials: int, runs: dict[str, dict[str, Any]], paths: list[str]) -> str:
    stock, engine = runs["stock"], runs["engine"]
    name = scheduler if scheduler not in STOCK_COUNTERPART else f"{scheduler} ({STOCK_COUNTERPART[scheduler]})"
    cells = [name, str(trials), *[_seconds(runs[p]) for p in paths]]
    if engine["trials"] is None:
        return "| " + " | ".join(cells + ["–"] * 5) + " |"
    bound = stock["trials"] is None
    cells.append(_ratio(stock["seconds"], engine["seconds"], bound))
    cells.append("–" if bound else f"{stock['in_scheduler']:.2f}")
    cells.append(f"{engine['in_scheduler']:.2f}")
    outside = engine["seconds"] - engine["in_scheduler"]
    cells.append("–" if bound else _ratio(stock["seconds"] - stock["in_scheduler"], outside))
    cells.append(f"{1000 * engine['seconds'] / engine['trials']:.2f}")
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedulers", nargs="+", default=["random_search", "asha", "bohb"])
    parser.add_argument("--trials", nargs="+", type=int, default=[300, 1000, 3000])
    parser.add_argument("--n-workers", type=int, default=4)
    parser.add_argument("--dataset", default=None, help="the NAS-Bench-201 table (default: the shipped one)")
    parser.add_argument("--synthetic-table", action="store_true",
                        help="use a synthetic table that answers all 15,625 cells instead (the shipped one "
                             "measured 2,110 classes: 3,000 trials of a scheduler that never repeats a class run "
                             "out, and draws of unmeasured cells are redrawn)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per measurement, the fastest kept (on a busy machine)")
    parser.add_argument("--time-limit", type=float, default=900,
                        help="seconds a run may take (imports excluded); a slower one is stopped and shown as "
                             "'> limit'")
    parser.add_argument("--save-tuner", action="store_true",
                        help="let the stock Tuner save itself every 10 s, its default")
    parser.add_argument("--with-syne-tune-path", action="store_true",
                        help="also time --backend simulated_syne_tune (the path before the engine)")
    parser.add_argument("--one", nargs=3, metavar=("PATH", "SCHEDULER", "TRIALS"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.one:
        path, scheduler, trials = options.one
        print(json.dumps(measure_one(path, scheduler, int(trials), options)))
        return 0
    if options.synthetic_table:
        folder = tempfile.TemporaryDirectory()
        options.dataset = str(write_synthetic_table(Path(folder.name) / "synthetic-full.npz"))
    paths = [p for p in PATHS if p != "syne_tune_path" or options.with_syne_tune_path]
    saving = "saving itself every 10 s (its default)" if options.save_tuner else "not saving itself"
    table_name = "synthetic, every cell answered" if options.synthetic_table else options.dataset or "shipped"
    print(f"NAS-Bench-201 table ({table_name}), {options.n_workers} workers, seed {options.seed}; "
          f"seconds per run (fastest of {options.repeat}), imports excluded; stock Tuner {saving}.")
    header = ["scheduler (stock runs)", "trials", *[f"{p} s" for p in paths], "stock / engine",
              "in scheduler: stock s", "engine s", "stock / engine outside the scheduler", "engine ms/trial"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    table: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    notes = []
    for scheduler in options.schedulers:
        for trials in options.trials:
            runs = table[scheduler, trials] = {path: _measure(path, scheduler, trials, options) for path in paths}
            print(_row(scheduler, trials, runs, paths), flush=True)
            if any(run["trials"] not in (None, trials) for run in runs.values()):
                notes.append(f"  {scheduler}, {trials} asked: " + ", ".join(
                    f"{p} ran {run['trials'] if run['trials'] is not None else '?'}" for p, run in runs.items()))
    if notes:
        print("\nRuns with fewer trials than asked (their scheduler had nothing left to run):")
        print("\n".join(notes))
    if {1000, 3000} <= set(options.trials):
        print("\nGrowth from 1,000 to 3,000 trials (3.0 is flat time per trial; target for the engine: at most 3.5):")
        for scheduler in options.schedulers:
            growth = {p: table[scheduler, 3000][p]["seconds"] / table[scheduler, 1000][p]["seconds"] for p in paths
                      if table[scheduler, 3000][p]["trials"] and table[scheduler, 1000][p]["trials"]}
            print(f"  {scheduler}: " + ", ".join(f"{p} {g:.2f}x" for p, g in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
