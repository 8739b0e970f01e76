"""Run a checked ``LaunchPlan``: scheduler + backend -> Syne Tune ``Tuner`` (or the backend's own engine) -> results
folder, then a summary."""
import contextlib
import logging
import os
import platform
import random
import shlex
import shutil
import sys
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from syne_tune import StoppingCriterion, Tuner
from syne_tune.tuner_callback import TunerCallback

from launchers import session
from launchers.cli import LaunchPlan
from launchers.guard import ReportError, RunGuard, TooManyFailures
from launchers.progress import ProgressBar
from launchers.resume import ResumeError
from launchers.results import ResultsWriter
from launchers.signals import exit_code, interruptible
from schedulers.trial_limit import TrialLimit


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("syne-tune", "torch", "torchvision", "numpy", "pandas", "ConfigSpace"):
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            versions[package] = package_metadata.version(package)
    return versions


def table_noise(seed_noise: float | None, n_seeds: int, table_seed: str | int) -> dict[str, Any] | None:
    """The noise of the table's answers this run sees: one seed's (``--table-seed random|N``) or the mean's; for a
    table of one seed, which cannot measure it, None values. None where the benchmark has no table."""
    if not n_seeds:
        return None
    per_answer = n_seeds if table_seed == "mean" else 1
    return {"seed_sd": seed_noise, "seeds_per_answer": per_answer,
            "answer_se": None if seed_noise is None else seed_noise / per_answer ** 0.5}


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
        "simulated_time": plan.backend.simulated_time,  # tuner_time in simulated seconds (for the analysis)
        "table_seed": args.table_seed if plan.backend.uses_table else None,
        "sampling": benchmark.sampling_note or "the whole config space",
        "table_noise": table_noise(benchmark.seed_noise, len(benchmark.table_seeds), args.table_seed),
        "dataset": benchmark.dataset,
        "dataset_path": args.dataset_path,
        "training_script": str(benchmark.script) if benchmark.script else None,
        "stop_criterion": {"max_wallclock_time": args.max_wallclock_time, "max_num_trials": args.max_num_trials},
        "config_space": {name: str(domain) for name, domain in benchmark.config_space.items()},
        "command_line": shlex.join([sys.executable, *sys.argv]),
        "versions": _versions(),
        # What --resume needs to start the run again as it was: its flags, as checked, and where it ran.
        "launch": {"args": {k: v for k, v in vars(args).items() if k != "resume"}, "cwd": os.getcwd()},
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
    failed = len(writer.failed_trials())
    lines = [f"Tuning {status}: {len(writer.trials)} trials{f' ({failed} failed)' if failed else ''}, "
             f"{len(writer.rows)} reports."]
    if best is None:
        lines.append(f"No trial reported a finite {writer.metric}.")
    else:
        config = ", ".join(f"{k[len('config_'):]}={v}" for k, v in best.items() if k.startswith("config_"))
        lines.append(f"Best {writer.metric}: {best['best_metric']:.6g} (trial {best['trial_id']}, "
                     f"{writer.resource_attr} {_best_report_epoch(writer, best)} of {best['epochs']})")
        lines.append(f"Best configuration: {config}")
    lines.append(f"Results: {folder}/ (results.csv, trials.csv, metadata.json)")
    return "\n".join(lines)


def _best_report_epoch(writer: ResultsWriter, best: dict[str, Any]) -> Any:
    """The resource level of the best trial's best report: a trial that ran 9 epochs may have been best at 8."""
    return next((row.get(writer.resource_attr) for row in writer.rows
                 if row["trial_id"] == best["trial_id"] and row.get(writer.metric) == best["best_metric"]), "?")


def _last_failure(writer: ResultsWriter, folder: Path) -> str:
    """How the last failed trial ended: the last line of its stderr, and where the rest is."""
    failed = writer.failed_trials()
    if not failed:
        return ""
    trial_id = failed[-1]
    stderr = folder / "trials" / str(trial_id) / "std.err"
    last = stderr.read_text(errors="replace").strip().splitlines()[-1:] if stderr.exists() else []
    return f"trial {trial_id} ended with: {last[0] if last else '(no output)'} (full log: {stderr})"


def _failure_message(writer: ResultsWriter, folder: Path) -> str:
    failed = writer.failed_trials()
    return f"{len(failed)} trial(s) failed; {_last_failure(writer, folder)}." if failed else ""


def _no_result_message(writer: ResultsWriter, folder: Path) -> str:
    """Why a run that ended found nothing, in one sentence."""
    if not writer.trials:
        return "No trial was started, so there is no result."
    failure = _failure_message(writer, folder)
    if failure:
        return f"No trial reported a finite {writer.metric}: {failure}"
    return (f"No trial reported a finite {writer.metric} ({len(writer.rows)} reports, none with a finite value); "
            f"see the trials' output under {folder / 'trials'}.")


def run(plan: LaunchPlan, progress_bar: bool = True, callbacks: Sequence[TunerCallback] = ()) -> int:
    """Tune as planned, writing the results folder as results arrive; returns the exit code.

    ``progress_bar``: draw one on stderr; ``callbacks``: more tuner callbacks (e.g. ``compare.py``'s progress)."""
    args, benchmark, budget, folder = plan.args, plan.benchmark, plan.budget, plan.folder
    try:  # what the user can get wrong, found before anything is written: one sentence, exit status 2
        session.check_data(plan)
        random.seed(args.seed)
        np.random.seed(args.seed)  # Syne Tune draws brackets and some configs from numpy's global generator
        config_space = benchmark.script_config_space(budget.max_resource, args.dataset_path)
        # Each scheduler honours the benchmark's equivalence and evaluable configurations in its own way.
        scheduler = plan.scheduler.build(config_space, benchmark.metric, benchmark.mode, budget, args.seed,
                                         config_key=benchmark.config_key, accepts=benchmark.accepts,
                                         configspace=benchmark.configspace() if benchmark.configspace else None)
        backend = plan.backend.start(benchmark, args.n_workers, args.table_seed, args.seed, plan.backend_options)
    except session.UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except ValueError as error:
        if not session.said_for_the_user(error):
            raise
        print(error, file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    if args.max_num_trials is not None:
        scheduler = TrialLimit(scheduler, args.max_num_trials)
    writer = ResultsWriter(folder, session.metadata(plan, experiment_metadata(plan, config_space)),
                           hyperparameters=list(benchmark.config_space), metric=benchmark.metric,
                           mode=benchmark.mode, budget=budget, scheduler_columns=plan.scheduler.columns)
    try:  # a resumed run first rebuilds where it stopped; a local run journals its scheduler, to be resumable
        scheduler, resumed = session.prepare(plan, scheduler, backend, writer)
    except ResumeError as error:
        print(error, file=sys.stderr)
        return 1
    progress = [ProgressBar(writer, args.max_num_trials, args.max_wallclock_time,
                            time_unit="simulated s" if plan.backend.simulated_time else "s")] if progress_bar else []
    monitors = []
    if args.tensorboard:  # imported only with the flag: a run without it loads nothing more
        from launchers.tensorboard import TensorBoardLogger

        if plan.previous is not None and plan.backend.simulated_time:  # the resumed simulation reports all again
            shutil.rmtree(folder / "tensorboard", ignore_errors=True)
        monitors.append(TensorBoardLogger(folder / "tensorboard", list(benchmark.config_space),
                                          budget.resource_attr, clock=writer.tuner_time))
        print(f"TensorBoard, live: tensorboard --logdir {folder / 'tensorboard'}")
    max_wallclock_time = args.max_wallclock_time if args.max_wallclock_time is not None else float("inf")
    max_wallclock_time -= resumed.spent  # a resumed run's budget counts the time already spent
    guard = RunGuard(writer, benchmark.metric, budget.resource_attr, args.max_failures, folder / "trials")
    # Syne Tune writes its own bookkeeping under <folder>/syne-tune and the trials' logs under <folder>/trials.
    os.environ["SYNETUNE_FOLDER"] = str(folder.resolve())
    log_file = folder / "tuner.log"
    _configure_logging(log_file, args.verbose)
    status, code, error = "finished", 0, None
    try:
        # `kill` and a closed terminal clean up like Ctrl-C: trials stopped, results kept, resumable
        with contextlib.ExitStack() as stack, interruptible():
            if not args.verbose:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(log_file, "a"))))
            if backend.engine is not None:  # it runs the tuning loop itself, in place of Syne Tune's Tuner
                backend.engine.run(scheduler, args.n_workers,
                                   [writer, *resumed.callbacks, *monitors, *progress, *callbacks], max_wallclock_time)
            else:
                tuner = Tuner(
                    trial_backend=backend.trial_backend, scheduler=scheduler,
                    stop_criterion=StoppingCriterion(max_wallclock_time=max(max_wallclock_time, 1e-9)),
                    n_workers=args.n_workers, sleep_time=backend.sleep_time,
                    callbacks=[*backend.callbacks, guard, writer, *monitors, *progress, *callbacks],
                    # Failed trials are data; the guard decides when there are too many.
                    tuner_name="syne-tune", suffix_tuner_name=False, save_tuner=False, max_failures=sys.maxsize,
                    trial_backend_path=str((folder / "trials").resolve()),
                )
                tuner.last_seen_result_per_trial.update(resumed.last_results)
                tuner.run()
            resumed.check()
    except KeyboardInterrupt as interrupt:
        status, code = "interrupted", exit_code(interrupt)
    except (ReportError, TooManyFailures, ResumeError) as exc:  # one sentence says it all
        status, code, error = "failed", 2 if isinstance(exc, ReportError) else 1, exc
        logging.getLogger(__name__).error("Tuning stopped: %s", exc)
    except Exception as exc:  # report what went wrong in one sentence; the details stay in the log
        status, code, error = "failed", 1, exc
        logging.getLogger(__name__).exception("Tuning failed")
    finally:
        writer.finish(status)
        for monitor in monitors:
            monitor.close()
        resumed.close(keep_checkpoints=status == "interrupted")
    print(_summary(writer, folder, status))
    if isinstance(error, (ReportError, ResumeError)):
        print(error, file=sys.stderr)
    elif isinstance(error, TooManyFailures):
        print(f"{str(error).rstrip('.')}; {_last_failure(writer, folder)}.", file=sys.stderr)
    elif error is not None:
        print(f"Tuning failed: {error}. Syne Tune's log: {log_file}", file=sys.stderr)
    elif status == "finished" and writer.best_trial() is None:
        print(_no_result_message(writer, folder), file=sys.stderr)
        code = 1
    return code
