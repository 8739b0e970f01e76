"""The runs file of a table being trained: one JSON line per trained architecture, after one header line.

Lines are appended (and synced) as architectures finish, so a killed generator loses at most the ones in flight and
a restart continues where it stopped. The header holds the setting and provenance; a restart with another setting
is refused. Format `nb201-runs/2`: the header's `setting` is a `setting.Setting`, a result's `metrics` map each
metric to one curve (a list over epochs) per seed of `seeds`. Format `nb201-runs/1` (the MNIST-10k table) had one
seed, `data`/`train` instead of `setting`, and one curve per metric.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

from .setting import comparable

RUNS_FORMAT = "nb201-runs/2"
REPO_ROOT = Path(__file__).resolve().parents[2]
CODE_FILES = ("benchmarks/nasbench201/training.py", "benchmarks/nasbench201/datasets.py",
              "benchmarks/nasbench201/model.py", "benchmarks/nasbench201/cell.py", "benchmarks/nasbench201/ops.py",
              "benchmarks/nasbench201/encoding.py", "benchmarks/training.py", "benchmarks/mnist/data.py")


class GenerationError(RuntimeError):
    """A runs file or settings that cannot be used (the message is one sentence for the user)."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def code_version() -> dict[str, str]:
    """The git commit (with `-dirty` if the training code differs from it) and a hash of the training code."""
    digest = hashlib.sha1()
    for name in CODE_FILES:
        path = REPO_ROOT / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    out = {"code_hash": digest.hexdigest()[:12], "git_commit": "unknown"}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_FILES], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit:
            out["git_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def cpu_description(threads: int) -> str:
    """The CPU model and the thread count per worker."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"CPU {model}, {threads} thread(s)"


def read_runs(path: str | os.PathLike, repair: bool = False) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and result lines of a runs file ((None, []) if absent).

    A last line cut short by a kill is ignored, and removed from the file when `repair`.
    """
    path = Path(path)
    if not path.is_file():
        return None, []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(cut)
    header, results = None, []
    for number, line in enumerate(data[:cut].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise GenerationError(f"Line {number} of {path} is not JSON; remove that line to continue.") from None
        if record.get("type") == "header":
            header = header or record
        elif record.get("type") == "result":
            results.append(record)
    if results and header is None:
        raise GenerationError(f"{path} has results but no header line; it was not written by this generator.")
    return header, results


def check_header(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Refuse to append to a runs file of another format, setting, class order or data."""
    if old.get("format") != RUNS_FORMAT:
        raise GenerationError(f"{path} has format {old.get('format')!r}; this generator writes {RUNS_FORMAT!r}.")
    for key in ("setting", "sample_seed", "data_digest"):
        a, b = old.get(key), new.get(key)
        if key == "setting":
            a, b = comparable(a), comparable(b)
        if a != b:
            raise GenerationError(f"{path} was made with other settings ({key}: {a!r}, now {b!r}); restart with "
                                  f"the same settings or write to another --out file.")


def lock_path(out: Path) -> Path:
    """A lock file outside the repository, one per runs file."""
    key = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"nb201-generate-{key}.lock"


def append(f: IO[str], record: dict[str, Any]) -> None:
    """Write one line and make sure it is on disk."""
    f.write(json.dumps(record, separators=(",", ":")) + "\n")
    f.flush()
    os.fsync(f.fileno())
