"""Run a checked ``LaunchPlan``: scheduler + backend -> Syne Tune ``Tuner`` (or the backend's own engine) -> results
folder, then a summary."""
import contextlib
import logging
import os
import platform
import random
import shlex
import signal
import sys
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from syne_tune import StoppingCriterion, Tuner
from syne_tune.tuner_callback import TunerCallback

from launchers.cli import LaunchPlan
from launchers.progress import ProgressBar
from launchers.results import ResultsWriter
from schedulers.trial_limit import TrialLimit


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("syne-tune", "torch", "torchvision", "numpy", "pandas", "ConfigSpace"):
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            versions[package] = package_metadata.version(package)
    return versions


def experiment_metadata(plan: LaunchPlan, config_space: dict[str, Any]) -> dict[str, Any]:
    """What ``metadata.json`` records about the run (times and status are added by the writer)."""
    args, benchmark = plan.args, plan.benchmark
    return {
        "experiment_name": args.experiment_name,
        "benchmark": benchmark.name,
        "metric": benchmark.metric,
        "mode": benchmark.mode,
        "budget": plan.budget.to_dict(),
        "scheduler": plan.scheduler.name,
        "scheduler_kwargs": plan.scheduler.arguments(config_space, plan.budget),
        "trial_columns": list(plan.scheduler.columns),
        "seed": args.seed,
        "n_workers": args.n_workers,
        "backend": plan.backend.name,
        "table_seed": args.table_seed if plan.backend.uses_table else None,
        "sampling": benchmark.sampling_note or "the whole config space",
        "dataset": benchmark.dataset,
        "dataset_path": args.dataset_path,
        "training_script": str(benchmark.script) if benchmark.script else None,
        "stop_criterion": {"max_wallclock_time": args.max_wallclock_time, "max_num_trials": args.max_num_trials},
        "config_space": {name: str(domain) for name, domain in benchmark.config_space.items()},
        "command_line": shlex.join([sys.executable, *sys.argv]),
        "versions": _versions(),
    }


def _configure_logging(log_file: Path, verbose: bool):
    handler = logging.StreamHandler(sys.stdout) if verbose else logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Library warnings (pandas, statsmodels) belong in the log, not between the progress bar's lines.
    logging.captureWarnings(not verbose)


def _summary(writer: ResultsWriter, folder: Path, status: str) -> str:
    best = writer.best_trial()
    lines = [f"Tuning {status}: {len(writer.trials)} trials, {len(writer.rows)} reports."]
    if best is None:
        lines.append("No trial reported a result.")
    else:
        config = ", ".join(f"{k[len('config_'):]}={v}" for k, v in best.items() if k.startswith("config_"))
        lines.append(f"Best {writer.metric}: {best['best_metric']:.6g} (trial {best['trial_id']}, "
                     f"{best['epochs']} epochs)")
        lines.append(f"Best configuration: {config}")
    lines.append(f"Results: {folder}/ (results.csv, trials.csv, metadata.json)")
    return "\n".join(lines)


def _failure_message(writer: ResultsWriter, folder: Path) -> str:
    failed = [t["trial_id"] for t in writer.trials.values() if t["status"] == "Failed"]
    if not failed:
        return ""
    trial_id = failed[-1]
    stderr = folder / "trials" / str(trial_id) / "std.err"
    last = stderr.read_text().strip().splitlines()[-1:] if stderr.exists() else []
    return (f"{len(failed)} trial(s) failed; trial {trial_id} ended with: {last[0] if last else '(no output)'} "
            f"(full log: {stderr}).")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(plan: LaunchPlan, progress_bar: bool = True, callbacks: Sequence[TunerCallback] = ()) -> int:
    """Tune as planned, writing the results folder as results arrive; returns the exit code.

    ``progress_bar``: draw one on stderr; ``callbacks``: more tuner callbacks (e.g. ``compare.py``'s progress)."""
    args, benchmark, budget, folder = plan.args, plan.benchmark, plan.budget, plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)  # Syne Tune draws brackets and some configs from numpy's global generator
    config_space = benchmark.script_config_space(budget.max_resource, args.dataset_path)
    # Each scheduler honours the benchmark's equivalence and evaluable configurations in its own way.
    scheduler = plan.scheduler.build(config_space, benchmark.metric, benchmark.mode, budget, args.seed,
                                     config_key=benchmark.config_key, accepts=benchmark.accepts,
                                     configspace=benchmark.configspace() if benchmark.configspace else None)
    if args.max_num_trials is not None:
        scheduler = TrialLimit(scheduler, args.max_num_trials)
    backend = plan.backend.start(benchmark, args.n_workers, args.table_seed, args.seed, plan.backend_options)
    writer = ResultsWriter(folder, experiment_metadata(plan, config_space),
                           hyperparameters=list(benchmark.config_space), metric=benchmark.metric,
                           mode=benchmark.mode, budget=budget, scheduler_columns=plan.scheduler.columns)
    progress = [ProgressBar(writer, args.max_num_trials, args.max_wallclock_time,
                            time_unit="simulated s" if plan.backend.simulated_time else "s")] if progress_bar else []
    max_wallclock_time = args.max_wallclock_time if args.max_wallclock_time is not None else float("inf")
    # Syne Tune writes its own bookkeeping under <folder>/syne-tune and the trials' logs under <folder>/trials.
    os.environ["SYNETUNE_FOLDER"] = str(folder.resolve())
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C: trials stopped, results kept
    log_file = folder / "tuner.log"
    _configure_logging(log_file, args.verbose)
    status, code, error = "finished", 0, None
    try:
        with contextlib.ExitStack() as stack:
            if not args.verbose:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(log_file, "a"))))
            if backend.engine is not None:  # it runs the tuning loop itself, in place of Syne Tune's Tuner
                backend.engine.run(scheduler, args.n_workers, [writer, *progress, *callbacks], max_wallclock_time)
            else:
                tuner = Tuner(
                    trial_backend=backend.trial_backend, scheduler=scheduler,
                    stop_criterion=StoppingCriterion(max_wallclock_time=max_wallclock_time),
                    n_workers=args.n_workers, sleep_time=backend.sleep_time,
                    callbacks=[*backend.callbacks, writer, *progress, *callbacks],
                    tuner_name="syne-tune", suffix_tuner_name=False, save_tuner=False, max_failures=args.n_workers,
                    trial_backend_path=str((folder / "trials").resolve()),
                )
                tuner.run()
    except KeyboardInterrupt:
        status, code = "interrupted", 130
    except Exception as exc:  # report what went wrong in one sentence; the details stay in the log
        status, code, error = "failed", 1, exc
        logging.getLogger(__name__).exception("Tuning failed")
    finally:
        writer.finish(status)
    print(_summary(writer, folder, status))
    if error is not None:
        message = _failure_message(writer, folder) or f"Tuning failed: {error}."
        print(f"{message} Syne Tune's log: {log_file}", file=sys.stderr)
    return code
