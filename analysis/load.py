"""Load results folders (``results.csv``, ``trials.csv``, ``metadata.json``) into tidy pandas frames.

A results folder is what a launcher writes under ``results/<experiment>/``; see the README for its columns.
``load_experiments`` accepts experiment folders and parent folders holding several of them.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

RESULTS_FILE = "results.csv"
TRIALS_FILE = "trials.csv"
METADATA_FILE = "metadata.json"
FOLDER_FILES = (RESULTS_FILE, TRIALS_FILE, METADATA_FILE)
CONFIG_PREFIX = "config_"

REQUIRED_METADATA = ("metric", "mode", "scheduler")
REQUIRED_TRIALS_COLUMNS = ("trial_id", "status", "epochs", "best_metric", "last_metric", "start_time", "end_time")
BUDGET_KEYS = ("resource_attr", "min_resource", "max_resource", "eta")
TRIAL_STATUSES = ("Completed", "Stopped", "Failed", "InProgress", "Paused")
# A run's launcher rewrites metadata.json every few seconds (its heartbeat). A "running" run whose launcher is gone
# was killed: on this host the launcher's process says so at once; elsewhere a heartbeat this old does.
STALE_AFTER_S = 60.0
# On this host, a live process with the launcher's pid but a heartbeat this old is another process (pid reused).
PID_REUSED_AFTER_S = 600.0
# The metadata.json entries that runs must share to be seeds of one method (launchers/compare.py also requires them
# of a comparison's runs); the metric and mode too, in which a custom benchmark's runs may differ.
RUN_SETTINGS = ("benchmark", "dataset", "backend", "n_workers", "budget", "table_seed", "stop_criterion")
GROUP_SETTINGS = ("metric", "mode", *RUN_SETTINGS)
# Backends whose tuner_time is simulated, for folders written before metadata.json said so (``simulated_time``).
SIMULATED_BACKENDS = ("simulated", "simulated_syne_tune")


class ResultsFolderError(ValueError):
    """A results folder is missing, incomplete or malformed; the message is one sentence for the user."""


@dataclass(frozen=True)
class Budget:
    """The run's budget as ``metadata.json`` records it under ``budget``: resource attribute, min, max and eta."""

    resource_attr: str
    min_resource: int
    max_resource: int
    eta: float


@dataclass
class Experiment:
    """One tuning run: its metadata and its two tables.

    ``results`` has one row per report (sorted by tuner time), ``trials`` one row per trial (sorted by trial id).
    """

    name: str
    path: Path
    metadata: dict = field(repr=False)
    results: pd.DataFrame = field(repr=False)
    trials: pd.DataFrame = field(repr=False)
    label: str = field(default="")

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.name

    @property
    def metric(self) -> str:
        return str(self.metadata["metric"])

    @property
    def mode(self) -> str:
        return str(self.metadata["mode"])

    @property
    def method(self) -> str:
        """The scheduler name, used to group seeds of the same method."""
        return str(self.metadata["scheduler"])

    @property
    def benchmark(self) -> str:
        return str(self.metadata.get("benchmark") or "unknown")

    @property
    def status(self) -> str:
        """``finished``, ``interrupted`` (also a killed run), ``failed`` or ``running`` (see ``run_status``)."""
        return run_status(self.metadata) or "?"

    @property
    def seed(self) -> int | None:
        seed = self.metadata.get("seed")
        return None if seed is None else int(seed)

    @property
    def budget(self) -> Budget | None:
        """The budget from ``metadata.json`` (None for folders written before it was recorded)."""
        return _budget(self.metadata)

    @property
    def resource_attr(self) -> str:
        """The budget's counter, a column of ``results.csv``."""
        return _resource_attr(self.metadata)

    @property
    def n_workers(self) -> int | None:
        n = self.metadata.get("n_workers")
        return None if n is None else int(n)

    @property
    def simulated(self) -> bool:
        """Whether the run's tuner_time is simulated seconds, as ``metadata.json`` records it."""
        recorded = self.metadata.get("simulated_time")
        return bool(recorded) if recorded is not None else self.metadata.get("backend") in SIMULATED_BACKENDS

    @property
    def time_unit(self) -> str:
        """``"simulated seconds"`` for a simulated backend, ``"seconds"`` otherwise."""
        return "simulated seconds" if self.simulated else "seconds"

    @property
    def config_columns(self) -> list[str]:
        """The ``config_<name>`` columns of the results table."""
        return [c for c in self.results.columns if c.startswith(CONFIG_PREFIX)]

    @property
    def test_metric(self) -> str | None:
        """The test counterpart of the metric (``valid_error`` -> ``test_error``) where results.csv has it.

        Validation chooses the incumbent; the test metric only reports how that choice does on held-out data.
        """
        name = self.metric.replace("valid", "test", 1)
        return name if name != self.metric and name in self.results.columns else None

    @property
    def has_estimates(self) -> bool:
        """Whether results.csv says for its reports whether a table measured them or a surrogate estimated them."""
        return "estimated" in self.results.columns

    @property
    def has_model_based(self) -> bool:
        """Whether trials.csv says for some trial whether its config was a model-based pick (BOHB)."""
        return "model_based" in self.trials.columns and bool(self.trials["model_based"].notna().any())


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host and is not a zombie (a killed child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _age_seconds(iso_time: object, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(str(iso_time))).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def run_status(metadata: dict, now: datetime | None = None) -> str:
    """The run's status as ``metadata.json`` records it, except that a run recorded as ``running`` whose launcher is
    gone (killed: its process no longer exists on this host, or its heartbeat is older than ``STALE_AFTER_S``
    elsewhere) is ``interrupted``, as ``--resume`` and the analysis read it."""
    status = str(metadata.get("status") or "")
    if status != "running":
        return status
    now = now or datetime.now(timezone.utc)
    age = _age_seconds(metadata.get("heartbeat") or metadata.get("start_time"), now)
    pid = metadata.get("pid")
    if metadata.get("host") == socket.gethostname() and isinstance(pid, int):
        return "running" if _process_alive(pid) and age < PID_REUSED_AFTER_S else "interrupted"
    return "running" if age < STALE_AFTER_S else "interrupted"


def _budget(metadata: dict) -> Budget | None:
    budget = metadata.get("budget")
    return None if budget is None else Budget(**budget)


def _resource_attr(metadata: dict) -> str:
    """The budget's counter; older folders kept it at the top level, and ``epoch`` where nothing says."""
    budget = _budget(metadata)
    return budget.resource_attr if budget else str(metadata.get("resource_attr") or "epoch")


def _read_csv(folder: Path, file: str) -> pd.DataFrame:
    path = folder / file
    with open(path, "rb") as handle:  # the writer ends every file with a newline: a file without one was cut short
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                raise ResultsFolderError(f"{path} ends in the middle of a line, so it was cut short (a copy or disk "
                                         "that failed?); restore it from the run's folder.")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ResultsFolderError(f"{path} is empty; expected a CSV file with a header line.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ResultsFolderError(f"{path} is not a readable CSV file ({first}).") from None


def _check_columns(folder: Path, file: str, df: pd.DataFrame, required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        cols = ", ".join(repr(c) for c in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise ResultsFolderError(
            f"{folder / file} lacks the {noun} {cols}; expected {what}.")


def _to_numeric(folder: Path, file: str, df: pd.DataFrame, column: str, integer: bool = False) -> None:
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        example = df.loc[bad, column].iloc[0]
        raise ResultsFolderError(
            f"{folder / file} has a non-numeric value {example!r} in column {column!r}; expected numbers.")
    if integer and values.notna().all():
        values = values.astype(np.int64)
    df[column] = values


def _parse_column(values: pd.Series) -> pd.Series:
    """A bookkeeping column as booleans (only True/False), integers, floats or, failing those, text; blanks are NA."""
    present = values.dropna()
    text = present.astype("string").str.strip().str.lower()
    if len(present) and text.isin(["true", "false"]).all():
        return values.astype("string").str.strip().str.lower().map({"true": True, "false": False}).astype("boolean")
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers[values.notna()].notna().all():
        integral = numbers.dropna()
        return numbers.astype("Int64") if (integral == integral.round()).all() else numbers
    return values


def _parse_budget(path: Path, budget: object) -> None:
    if budget is None:
        return
    if not isinstance(budget, dict) or set(budget) != set(BUDGET_KEYS):
        raise ResultsFolderError(f"{path} has budget {budget!r}; expected an object with the keys "
                                 f"{', '.join(BUDGET_KEYS)}.")
    numbers = [budget[k] for k in BUDGET_KEYS[1:]]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise ResultsFolderError(f"{path} has budget {budget!r}; expected numbers for min_resource, max_resource "
                                 "and eta.")


def _load_metadata(folder: Path) -> dict:
    path = folder / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ResultsFolderError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}).") from None
    if not isinstance(metadata, dict):
        raise ResultsFolderError(f"{path} holds a {type(metadata).__name__}; expected a JSON object.")
    missing = [k for k in REQUIRED_METADATA if metadata.get(k) in (None, "")]
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        raise ResultsFolderError(
            f"{path} lacks the key(s) {keys}; expected at least {', '.join(REQUIRED_METADATA)}.")
    if metadata["mode"] not in ("min", "max"):
        raise ResultsFolderError(f"{path} has mode {metadata['mode']!r}; expected \"min\" or \"max\".")
    _parse_budget(path, metadata.get("budget"))
    return metadata


def is_results_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding at least one of results.csv, trials.csv, metadata.json."""
    path = Path(path)
    return path.is_dir() and any((path / f).is_file() for f in FOLDER_FILES)


def load_experiment(path: str | Path) -> Experiment:
    """Load one results folder; raise ``ResultsFolderError`` with one clear sentence if it is malformed."""
    folder = Path(path)
    if not folder.exists():
        raise ResultsFolderError(f"{folder} does not exist; expected a results folder.")
    if not folder.is_dir():
        raise ResultsFolderError(f"{folder} is not a folder; expected a results folder holding "
                                 f"{', '.join(FOLDER_FILES)}.")
    missing = [f for f in FOLDER_FILES if not (folder / f).is_file()]
    if missing:
        raise ResultsFolderError(
            f"{folder} lacks {' and '.join(missing)}; a results folder holds {', '.join(FOLDER_FILES)}.")

    metadata = _load_metadata(folder)
    metric = str(metadata["metric"])
    resource_attr = _resource_attr(metadata)

    results = _read_csv(folder, RESULTS_FILE)
    _check_columns(folder, RESULTS_FILE, results, ("trial_id", "tuner_time", resource_attr, metric),
                   f"one row per report with trial_id, tuner_time, {resource_attr} and the metric {metric!r} "
                   f"(the metric named in {METADATA_FILE})")
    _to_numeric(folder, RESULTS_FILE, results, "trial_id", integer=True)
    _to_numeric(folder, RESULTS_FILE, results, "tuner_time")
    _to_numeric(folder, RESULTS_FILE, results, resource_attr, integer=True)
    _to_numeric(folder, RESULTS_FILE, results, metric)
    # A NaN or infinite value stays in the file, but it never makes an incumbent: the analysis reads it as missing.
    results[metric] = results[metric].replace([np.inf, -np.inf], np.nan)
    results = results.sort_values(["tuner_time", "trial_id", resource_attr], kind="mergesort").reset_index(drop=True)

    trials = _read_csv(folder, TRIALS_FILE)
    _check_columns(folder, TRIALS_FILE, trials, REQUIRED_TRIALS_COLUMNS,
                   "one row per trial with " + ", ".join(REQUIRED_TRIALS_COLUMNS))
    for col in ("trial_id", "epochs"):
        _to_numeric(folder, TRIALS_FILE, trials, col, integer=True)
    for col in ("best_metric", "last_metric", "start_time", "end_time"):
        _to_numeric(folder, TRIALS_FILE, trials, col)
    for col in trials.columns:
        if col not in REQUIRED_TRIALS_COLUMNS and not col.startswith(CONFIG_PREFIX):
            trials[col] = _parse_column(trials[col])
    trials["status"] = trials["status"].astype("str")
    trials = trials.sort_values("trial_id", kind="mergesort").reset_index(drop=True)

    name = str(metadata.get("experiment_name") or folder.name)
    return Experiment(name=name, path=folder, metadata=metadata, results=results, trials=trials)


def find_experiment_folders(path: str | Path) -> list[Path]:
    """The results folders at or below ``path`` (sorted); a results folder's own subfolders are not searched."""
    root = Path(path)
    if not root.exists():
        raise ResultsFolderError(f"{root} does not exist; expected a results folder or a folder holding some.")
    if not root.is_dir():
        raise ResultsFolderError(f"{root} is not a folder; expected a results folder or a folder holding some.")
    if is_results_folder(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_results_folder(child):
            found.append(child)
        else:
            found.extend(find_experiment_folders(child))
    return found


def load_experiments(paths: str | Path | Iterable[str | Path]) -> list[Experiment]:
    """Load experiment folders, or every experiment folder below parent folders; labels are made unique."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    folders: list[Path] = []
    for path in paths:
        found = find_experiment_folders(path)
        if not found:
            raise ResultsFolderError(
                f"{path} holds no results folder; expected a folder with {', '.join(FOLDER_FILES)} "
                f"or a folder of such folders.")
        folders.extend(f for f in found if f.resolve() not in {g.resolve() for g in folders})
    experiments = [load_experiment(f) for f in folders]
    counts: dict[str, int] = {}
    for exp in experiments:
        counts[exp.name] = counts.get(exp.name, 0) + 1
    seen: dict[str, int] = {}
    for exp in experiments:
        if counts[exp.name] > 1:
            seen[exp.name] = seen.get(exp.name, 0) + 1
            exp.label = f"{exp.name}-{seen[exp.name]}"
    return experiments


def group_by_method(experiments: Iterable[Experiment]) -> dict[str, list[Experiment]]:
    """Experiments grouped by method (scheduler name), methods in order of first appearance."""
    groups: dict[str, list[Experiment]] = {}
    for exp in experiments:
        groups.setdefault(exp.method, []).append(exp)
    return groups


def _settings(exp: Experiment) -> dict[tuple[str, str], str]:
    """The run's ``GROUP_SETTINGS`` as JSON text, an entry per value: a setting that is an object (budget, stop
    criterion) gives one per key, so that a label can name the one that differs."""
    flat: dict[tuple[str, str], str] = {}
    for name in GROUP_SETTINGS:
        value = exp.metadata.get(name)
        entries = value.items() if isinstance(value, dict) else [(name, value)]
        flat.update({(name, key): json.dumps(v, sort_keys=True, default=str) for key, v in entries})
    return flat


def _label(benchmark: str, settings: dict, siblings: list[dict], short: bool) -> str:
    """The benchmark's name, followed by the settings in which this group differs from others of that benchmark:
    values as read (a dataset's path by its file's name) if ``short``, else as recorded."""
    keys = list(dict.fromkeys(k for s in siblings for k in s))
    texts = []
    for name, key in (k for k in keys if len({s.get(k) for s in siblings}) > 1):
        value = settings.get((name, key), "null")
        if short:
            value = json.loads(value)
            value = Path(value).stem if name == "dataset" and isinstance(value, str) else value
        texts.append(f"{key} {value}")
    return f"{benchmark} ({', '.join(texts)})" if texts else benchmark


def group_by_benchmark(experiments: Iterable[Experiment]) -> dict[str, list[Experiment]]:
    """Experiments grouped by benchmark and ``GROUP_SETTINGS`` (only runs alike in all are seeds of one method),
    keyed by the benchmark's name and, where it has several groups, the settings that tell them apart
    (``nasbench201 (dataset fmnist)``)."""
    groups: dict[str, list[Experiment]] = {}
    settings: dict[str, dict] = {}
    for exp in experiments:
        s = _settings(exp)
        key = json.dumps([exp.benchmark, sorted(s.items())])
        groups.setdefault(key, []).append(exp)
        settings[key] = s
    for short in (True, False):  # full dataset paths where two tables share a name
        labels = {}
        for key, exps in groups.items():
            siblings = [settings[k] for k, e in groups.items() if e[0].benchmark == exps[0].benchmark]
            labels[key] = _label(exps[0].benchmark, settings[key], siblings, short)
        if len(set(labels.values())) == len(labels):
            break
    return {labels[key]: exps for key, exps in groups.items()}


def time_unit(experiments: Iterable[Experiment]) -> str:
    """The time unit shared by experiments: "seconds", "simulated seconds" or a note that they are mixed."""
    kinds = {exp.simulated for exp in experiments}
    if kinds == {True}:
        return "simulated seconds"
    if kinds == {False} or not kinds:
        return "seconds"
    return "seconds; simulated and wall-clock mixed"
