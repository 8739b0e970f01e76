"""``--resume EXPERIMENT``: find the interrupted run, check that it can go on, and give back the flags it was started
with (``metadata.json`` records them under ``launch``). What the run then does is ``launchers.resume``'s."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from backends.registry import BACKENDS

# Flags a resume may be given; every other one is the run's own.
RESUME_FLAGS = ("resume", "results_dir", "verbose")
# Backends whose runs can be resumed besides those in simulated time (which are replayed): they journal the scheduler
# and keep their trials' checkpoints until the run is over.
RESUMABLE = ("local", "ray")
JOURNAL_FILE = "journal.jsonl"


def find_run(resume: str, results_dir: str) -> Path | None:
    """The folder ``resume`` names: a path to a run's folder, or a run's name under ``results_dir``."""
    for candidate in (Path(resume), Path(results_dir) / resume):
        if (candidate / "metadata.json").is_file():
            return candidate.resolve()
    return None


def _status(metadata: dict[str, Any]) -> str:
    from analysis.load import run_status  # pandas: loaded only to resume

    return run_status(metadata)


def resumed_args(parser: argparse.ArgumentParser, scheduler: str | None,
                 args: argparse.Namespace) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The flags of the run ``args.resume`` names, and its metadata; anything that keeps it from going on is one
    sentence through ``parser.error``."""
    given = [dest for dest, value in vars(args).items()
             if dest not in RESUME_FLAGS and dest != "scheduler" and value != parser.get_default(dest)]
    if given:
        parser.error(f"--resume continues a run with the flags it was started with: give no other flag than "
                     f"--results-dir and --verbose (got --{given[0].replace('_', '-')}).")
    folder = find_run(args.resume, args.results_dir)
    if folder is None:
        parser.error(f"No run to resume at '{args.resume}' nor '{Path(args.results_dir) / args.resume}': give a run's "
                     "folder, or its name under --results-dir.")
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
        stored = metadata["launch"]["args"]
        cwd = metadata["launch"].get("cwd")
    except (OSError, ValueError, KeyError, TypeError):
        parser.error(f"'{folder}' cannot be resumed: its metadata.json does not record the flags it was started "
                     "with (damaged, or written before --resume existed).")
    status = _status(metadata)
    reasons = {
        "finished": "it finished, so there is nothing to resume",
        "failed": "it ended with an error, which it would meet again (see its tuner.log); start a new run",
        "running": f"it is still running (process {metadata.get('pid')} on {metadata.get('host')}): stop it first",
    }
    if status in reasons:
        parser.error(f"Run '{folder}' cannot be resumed: {reasons[status]}.")
    if args.scheduler not in (None, stored.get("scheduler")):
        parser.error(f"Run '{folder}' was tuned with {stored.get('scheduler')}, not {args.scheduler}: resume it with "
                     f"python launchers/launch.py --resume {args.resume}.")
    backend = BACKENDS.get(stored.get("backend"))
    if backend is None or not (backend.simulated_time or backend.name in RESUMABLE):
        parser.error(f"Run '{folder}' ran on the {stored.get('backend')} backend, which cannot be resumed (it keeps "
                     "no checkpoints of its trials); --resume works for the local, ray and simulated backends.")
    if not backend.simulated_time and not (folder / JOURNAL_FILE).is_file():
        parser.error(f"Run '{folder}' cannot be resumed: it has no {JOURNAL_FILE}, the record of its scheduler's "
                     "decisions that a resume replays.")
    restored = vars(parser.parse_args([]))
    restored.update({dest: value for dest, value in stored.items() if dest in restored})
    restored.update(resume=str(folder), results_dir=str(folder.parent), experiment_name=folder.name,
                    verbose=args.verbose, scheduler=stored.get("scheduler"))
    if cwd and Path(cwd).is_dir():  # relative paths among the flags meant the run's working folder
        os.chdir(cwd)
    return argparse.Namespace(**restored), metadata
