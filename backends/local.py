"""The local backend: every trial is a process running the benchmark's training script on this machine."""
import os
import shutil
from pathlib import Path
from typing import Any

from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.util import dump_json_with_numpy

from backends import trial_process
from backends.registry import BackendSetup
from backends.resumable import register_trials
from benchmarks.registry import Benchmark

# Seconds the tuner sleeps while all workers are busy; Syne Tune's default of 5 s adds seconds to every trial.
TUNER_SLEEP_TIME = 0.05
# Marks that Syne Tune's LocalBackend leaves in a trial's folder; a trial restarted by --resume starts without them.
_MARKS = ("stop", "pause", "end")
NO_REPORT = "[hpo-toolkit] the script exited with status 0 without reporting any result."


def end_open_line(path: Path):
    """End the last line of a resumed trial's output if its last process left it open.

    With an unbuffered stdout (PYTHONUNBUFFERED=1, usual in containers) a report's text and its newline are two
    writes; a trial paused between them left `[tune-metric]: {...}` without a newline, the next process appended its
    first report to that line, and Syne Tune's parser failed the whole run on the joined line."""
    try:
        with open(path, "rb+") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
    except FileNotFoundError:
        pass


class TrialProcessBackend(LocalBackend):
    """Syne Tune's ``LocalBackend``, made safe to kill and to resume.

    - A trial's command is an argument list (Syne Tune 0.16 joins ``--name value`` pairs into one string and splits
      it on spaces, which breaks any path or value with a space); it runs in its own process group, tied to the
      launcher's life (``backends.trial_process``), and stopping it kills the group.
    - A script that exits 0 without reporting anything is a failed trial, not the end of the run.
    - Ending the run (``stop_all``) stops the trials but keeps every checkpoint, so that an interrupted run can be
      resumed; ``discard_checkpoints`` removes them once the run is over for good.
    - ``prepare_resume`` loads the trials of an interrupted run, so that new trials get the next ids and the
      scheduler can resume its paused trials and those that were running.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._silent: set[int] = set()  # trials that exited 0 without a report

    def _schedule(self, trial_id: int, config: dict[str, Any]):
        self._prepare_for_schedule()
        trial_path = self.trial_path(trial_id)
        os.makedirs(trial_path, exist_ok=True)
        arguments = {**config, ST_CHECKPOINT_DIR: str(self.checkpoint_trial_path(trial_id))}
        argv = [self.binary, self.entry_point]
        for key, value in arguments.items():
            argv += [f"--{key}", str(value)]  # str(value): the text Syne Tune's f-string would have given
        dump_json_with_numpy(config, str(trial_path / "config.json"))
        env = dict(os.environ)
        self._allocate_gpu(trial_id, env)
        for name in ("std.out", "std.err"):
            end_open_line(trial_path / name)
        with open(trial_path / "std.out", "a") as stdout, open(trial_path / "std.err", "a") as stderr:
            self.trial_subprocess[trial_id] = trial_process.start(argv, stdout, stderr, env)
        self._busy_trial_id_candidates.add(trial_id)

    def _kill_process(self, trial_id: int):
        trial_process.kill_group(self.trial_subprocess[trial_id])

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        results = super()._all_trial_results(trial_ids)
        for result in results:
            if result.status == Status.completed and not result.metrics:
                result.status = Status.failed
                if result.trial_id not in self._silent:  # say why in its log, once
                    self._silent.add(result.trial_id)
                    with open(self.trial_path(result.trial_id) / "std.err", "a") as stderr:
                        stderr.write(NO_REPORT + "\n")
        return results

    def _resume_trial(self, trial_id: int):
        for mark in _MARKS:
            self._file_path(trial_id, mark).unlink(missing_ok=True)

    def stop_all(self):
        """Stop the trials still running, keeping their checkpoints (see ``discard_checkpoints``); Syne Tune's would
        delete them, and with them the chance to resume."""
        for trial_id, process in list(self.trial_subprocess.items()):
            if process.poll() is not None:
                continue
            if self._read_status(trial_id) == Status.in_progress:
                self._stop_trial(trial_id=trial_id, result=None)
                self._cleanup_after_trial(trial_id)
            else:  # marked paused or stopped, but a Ctrl-C cut that short before the process was ended
                trial_process.kill_group(process)

    def discard_checkpoints(self):
        """Remove every trial's checkpoints: the run is over and will not be resumed."""
        for trial_path in Path(self.local_path).glob("*/checkpoints"):
            shutil.rmtree(trial_path, ignore_errors=True)

    def prepare_resume(self, configs: dict[int, dict[str, Any]], resumable: set[int], reports: dict[int, int]):
        """Know the trials of an interrupted run (``resumable.register_trials``)."""
        register_trials(self, configs, resumable, reports)


def start(benchmark: Benchmark, n_workers: int, table_seed: str | int = "mean", seed: int = 0) -> BackendSetup:
    """Trial processes of the benchmark's script, the cores shared among the workers."""
    # One trial's PyTorch threads must not starve the others.
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    # Syne Tune probes GPUs with nvidia-smi; skip the probe (and its stray std.out file) where there is none.
    backend = TrialProcessBackend(entry_point=str(benchmark.script), delete_checkpoints=True,
                                  rotate_gpus=shutil.which("nvidia-smi") is not None)
    return BackendSetup(backend, callbacks=[], sleep_time=TUNER_SLEEP_TIME)
