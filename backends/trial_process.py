"""Start a trial's process so that it never outlives the launcher, and end it with everything it started.

Each trial runs in a session (so a process group) of its own: Ctrl-C in the terminal reaches the launcher only, which
stops the trials in order, and stopping a trial kills its whole group, children included. On Linux the trial also
gets a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so that a launcher killed without any chance to
clean up (``kill -9``, out of memory) takes its trials with it at once. The command is an argument list, never a
string split on spaces, so any path or value passes as it is.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import IO, Sequence

_PR_SET_PDEATHSIG = 1
# Loaded once, here: the function that runs in the forked child must not load libraries or allocate much.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _tie_to_parent(parent_pid: int):
    """Return the function the child runs before ``exec``: die with ``parent_pid``."""
    def tie():
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the launcher died before the signal was armed
            os._exit(1)
    return tie


def start(argv: Sequence[str], stdout: IO, stderr: IO, env: dict[str, str]) -> subprocess.Popen:
    """Run ``argv`` in a new session, killed when this process dies (Linux), its output to ``stdout``/``stderr``."""
    return subprocess.Popen(list(argv), stdout=stdout, stderr=stderr, env=env, start_new_session=True,
                            preexec_fn=_tie_to_parent(os.getpid()))


def kill_group(process: subprocess.Popen):
    """Kill the process's group (the trial and whatever it started), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # already gone (its group with it)
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
        pass
