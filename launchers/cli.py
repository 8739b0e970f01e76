"""The launchers' shared flags and wiring: benchmark + scheduler + backend -> Syne Tune Tuner -> results folder."""
import argparse
import contextlib
import logging
import os
import platform
import random
import shlex
import signal
import sys
from datetime import datetime
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np

from benchmarks.configspace_json import ConfigSpaceFileError
from benchmarks.nasbench201.table import TableError
from benchmarks.registry import BENCHMARKS, NASBENCH201_DEFAULT_TABLE, Benchmark, custom_benchmark, get_benchmark
from launchers.backends import local_backend, simulated_backend
from launchers.results import ResultsWriter
from schedulers.factory import SCHEDULERS, make_scheduler, scheduler_arguments

DEFAULT_MAX_WALLCLOCK_TIME = 600.0
DEFAULT_SIMULATED_TRIALS = 100
# Seconds the tuner sleeps while all workers are busy; Syne Tune's default of 5 s adds seconds to every trial.
TUNER_SLEEP_TIME = 0.05
SCHEDULER_NAMES = {"random_search": "random search", "hyperband": "Hyperband", "bohb": "BOHB"}
CUSTOM_FLAGS = ("training_script", "config_space", "metric", "mode", "resource_attr", "max_resource")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones (None, False) that say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser(scheduler: str) -> argparse.ArgumentParser:
    """The command-line flags common to all launchers."""
    parser = argparse.ArgumentParser(
        description=f"Tune a training script with {SCHEDULER_NAMES[scheduler]} on Syne Tune and write "
                    "results/<experiment>/{results.csv, trials.csv, metadata.json}.",
        epilog=f"The run stops by itself after --max-wallclock-time seconds (default {DEFAULT_MAX_WALLCLOCK_TIME:.0f}) "
               "or, with --max-num-trials N, once N trials have finished, whichever comes first; trials still "
               "running at the time limit are stopped. On the simulated backend the time is simulated and the "
               f"default is {DEFAULT_SIMULATED_TRIALS} trials. Ctrl-C stops every trial and keeps the results "
               "written so far.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--benchmark", default="mnist_convnet",
                        help=f"registered benchmark to tune: {', '.join(sorted(BENCHMARKS))}")
    parser.add_argument("--n-workers", type=int, default=4, help="trials run in parallel")
    parser.add_argument("--max-wallclock-time", type=float, default=None,
                        help="stop after this many seconds of tuning (simulated seconds on the simulated backend); "
                             f"default {DEFAULT_MAX_WALLCLOCK_TIME:.0f} on the local backend, none on the "
                             "simulated one")
    parser.add_argument("--max-num-trials", type=int, default=None,
                        help="start no more than this many trials; the run ends when they have finished "
                             f"(default on the simulated backend: {DEFAULT_SIMULATED_TRIALS})")
    parser.add_argument("--min-epochs", type=int, default=1, help="smallest budget (Hyperband/BOHB rung)")
    parser.add_argument("--max-epochs", type=int, default=None, help="largest budget (default: the benchmark's)")
    parser.add_argument("--eta", type=float, default=3, help="reduction factor of successive halving")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scheduler's random choices")
    parser.add_argument("--results-dir", default="results", help="folder that receives the experiment folder")
    parser.add_argument("--experiment-name", default=None,
                        help="name of the experiment folder (default: <benchmark>-<scheduler>-<timestamp>)")
    parser.add_argument("--dataset-path", default=None,
                        help="data folder handed to the training script (default: the script's own, data/)")
    parser.add_argument("--dataset", default=None,
                        help="nasbench201: table name in benchmarks/nasbench201/data/ or a .npz path (default "
                             f"{NASBENCH201_DEFAULT_TABLE}); nasbench201_train: mnist or cifar10")
    parser.add_argument("--backend", choices=["local", "simulated"], default="local",
                        help="local: every trial is a process on this machine; simulated: tabulated benchmarks "
                             "(nasbench201) replayed on Syne Tune's simulator in simulated time")
    parser.add_argument("--verbose", action="store_true",
                        help="print Syne Tune's per-trial log instead of writing it to <experiment>/tuner.log")
    custom = parser.add_argument_group(
        "any training script", "tune your own script instead of a registered benchmark; give all six flags")
    custom.add_argument("--training-script", default=None, help="script that reports through syne_tune.Reporter")
    custom.add_argument("--config-space", default=None, help="ConfigSpace JSON file with the hyperparameters")
    custom.add_argument("--metric", default=None, help="reported metric to optimise")
    custom.add_argument("--mode", choices=["min", "max"], default=None, help="minimise or maximise the metric")
    custom.add_argument("--resource-attr", default=None, help="reported budget counter, e.g. epoch")
    custom.add_argument("--max-resource", type=int, default=None, help="largest value of the budget counter")
    return parser


def parse_args(scheduler: str, argv: list[str] | None = None) -> tuple[argparse.Namespace, Benchmark]:
    """Parse and check the flags; bad input exits with one sentence that names it (argparse's ``error``)."""
    parser = build_parser(scheduler)
    args = parser.parse_args(argv)
    benchmark = _resolve_benchmark(parser, args)
    checks = [
        (args.n_workers >= 1, f"--n-workers must be at least 1, got {args.n_workers}."),
        (args.max_wallclock_time is None or args.max_wallclock_time > 0,
         f"--max-wallclock-time must be positive seconds, got {args.max_wallclock_time}."),
        (args.max_num_trials is None or args.max_num_trials >= 1,
         f"--max-num-trials must be at least 1, got {args.max_num_trials}."),
        (args.eta > 1, f"--eta must be greater than 1, got {args.eta}."),
        (args.min_epochs >= 1, f"--min-epochs must be at least 1, got {args.min_epochs}."),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    if args.backend == "simulated":
        if benchmark.blackbox is None:
            parser.error(f"--backend simulated needs a tabulated benchmark, and '{benchmark.name}' has no table: use "
                         "--benchmark nasbench201.")
        if args.max_wallclock_time is None and args.max_num_trials is None:
            args.max_num_trials = DEFAULT_SIMULATED_TRIALS
    elif args.max_wallclock_time is None:
        args.max_wallclock_time = DEFAULT_MAX_WALLCLOCK_TIME
    args.max_epochs = benchmark.max_resource if args.max_epochs is None else args.max_epochs
    if not args.min_epochs <= args.max_epochs <= benchmark.max_resource:
        parser.error(f"--min-epochs {args.min_epochs} and --max-epochs {args.max_epochs} must satisfy "
                     f"1 <= min <= max <= {benchmark.max_resource} (the benchmark's largest budget).")
    if args.dataset is not None and benchmark.dataset_flag is None:
        parser.error(f"--dataset applies to nasbench201 and nasbench201_train, not to '{benchmark.name}'.")
    if args.dataset_path is not None:
        if benchmark.dataset_path_flag is None:
            parser.error("--dataset-path applies to registered benchmarks only; put your script's data flag into "
                         "its config space as a constant.")
        args.dataset_path = str(Path(args.dataset_path).expanduser().resolve())
    args.experiment_name = args.experiment_name or \
        f"{benchmark.name}-{scheduler}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    args.folder = Path(args.results_dir) / args.experiment_name
    if args.folder.exists() and any(args.folder.iterdir()):
        parser.error(f"Results folder '{args.folder}' already exists and is not empty: choose another "
                     "--experiment-name or --results-dir.")
    return args, benchmark


def _resolve_benchmark(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Benchmark:
    given = [name for name in CUSTOM_FLAGS if getattr(args, name) is not None]
    if not given:
        if args.benchmark not in BENCHMARKS:
            parser.error(f"Unknown benchmark '{args.benchmark}': choose one of {', '.join(sorted(BENCHMARKS))}.")
        try:
            return get_benchmark(args.benchmark, args.dataset)
        except TableError as error:
            parser.error(str(error))
    missing = [name for name in CUSTOM_FLAGS if name not in given]
    if missing:
        missing = ", ".join("--" + name.replace("_", "-") for name in missing)
        parser.error("Tuning your own script needs all of --training-script, --config-space, --metric, --mode, "
                     f"--resource-attr and --max-resource; missing: {missing}.")
    if not Path(args.training_script).is_file():
        parser.error(f"Training script '{args.training_script}' does not exist: pass the path of a Python script.")
    if args.max_resource < 1:
        parser.error(f"--max-resource must be at least 1, got {args.max_resource}.")
    try:
        return custom_benchmark(args.training_script, args.config_space, args.metric, args.mode,
                                args.resource_attr, args.max_resource)
    except ConfigSpaceFileError as error:
        parser.error(str(error))


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("syne-tune", "torch", "torchvision", "numpy", "pandas", "ConfigSpace"):
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            versions[package] = package_metadata.version(package)
    return versions


def experiment_metadata(args: argparse.Namespace, benchmark: Benchmark, scheduler: str) -> dict:
    """What ``metadata.json`` records about the run (times and status are added by the writer)."""
    return {
        "experiment_name": args.experiment_name,
        "benchmark": benchmark.name,
        "metric": benchmark.metric,
        "mode": benchmark.mode,
        "resource_attr": benchmark.resource_attr,
        "min_resource": args.min_epochs,
        "max_resource": args.max_epochs,
        "scheduler": scheduler,
        "scheduler_kwargs": scheduler_arguments(scheduler, args.min_epochs, args.max_epochs, args.eta),
        "seed": args.seed,
        "n_workers": args.n_workers,
        "backend": args.backend,
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


def main(scheduler: str, argv: list[str] | None = None) -> int:
    """Run one tuning experiment with ``scheduler`` (one of ``SCHEDULERS``); returns the exit code."""
    assert scheduler in SCHEDULERS
    args, benchmark = parse_args(scheduler, argv)
    from syne_tune import StoppingCriterion, Tuner

    from launchers.progress import ProgressBar
    from schedulers.trial_limit import TrialLimit

    folder = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)  # Syne Tune draws brackets and some configs from numpy's global generator
    config_space = benchmark.script_config_space(args.max_epochs, args.dataset_path)
    tuner_scheduler = make_scheduler(scheduler, config_space, benchmark.metric, benchmark.mode,
                                     benchmark.resource_attr, args.min_epochs, args.max_epochs, args.eta, args.seed)
    if args.max_num_trials is not None:
        tuner_scheduler = TrialLimit(tuner_scheduler, args.max_num_trials)
    simulated = args.backend == "simulated"
    if simulated:
        backend, simulator_callback = simulated_backend(benchmark)
        callbacks, sleep_time = [simulator_callback], 0.0
    else:
        backend, callbacks, sleep_time = local_backend(benchmark, args.n_workers), [], TUNER_SLEEP_TIME
    writer = ResultsWriter(folder, experiment_metadata(args, benchmark, scheduler),
                           hyperparameters=list(benchmark.config_space))
    progress = ProgressBar(writer, args.max_num_trials, args.max_wallclock_time,
                           time_unit="simulated s" if simulated else "s")
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
            tuner = Tuner(
                trial_backend=backend, scheduler=tuner_scheduler,
                stop_criterion=StoppingCriterion(max_wallclock_time=max_wallclock_time),
                n_workers=args.n_workers, sleep_time=sleep_time, callbacks=[*callbacks, writer, progress],
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
