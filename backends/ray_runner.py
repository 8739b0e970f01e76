"""Runs on a Ray node, inside one actor: a trial's training script as a subprocess, its output kept for the tuner.

The tuner (``backends.ray_trials``) creates ``TrialRunner`` actors as trials need them (at most one per worker) and
reuses each for trial after trial, so a trial costs a few remote calls rather than a new Ray worker process (about a
second). Output streams by long polling: ``output`` returns as soon as the script printed new lines or ended. The
actor is threaded, so ``stop`` runs while an ``output`` call waits; calls can run out of order, hence the run ids.
Each line of the script's stdout is also appended, as soon as read, to a log in the shared storage (``log``): lines the
tuner never received (its launcher was killed) are read from there by ``--resume``, so no report is lost.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import NamedTuple

# Seconds a stopped script gets after SIGTERM before its process group is killed.
STOP_GRACE_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_waiter():
    """In the child before exec: SIGKILL it when the thread that started (and waits for) it dies.

    If the actor's process is killed (``ray.kill``, a lost driver, a dead node manager), no trial outlives it.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class RunOutput(NamedTuple):
    """What the tuner gets back from a run: new output lines, the exit code once it ended, and the node."""

    out: list[str]
    err: list[str]
    returncode: int | None
    node: str


class TrialRunner:
    """Runs one script at a time; ``run_id`` tells the tuner's runs apart (it only grows)."""

    def __init__(self):
        import ray

        self._node = f"{ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()}"
        self._changed = threading.Condition()
        self._run_id = -1
        self._cancelled_up_to = -1
        self._process: subprocess.Popen | None = None
        self._out: list[str] = []
        self._err: list[str] = []
        self._returncode: int | None = None
        self._waiter: threading.Thread | None = None

    def start(self, run_id: int, args: list[str], env: dict[str, str], cwd: str | None,
              log: str | None = None) -> None:
        """Start ``python args...`` with ``env`` added to this worker's environment, in its own process group; its
        stdout is appended to ``log`` too, where given."""
        with self._changed:
            if run_id <= self._cancelled_up_to or run_id <= self._run_id:
                return  # stopped before it started, or a stale call
            self._end_process()
            self._run_id, self._out, self._err, self._returncode = run_id, [], [], None
            self._process = None
            self._waiter = threading.Thread(target=self._run, args=(run_id, args, env, cwd, log), daemon=True)
            self._waiter.start()

    def _run(self, run_id: int, args: list[str], env: dict[str, str], cwd: str | None, log: str | None):
        # The thread that forks the script also waits for it: PR_SET_PDEATHSIG is tied to this thread.
        log_file = None
        try:
            if log is not None:
                os.makedirs(os.path.dirname(log), exist_ok=True)
                log_file = open(log, "a", encoding="utf-8")
            process = subprocess.Popen(
                [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                errors="replace", bufsize=1, env={**os.environ, **env},
                cwd=cwd if cwd and os.path.isdir(cwd) else None,  # the launcher's folder, where this node has it
                start_new_session=True, preexec_fn=_die_with_waiter)
        except OSError as error:
            if log_file is not None:
                log_file.close()
            with self._changed:
                if self._run_id == run_id:
                    self._err.append(f"could not start {sys.executable} {args[0]} on {self._node}: {error}\n")
                    self._returncode = 127
                    self._changed.notify_all()
            return
        with self._changed:
            if self._run_id != run_id or run_id <= self._cancelled_up_to:
                _kill_group(process, signal.SIGKILL)
            self._process = process
        stderr = threading.Thread(target=self._drain, args=(run_id, process.stderr, self._err), daemon=True)
        stderr.start()
        try:
            self._drain(run_id, process.stdout, self._out, log_file)
        finally:
            if log_file is not None:
                log_file.close()
        stderr.join()
        code = process.wait()
        with self._changed:
            if self._run_id == run_id:
                self._returncode = code
                self._changed.notify_all()

    def ready(self) -> str:
        """Answers (with the node) once the actor runs: a cluster without room for it keeps it pending."""
        return self._node

    def _drain(self, run_id: int, stream, lines: list[str], log=None):
        for line in stream:
            if not line.endswith("\n"):  # the last line of a script ended between a report and its newline
                line += "\n"
            with self._changed:
                if self._run_id == run_id:
                    if log is not None:  # first to the shared disk: a line the tuner may never get is kept there
                        log.write(line)
                        log.flush()
                    lines.append(line)
                    self._changed.notify_all()
        stream.close()

    def _reply(self, run_id: int, out_seen: int, err_seen: int) -> RunOutput:
        if run_id != self._run_id:
            return RunOutput([], [], None, self._node)
        return RunOutput(self._out[out_seen:], self._err[err_seen:], self._returncode, self._node)

    def output(self, run_id: int, out_seen: int, err_seen: int, timeout: float) -> RunOutput:
        """Lines after the first ``out_seen``/``err_seen``, once there are any or the script ended (or on timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: self._run_id > run_id or run_id <= self._cancelled_up_to or (
                self._run_id == run_id and (len(self._out) > out_seen or len(self._err) > err_seen
                                            or self._returncode is not None)), timeout)
            return self._reply(run_id, out_seen, err_seen)

    def stop(self, run_id: int, out_seen: int, err_seen: int) -> RunOutput:
        """End the run (SIGTERM to its process group, SIGKILL after a grace period); returns its remaining output."""
        with self._changed:
            self._cancelled_up_to = max(self._cancelled_up_to, run_id)
            if self._run_id == run_id:
                self._end_process()
            return self._reply(run_id, out_seen, err_seen)

    def shutdown(self) -> None:
        """End whatever runs, before the actor is killed."""
        with self._changed:
            self._cancelled_up_to = max(self._cancelled_up_to, self._run_id)
            self._end_process()

    def _end_process(self):
        """Called holding the lock; waits (releasing it) until the running script has exited and been drained."""
        waiter = self._waiter
        if waiter is None or not waiter.is_alive():
            return
        if self._process is not None and self._process.poll() is None:
            _kill_group(self._process, signal.SIGTERM)
            if not self._changed.wait_for(lambda: self._returncode is not None, STOP_GRACE_SECONDS):
                _kill_group(self._process, signal.SIGKILL)
        self._changed.wait_for(lambda: not waiter.is_alive() or self._returncode is not None, STOP_GRACE_SECONDS)


def _kill_group(process: subprocess.Popen, sig: int):
    """Signal the script and everything it started (data loader workers, ...): its whole process group."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
