"""The launchers' shared flags: parse and check them into a ``LaunchPlan`` (benchmark, scheduler, backend, budget).

Only the registries are imported here, so that ``--help`` and flag errors answer without loading Syne Tune's
schedulers or simulator; ``launchers.run`` does the work.
"""
import argparse
import math
import os
import tempfile
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backends.registry import BACKENDS, BackendEntry
from benchmarks.registry import BENCHMARKS, Benchmark, BenchmarkError, custom_benchmark, get_benchmark
from schedulers.budget import Budget
from schedulers.registry import SCHEDULERS, SchedulerEntry

CUSTOM_FLAGS = ("training_script", "config_space", "metric", "mode", "resource_attr", "max_resource")
HELP_WIDTH = 79
# Without --max-failures, a run gives up only when this many trials failed and none has reported the metric yet.
BROKEN_AFTER = 5
TABLE_SEED_HELP = ("which training seed of the table answers a trial: the mean over seeds, a seed drawn per trial, "
                   "or a fixed seed (tabulated benchmarks on the simulated backend)")


@dataclass
class LaunchPlan:
    """Everything a run needs, checked: the flags, and the benchmark, scheduler, backend and budget they name."""

    args: argparse.Namespace
    benchmark: Benchmark
    scheduler: SchedulerEntry
    backend: BackendEntry
    budget: Budget
    folder: Path
    backend_options: dict[str, Any] = field(default_factory=dict)  # the backend's own flags, checked
    # --resume: the interrupted run's metadata.json (its folder is ``folder``); None for a new run
    previous: dict[str, Any] | None = None


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose own messages ("invalid int value: 'two'") also end as sentences do."""

    def error(self, message: str):
        super().error(message if message.rstrip().endswith((".", "?", "!")) else f"{message}.")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's and epilog's lines; shows defaults, except the empty ones (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def table_seed(text: str) -> str | int:
    """``--table-seed``: 'mean', 'random' or a seed number (0 or more)."""
    if text in ("mean", "random"):
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"'{text}' is not accepted: give mean, random or a seed number (0 or more).")


def _fill(text: str) -> str:
    return textwrap.fill(text, width=HELP_WIDTH)


def _names_and_titles(entries: dict[str, SchedulerEntry]) -> str:
    """One line per entry, ``  name  title``, the titles aligned and wrapped under themselves."""
    indent = " " * (max(len(name) for name in entries) + 4)
    return "\n".join(textwrap.fill(entry.title, width=HELP_WIDTH, initial_indent=f"  {name:{len(indent) - 2}}",
                                   subsequent_indent=indent) for name, entry in entries.items())


def _default_stops() -> str:
    """Each backend's default limits, e.g. "--max-wallclock-time 600 on the local backend; ..."."""
    stops = []
    for name, entry in BACKENDS.items():
        if entry.reference:
            continue
        if entry.default_max_wallclock_time is not None:
            stops.append(f"--max-wallclock-time {entry.default_max_wallclock_time:.0f} on the {name} backend")
        if entry.default_max_num_trials is not None:
            stops.append(f"--max-num-trials {entry.default_max_num_trials} on the {name} backend (when no time "
                         "limit is given)")
    return "; ".join(stops)


def build_parser(scheduler: str | None = None) -> argparse.ArgumentParser:
    """The flags common to all launchers; ``--scheduler`` too when ``scheduler`` is not fixed by the launcher."""
    what = f"the scheduler '{scheduler}' ({SCHEDULERS[scheduler].title})" if scheduler else \
        "the scheduler named by --scheduler"
    simulated = ", ".join(name for name, entry in BACKENDS.items() if entry.simulated_time and not entry.reference)
    stop = _fill(
        "The run stops by itself after --max-wallclock-time seconds or, with --max-num-trials N, once N trials have "
        "finished, whichever comes first; trials still running at the time limit are stopped. Defaults: "
        f"{_default_stops()}. Time is simulated on the {simulated} backend. Ctrl-C stops every trial and keeps the "
        "results written so far.")
    parser = _Parser(
        description=_fill(f"Tune a training script with {what} on Syne Tune and write "
                          "results/<experiment>/{results.csv, trials.csv, metadata.json}."),
        epilog=(f"schedulers:\n{_names_and_titles(SCHEDULERS)}" if scheduler is None else
                "Other schedulers: python launchers/launch.py --scheduler NAME (see its --help).") + f"\n\n{stop}",
        formatter_class=_HelpFormatter,
    )
    if scheduler is None:  # required, unless --resume names a run (checked in parse_args)
        parser.add_argument("--scheduler", choices=list(SCHEDULERS), metavar="NAME",
                            help="the scheduler, one of those listed below")
    parser.add_argument("--benchmark", default="mnist_convnet",
                        help="registered benchmark to tune: " + ", ".join(
                            f"{name} ({entry.title})" for name, entry in sorted(BENCHMARKS.items())))
    parser.add_argument("--n-workers", type=int, default=4, help="trials run in parallel")
    parser.add_argument("--max-wallclock-time", type=float, default=None,
                        help="stop after this many seconds of tuning (simulated seconds where the backend simulates "
                             "time); default: see below")
    parser.add_argument("--max-num-trials", type=int, default=None,
                        help="start no more than this many trials; the run ends when they have finished "
                             "(default: see below)")
    parser.add_argument("--min-epochs", type=int, default=1, help="smallest budget (the first rung of Hyperband)")
    parser.add_argument("--max-epochs", type=int, default=None, help="largest budget (default: the benchmark's)")
    parser.add_argument("--eta", type=float, default=3, help="reduction factor of successive halving")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scheduler's random choices")
    parser.add_argument("--grid-points", type=int, default=None, metavar="K",
                        help="grid_search: values per integer or float hyperparameter (default 5)")
    parser.add_argument("--grid-order", choices=["shuffled", "ordered"], default=None,
                        help="grid_search: visit the grid in a seeded shuffled order or in order (default shuffled)")
    parser.add_argument("--results-dir", default="results", help="folder that receives the experiment folder")
    parser.add_argument("--experiment-name", default=None,
                        help="name of the experiment folder (default: <benchmark>-<scheduler>-<timestamp>)")
    parser.add_argument("--dataset-path", default=None,
                        help="data folder handed to the training script (default: the script's own, data/)")
    parser.add_argument("--dataset", default=None, help="the benchmark's dataset: " + "; ".join(
        f"{name}: {entry.dataset_help}" for name, entry in BENCHMARKS.items() if entry.dataset_help))
    tabulated = ", ".join(name for name, entry in BENCHMARKS.items() if entry.tabulated)
    parser.add_argument("--backend", choices=list(BACKENDS), default="local", help="; ".join(
        f"{name}: {entry.help}" + (f" ({tabulated})" if entry.uses_table else "") for name, entry in BACKENDS.items()))
    parser.add_argument("--table-seed", type=table_seed, default="mean", metavar="mean|random|N", help=TABLE_SEED_HELP)
    parser.add_argument("--verbose", action="store_true",
                        help="print Syne Tune's per-trial log instead of writing it to <experiment>/tuner.log")
    parser.add_argument("--max-failures", type=int, default=None, metavar="N",
                        help="end the run once more than N trials failed (default: failed trials are recorded and "
                             f"tuning goes on; the run gives up only if {BROKEN_AFTER} trials failed before any "
                             "reported the metric)")
    parser.add_argument("--resume", default=None, metavar="EXPERIMENT",
                        help="continue an interrupted or killed run (its folder, or its name under --results-dir) "
                             "with its own flags; the local and simulated backends")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write one TensorBoard run per trial, live, under <experiment>/tensorboard (needs "
                             'pip install -e ".[tensorboard]")')
    custom = parser.add_argument_group(
        "any training script", "tune your own script instead of a registered benchmark; give all six flags")
    custom.add_argument("--training-script", default=None, help="script that reports through syne_tune.Reporter")
    custom.add_argument("--config-space", default=None, help="ConfigSpace JSON file with the hyperparameters")
    custom.add_argument("--metric", default=None, help="reported metric to optimise")
    custom.add_argument("--mode", choices=["min", "max"], default=None, help="minimise or maximise the metric")
    custom.add_argument("--resource-attr", default=None, help="reported budget counter, e.g. epoch")
    custom.add_argument("--max-resource", type=int, default=None, help="largest value of the budget counter")
    _add_ray_flags(parser)
    return parser


def parse_args(scheduler: str | None = None, argv: list[str] | None = None) -> LaunchPlan:
    """Parse and check the flags; bad input exits with one sentence that names it (argparse's ``error``)."""
    parser = build_parser(scheduler)
    args = parser.parse_args(argv)
    args.scheduler = scheduler or args.scheduler
    previous = None
    if args.resume is not None:  # the run's own flags, as it recorded them
        from launchers.resume_plan import resumed_args

        args, previous = resumed_args(parser, scheduler, args)
    elif args.scheduler is None:
        parser.error("the following arguments are required: --scheduler")
    checks = [
        (args.n_workers >= 1, f"--n-workers must be at least 1, got {args.n_workers}."),
        (args.max_wallclock_time is None or args.max_wallclock_time > 0,
         f"--max-wallclock-time must be positive seconds, got {args.max_wallclock_time}."),
        (args.max_num_trials is None or args.max_num_trials >= 1,
         f"--max-num-trials must be at least 1, got {args.max_num_trials}."),
        (args.eta > 1, f"--eta must be greater than 1, got {args.eta}."),
        (args.min_epochs >= 1, f"--min-epochs must be at least 1, got {args.min_epochs}."),
        (args.max_failures is None or args.max_failures >= 0,
         f"--max-failures must be 0 or more, got {args.max_failures}."),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    benchmark = _resolve_benchmark(parser, args)
    backend = BACKENDS[args.backend]
    if backend.uses_table and benchmark.blackbox is None:
        tabulated = ", ".join(name for name, entry in BENCHMARKS.items() if entry.tabulated)
        parser.error(f"--backend {backend.name} needs a tabulated benchmark, and '{benchmark.name}' has no table: "
                     f"choose one of {tabulated}.")
    if args.table_seed != "mean" and not backend.uses_table:
        tables = ", ".join(name for name, entry in BACKENDS.items() if entry.uses_table and not entry.reference)
        parser.error(f"--table-seed {args.table_seed} applies to the backends that replay a table ({tables}), not "
                     f"to '{backend.name}'.")
    if isinstance(args.table_seed, int) and args.table_seed not in benchmark.table_seeds:
        parser.error(f"--table-seed {args.table_seed} is not a seed of this table; give mean, random or one of "
                     f"{', '.join(map(str, benchmark.table_seeds))}.")
    if args.max_wallclock_time is None:
        args.max_wallclock_time = backend.default_max_wallclock_time
    if args.max_wallclock_time is None and args.max_num_trials is None:
        args.max_num_trials = backend.default_max_num_trials
    args.max_epochs = benchmark.max_resource if args.max_epochs is None else args.max_epochs
    if not args.min_epochs <= args.max_epochs <= benchmark.max_resource:
        parser.error(f"--min-epochs {args.min_epochs} and --max-epochs {args.max_epochs} must satisfy "
                     f"1 <= min <= max <= {benchmark.max_resource} (the benchmark's largest budget).")
    budget = Budget(benchmark.resource_attr, args.min_epochs, args.max_epochs, args.eta)
    if args.dataset_path is not None:
        if benchmark.dataset_path_flag is None:
            parser.error("--dataset-path applies to registered benchmarks only; put your script's data flag into "
                         "its config space as a constant.")
        args.dataset_path = str(Path(args.dataset_path).expanduser().resolve())
    if args.experiment_name is None:
        args.experiment_name = f"{benchmark.name}-{args.scheduler}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = Path(args.results_dir) / args.experiment_name
    if previous is None:
        _check_results_folder(parser, args, folder)
    scheduler_entry = SCHEDULERS[args.scheduler]
    for flag in ("grid_points", "grid_order"):
        if getattr(args, flag) is not None and flag not in scheduler_entry.flags:
            parser.error(f"--{flag.replace('_', '-')} applies to --scheduler grid_search, not to "
                         f"'{args.scheduler}'.")
    if args.grid_points is not None and args.grid_points < 1:
        parser.error(f"--grid-points must be at least 1, got {args.grid_points}.")
    if args.tensorboard:  # checked here, so that a missing package costs no run; imported only with the flag
        from launchers.tensorboard import missing_package

        if message := missing_package():
            parser.error(message)
    return LaunchPlan(args, benchmark, scheduler_entry.with_options(vars(args)), backend, budget, folder,
                      _backend_options(parser, args, backend), previous)


def _check_results_folder(parser: argparse.ArgumentParser, args: argparse.Namespace, folder: Path):
    """The experiment folder must be one new folder (or an empty one) in a results folder this process can write."""
    name = args.experiment_name
    separators = {"/", os.sep, os.altsep} - {None}
    if not name or name in (".", "..") or any(sep in name for sep in separators):
        parser.error(f"--experiment-name '{name}' must be one folder name, without '/' and not '.' or '..' (e.g. "
                     "mnist-bohb-1).")
    root = Path(args.results_dir)
    if root.exists() and not root.is_dir():
        parser.error(f"--results-dir '{root}' is a file, not a folder: give a folder (it is created if missing).")
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        parser.error(f"--results-dir '{root}' cannot be created, since '{existing}' is a file: give another folder.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        where = "is not writable" if existing == root else f"cannot be created in '{existing}'"
        parser.error(f"--results-dir '{root}' {where} ({error.strerror or error}): give a folder you can write to.")
    if folder.exists() and not folder.is_dir():
        parser.error(f"Results folder '{folder}' is a file: choose another --experiment-name or --results-dir.")
    if folder.exists() and any(folder.iterdir()):
        parser.error(f"Results folder '{folder}' already exists and is not empty: choose another "
                     "--experiment-name or --results-dir, or continue that run with --resume.")


def _resolve_benchmark(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Benchmark:
    given = [name for name in CUSTOM_FLAGS if getattr(args, name) is not None]
    try:
        if not given:
            return get_benchmark(args.benchmark, args.dataset)
        if args.dataset is not None:
            with_datasets = " and ".join(name for name, entry in BENCHMARKS.items() if entry.dataset_help)
            parser.error(f"--dataset applies to {with_datasets}, not to your own script; put your script's dataset "
                         "into its config space as a constant.")
        missing = [name for name in CUSTOM_FLAGS if name not in given]
        if missing:
            missing = ", ".join("--" + name.replace("_", "-") for name in missing)
            parser.error("Tuning your own script needs all of --training-script, --config-space, --metric, --mode, "
                         f"--resource-attr and --max-resource; missing: {missing}.")
        if not Path(args.training_script).is_file():
            parser.error(f"Training script '{args.training_script}' does not exist: pass the path of a Python "
                         "script.")
        # Absolute, so that the space is found again wherever the run goes on (it is read when the run starts).
        args.config_space = str(Path(args.config_space).expanduser().resolve())
        if args.max_resource < 1:
            parser.error(f"--max-resource must be at least 1, got {args.max_resource}.")
        return custom_benchmark(args.training_script, args.config_space, args.metric, args.mode,
                                args.resource_attr, args.max_resource)
    except BenchmarkError as error:
        parser.error(str(error))


def main(scheduler: str | None = None, argv: list[str] | None = None) -> int:
    """Run one tuning experiment with ``scheduler`` (or the one named by ``--scheduler``); returns the exit code."""
    plan = parse_args(scheduler, argv)
    from launchers.run import run

    return run(plan)


def _add_ray_flags(parser: argparse.ArgumentParser):
    ray = parser.add_argument_group(
        "Ray cluster (--backend ray)",
        "run every trial as a process on a Ray cluster: on a local Ray instance started for the run, or on the "
        "cluster at --ray-address (needs pip install -e \".[ray]\"); these flags apply to --backend ray only")
    ray.add_argument("--ray-address", default=None, metavar="ADDR",
                     help="join this running cluster (host:port as printed by `ray start --head`, or auto on one of "
                          "its nodes) instead of starting a local Ray instance")
    ray.add_argument("--cpus-per-trial", type=float, default=None, metavar="N",
                     help="CPUs Ray reserves for each trial, also its OMP_NUM_THREADS (default 1)")
    ray.add_argument("--gpus-per-trial", type=float, default=None, metavar="N",
                     help="GPUs Ray reserves for each trial (default 0)")
    ray.add_argument("--storage", default=None, metavar="DIR",
                     help="a directory every node mounts at the same path: checkpoints go to "
                          "DIR/<experiment>/<trial>/checkpoints, so a paused trial resumes on any node (default: the "
                          "experiment folder, enough when every node is this machine)")


def _backend_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                     backend: BackendEntry) -> dict[str, Any]:
    """The values of the chosen backend's own flags, checked; another backend's flag is an error."""
    for name, entry in BACKENDS.items():
        for flag in entry.flags:
            if getattr(args, flag) is not None and flag not in backend.flags:
                parser.error(f"--{flag.replace('_', '-')} applies to --backend {name} only, not to "
                             f"'{backend.name}'.")
    if backend.name != "ray":
        return {}
    cpus = 1.0 if args.cpus_per_trial is None else args.cpus_per_trial
    gpus = 0.0 if args.gpus_per_trial is None else args.gpus_per_trial
    if not (math.isfinite(cpus) and cpus > 0):
        parser.error(f"--cpus-per-trial must be a positive number of CPUs (e.g. 1 or 0.5), got {cpus:g}.")
    if not (math.isfinite(gpus) and gpus >= 0):
        parser.error(f"--gpus-per-trial must be 0 or a positive number of GPUs, got {gpus:g}.")
    storage = None
    if args.storage is not None:
        root = Path(args.storage).expanduser().resolve()
        if not root.is_dir():
            parser.error(f"--storage '{args.storage}' is not a directory: give one that every Ray node mounts at the "
                         "same path.")
        storage = root / args.experiment_name
        # (a resumed run finds its own checkpoints there)
        if args.resume is None and storage.exists() and any(storage.iterdir()):
            parser.error(f"--storage '{args.storage}' already holds checkpoints of an experiment "
                         f"'{args.experiment_name}': choose another --experiment-name or --storage.")
    return {"ray_address": args.ray_address, "cpus_per_trial": cpus, "gpus_per_trial": gpus,
            "storage": None if storage is None else str(storage)}
