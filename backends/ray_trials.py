"""Syne Tune ``TrialBackend`` that runs every trial's script on a Ray cluster, in a reused ``TrialRunner`` actor.

It behaves like Syne Tune's ``LocalBackend``: each trial gets ``--name value`` flags and ``--st_checkpoint_dir``, its
output goes to ``<experiment>/trials/<id>/std.out|std.err`` (streamed back from the node), report lines are parsed
with ``syne_tune.report.retrieve``, and stop/pause end the script's process group on its node. A paused trial resumes
in whichever runner is free, maybe on another node, so checkpoints live in storage that every node shares.

Resumable as the local backend: ending the run (``stop_all``) keeps the checkpoints, ``discard_checkpoints`` removes
them once the run is over for good, and ``prepare_resume`` loads the trials of an interrupted run. Next to its
checkpoints, each trial's node appends the script's stdout to ``node-std.out`` as it reads it, so the reports a
killed launcher never received are found there by ``prepare_resume``.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle
from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.constants import ST_CHECKPOINT_DIR
from syne_tune.report import retrieve
from syne_tune.util import dump_json_with_numpy

from backends.ray_runner import RunOutput, TrialRunner
from backends.resumable import register_trials

logger = logging.getLogger(__name__)

# A runner's ``output`` call returns at the latest after this many seconds, so a lost reply is soon noticed.
POLL_SECONDS = 10.0
# Seconds to wait for runners to end their scripts (SIGTERM, then SIGKILL after the runner's grace period).
STOP_SECONDS = 10.0
# Seconds a new runner may take to start before its trial moves to a runner that came free (an actor starts in a
# second or two; one the cluster has no room for never does).
START_SECONDS = 10.0
# Each run lists the node it ran on (IP address, Ray node id) in this file of the trial's folder.
NODES_FILE = "nodes"
# The script's stdout as its nodes read it, kept with the trial's checkpoints (in the shared storage) until they go.
NODE_OUTPUT = "node-std.out"


@dataclass
class _Run:
    """One start or resume of a trial on a runner, and how much of its output the tuner has taken."""

    run_id: int
    trial_id: int
    runner: ActorHandle
    args: list[str]
    log: str
    poll: ray.ObjectRef | None = None
    out_seen: int = 0
    err_seen: int = 0
    node: str | None = None


class RayTrialBackend(TrialBackend):
    """Trials as subprocesses in Ray actors that each hold ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs.

    ``checkpoint_root``: trial ``i`` checkpoints into ``checkpoint_root/i/checkpoints``; it must be a folder all
    nodes share (None: the trials folder ``set_path`` gives, enough on one machine). ``shutdown_ray``: end the Ray
    connection (and the local instance it started) when the tuning ends.
    """

    def __init__(self, entry_point: str, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                 checkpoint_root: Path | None = None, shutdown_ray: bool = True, delete_checkpoints: bool = True):
        super().__init__(delete_checkpoints=delete_checkpoints)
        self.entry_point = str(Path(entry_point).resolve())
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.checkpoint_root = checkpoint_root
        self.shutdown_ray = shutdown_ray
        self.local_path: Path | None = None
        self._runner_class = ray.remote(TrialRunner)
        self._runners: list[ActorHandle] = []  # every live runner, busy or idle
        self._idle: list[ActorHandle] = []
        # Runners not known to run yet: their ready() call and when they were asked for.
        self._pending: dict[ActorHandle, tuple[ray.ObjectRef, float]] = {}
        self._run_ids = itertools.count()
        self._runs: dict[int, _Run] = {}  # trial id -> its current run
        self._metrics: dict[int, list[dict[str, Any]]] = {}
        self._exit_codes: dict[int, int] = {}
        self._end_times: dict[int, datetime] = {}
        self._held: dict[int, str] = {}  # paused or stopped by the tuner
        self._unrecovered: set[int] = set()  # trials of an interrupted run whose output is read when they resume
        self._closed = False
        threads = str(max(1, math.floor(cpus_per_trial)))
        # The trial's PyTorch and BLAS threads match its CPUs; unbuffered output reaches the tuner line by line.
        self._env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}

    # Paths ------------------------------------------------------------------------------------------------------

    def set_path(self, results_root: str | None = None, tuner_name: str | None = None):
        self.local_path = Path(results_root).resolve()

    def trial_path(self, trial_id: int) -> Path:
        """Folder of the trial's logs and config in the results folder (on the tuner's machine)."""
        return self.local_path / str(trial_id)

    def checkpoint_trial_path(self, trial_id: int) -> Path:
        """Folder the trial checkpoints into, in the shared storage."""
        root = self.checkpoint_root if self.checkpoint_root is not None else self.local_path
        return root / str(trial_id) / "checkpoints"

    def node_output_path(self, trial_id: int) -> Path:
        """The trial's stdout as its nodes wrote it, next to its checkpoints."""
        return self.checkpoint_trial_path(trial_id).parent / NODE_OUTPUT

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int):
        shutil.copytree(self.checkpoint_trial_path(src_trial_id), self.checkpoint_trial_path(tgt_trial_id))

    def delete_checkpoint(self, trial_id: int):
        path = self.checkpoint_trial_path(trial_id)
        shutil.rmtree(path, ignore_errors=True)
        self.node_output_path(trial_id).unlink(missing_ok=True)
        if self.checkpoint_root is not None:  # leave no empty folders in the shared storage
            for folder in (path.parent, self.checkpoint_root):
                with contextlib.suppress(OSError):  # not empty (or gone)
                    folder.rmdir()

    def entrypoint_path(self) -> Path:
        return Path(self.entry_point)

    def set_entrypoint(self, entry_point: str):
        self.entry_point = str(Path(entry_point).resolve())

    def stdout(self, trial_id: int) -> list[str]:
        return _read_lines(self.trial_path(trial_id) / "std.out")

    def stderr(self, trial_id: int) -> list[str]:
        return _read_lines(self.trial_path(trial_id) / "std.err")

    # Starting and ending runs -----------------------------------------------------------------------------------

    def _schedule(self, trial_id: int, config: dict[str, Any]):
        folder = self.trial_path(trial_id)
        folder.mkdir(parents=True, exist_ok=True)
        if trial_id in self._unrecovered:  # (not before: the tuner gives the trials' folder after prepare_resume)
            self._unrecovered.discard(trial_id)
            self._metrics[trial_id] = retrieve(self._recovered_output(trial_id))
        dump_json_with_numpy(config, str(folder / "config.json"))
        for name in ("std.out", "std.err"):
            (folder / name).touch()
        checkpoint_dir = self.checkpoint_trial_path(trial_id)
        args = [self.entry_point]
        for key, value in {**config, ST_CHECKPOINT_DIR: str(checkpoint_dir)}.items():
            args += [f"--{key}", str(value)]
        runner = self._idle.pop() if self._idle else self._new_runner()
        run = _Run(next(self._run_ids), trial_id, runner, args, str(self.node_output_path(trial_id)))
        self._start(run)
        self._runs[trial_id] = run
        self._metrics.setdefault(trial_id, [])
        self._held.pop(trial_id, None)
        self._exit_codes.pop(trial_id, None)
        self._end_times.pop(trial_id, None)
        logger.info(f"trial {trial_id}: run {run.run_id} of {args}")

    def _start(self, run: _Run):
        run.runner.start.remote(run.run_id, run.args, self._env, os.getcwd(), run.log)
        run.poll = run.runner.output.remote(run.run_id, 0, 0, POLL_SECONDS)

    def _new_runner(self) -> ActorHandle:
        # SPREAD: trials are independent and heavy, so they share a node only when they must.
        runner = self._runner_class.options(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                            max_concurrency=4, scheduling_strategy="SPREAD").remote()
        self._runners.append(runner)
        self._pending[runner] = (runner.ready.remote(), time.monotonic())
        return runner

    def _rehome(self):
        """Move runs whose runner the cluster has no room for to runners that have come free.

        Runners are kept for trial after trial, so their resources never return to the cluster: a run waiting for
        a new runner where --n-workers exceed what the cluster holds would wait for ever (and synchronous
        Hyperband with it). A runner not started after `START_SECONDS` has not started the script either; it is
        dropped.
        """
        self._refresh_pending()
        late = time.monotonic() - START_SECONDS
        waiting = [run for run in self._runs.values()
                   if run.runner in self._pending and self._pending[run.runner][1] < late]
        while waiting and self._idle:
            run = waiting.pop(0)
            self._drop_pending(run.runner)
            run.runner, run.run_id = self._idle.pop(), next(self._run_ids)
            self._start(run)
            logger.info(f"trial {run.trial_id}: run {run.run_id}, moved to a runner that came free")

    def _refresh_pending(self):
        """Forget the pending runners that have started since."""
        if self._pending:
            refs = [ref for ref, _ in self._pending.values()]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for runner, (ref, _) in list(self._pending.items()):
                if ref in ready:
                    del self._pending[runner]

    def _drop_pending(self, runner: ActorHandle):
        del self._pending[runner]
        self._runners.remove(runner)
        _kill(runner)

    def _pause_trial(self, trial_id: int, result: dict | None):
        self._end_runs([trial_id])
        self._held[trial_id] = Status.paused

    def _resume_trial(self, trial_id: int):
        self._held.pop(trial_id, None)

    def _stop_trial(self, trial_id: int, result: dict | None):
        self._end_runs([trial_id])
        self._held[trial_id] = Status.stopped

    def _end_runs(self, trial_ids: list[int]):
        """End the runs of these trials at once, keeping their last output; a runner that does not answer is killed."""
        runs = [self._runs.pop(trial_id) for trial_id in trial_ids if trial_id in self._runs]
        self._refresh_pending()
        for run in [run for run in runs if run.runner in self._pending]:  # never started: nothing to stop
            runs.remove(run)
            self._drop_pending(run.runner)
            self._exit_codes[run.trial_id] = -15
            self._end_times[run.trial_id] = datetime.now()
        if not runs:
            return
        stops = {run.runner.stop.remote(run.run_id, run.out_seen, run.err_seen): run for run in runs}
        ready, _ = ray.wait(list(stops), num_returns=len(stops), timeout=STOP_SECONDS)
        for ref, run in stops.items():
            if ref in ready:
                try:
                    reply = ray.get(ref)
                except ray.exceptions.RayError as error:
                    self._lose_runner(run, f"its Ray actor failed while stopping it: {error}")
                    continue
                self._take(run, reply)
                self._exit_codes[run.trial_id] = reply.returncode if reply.returncode is not None else -15
                self._idle.append(run.runner)
            else:
                self._lose_runner(run, f"it did not stop within {STOP_SECONDS:.0f} s, so its Ray actor was killed")
            self._end_times[run.trial_id] = datetime.now()

    def _lose_runner(self, run: _Run, why: str):
        """The trial fails with ``why`` in its std.err; its runner is killed (which ends its script) and dropped."""
        _append(self.trial_path(run.trial_id) / "std.err", [f"[ray backend] trial {run.trial_id}: {why}\n"])
        self._exit_codes[run.trial_id] = -9
        self._end_times[run.trial_id] = datetime.now()
        _kill(run.runner)
        self._pending.pop(run.runner, None)
        if run.runner in self._runners:
            self._runners.remove(run.runner)

    # Output and status ------------------------------------------------------------------------------------------

    def _take(self, run: _Run, reply: RunOutput):
        """Add a reply's lines to the trial's log files and its report lines to its metrics."""
        folder = self.trial_path(run.trial_id)
        if run.node is None:
            run.node = reply.node
            _append(folder / NODES_FILE, [reply.node + "\n"])
        if reply.out:
            _append(folder / "std.out", reply.out)
            self._metrics[run.trial_id].extend(retrieve(reply.out))
            run.out_seen += len(reply.out)
        if reply.err:
            _append(folder / "std.err", reply.err)
            run.err_seen += len(reply.err)

    def _collect(self):
        """Take every answered ``output`` call without waiting; ask again where the script still runs."""
        polls = {run.poll: run for run in self._runs.values() if run.poll is not None}
        if not polls:
            return
        ready, _ = ray.wait(list(polls), num_returns=len(polls), timeout=0)
        for ref in ready:
            run = polls[ref]
            try:
                reply = ray.get(ref)
            except ray.exceptions.RayError as error:
                del self._runs[run.trial_id]
                self._lose_runner(run, f"its Ray actor died ({type(error).__name__}: {error})")
                continue
            self._take(run, reply)
            if reply.returncode is None:
                run.poll = run.runner.output.remote(run.run_id, run.out_seen, run.err_seen, POLL_SECONDS)
            else:
                del self._runs[run.trial_id]
                self._exit_codes[run.trial_id] = reply.returncode
                self._end_times[run.trial_id] = datetime.now()
                self._idle.append(run.runner)
        self._rehome()

    def _status(self, trial_id: int) -> str:
        if trial_id in self._held:
            return self._held[trial_id]
        if trial_id in self._runs:
            return Status.in_progress
        return Status.completed if self._exit_codes.get(trial_id) == 0 else Status.failed

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        self._collect()
        return [self._trial_dict[trial_id].add_results(
            metrics=list(self._metrics.get(trial_id, [])), status=self._status(trial_id),
            training_end_time=self._end_times.get(trial_id, datetime.now())) for trial_id in trial_ids]

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        self._collect()
        return [(trial_id, Status.in_progress) for trial_id in self._runs if trial_id not in self._held]

    # The end ------------------------------------------------------------------------------------------------------

    def stop_all(self):
        """Stop every running trial (all at once), keeping the checkpoints so that the run can be resumed (see
        ``discard_checkpoints``; Syne Tune's would delete them), then release the cluster."""
        try:
            if not self._closed:
                self._collect()
                running = [trial_id for trial_id in self._runs if trial_id not in self._held]
                self._end_runs(running)
                self._held.update({trial_id: Status.stopped for trial_id in running})
        finally:
            self.close()

    def discard_checkpoints(self):
        """Remove every trial's checkpoints (and its node's output): the run is over and will not be resumed."""
        root = self.checkpoint_root if self.checkpoint_root is not None else self.local_path
        if root is None or not root.is_dir():
            return
        for folder in root.iterdir():
            if folder.name.isdigit():  # a trial's (the trials folder also holds other files without --storage)
                self.delete_checkpoint(int(folder.name))

    def prepare_resume(self, configs: dict[int, dict[str, Any]], resumable: set[int], reports: dict[int, int]):
        """Know the trials of an interrupted run (``resumable.register_trials``); the resumable ones are held paused
        until resumed, and their reports that only a node read are recovered then."""
        register_trials(self, configs, resumable, reports)
        for trial_id in configs:
            if trial_id in resumable:
                self._held[trial_id] = Status.paused
                self._unrecovered.add(trial_id)
            else:
                self._exit_codes[trial_id] = 0

    def _recovered_output(self, trial_id: int) -> list[str]:
        """The trial's stdout up to the interruption: its std.out here, completed by the lines that its node wrote
        to the shared storage but the tuner never received (they are added to std.out too)."""
        received = self.stdout(trial_id)
        written = _read_lines(self.node_output_path(trial_id))
        if written and not written[-1].endswith("\n"):  # cut short by a kill: no whole report
            written.pop()
        if len(written) <= len(received) or written[:len(received)] != received:
            return received  # nothing more, or not the same output (a run from before the node kept it)
        _append(self.trial_path(trial_id) / "std.out", written[len(received):])
        return written

    def close(self):
        """End every runner's script, kill the runners, and disconnect from Ray (stopping a local instance)."""
        if self._closed:
            return
        self._closed = True
        try:
            if ray.is_initialized():
                self._refresh_pending()  # a runner the cluster never placed would not answer: only killed
                ends = [runner.shutdown.remote() for runner in self._runners if runner not in self._pending]
                if ends:
                    ray.wait(ends, num_returns=len(ends), timeout=STOP_SECONDS)
                for runner in self._runners:
                    _kill(runner)
        finally:
            self._runners, self._idle, self._runs, self._pending = [], [], {}, {}
            if self.shutdown_ray and ray.is_initialized():
                ray.shutdown()

    def __str__(self):
        return f"ray entry_point {Path(self.entry_point).name}"


def _kill(runner: ActorHandle):
    try:
        ray.kill(runner, no_restart=True)
    except Exception as error:  # already gone, or Ray is shutting down: nothing left to kill
        logger.info(f"ray.kill: {error}")


def _append(path: Path, lines: list[str]):
    with open(path, "a") as stream:
        stream.writelines(lines)


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True) if path.exists() else []
