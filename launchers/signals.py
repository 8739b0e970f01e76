"""Signals that end a run: each becomes an exception that unwinds the tuning loop (trials stopped, results written)
and then the conventional exit status, 128 + the signal number (Ctrl-C 130, ``kill`` 143, a closed terminal 129)."""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

# SIGINT needs nothing: Python raises KeyboardInterrupt for it already.
HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The run was told to stop by ``signum``."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise(signum, frame):
    raise Interrupted(signum)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the run (SIGINT where it was Ctrl-C or an embedding program's own stop)."""
    return 128 + (interrupt.signum if isinstance(interrupt, Interrupted) else signal.SIGINT)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise ``Interrupted``, where nobody handles them yet (a program that runs tuning
    runs inside itself, such as ``compare.py``, keeps its own handlers); the handlers are restored after."""
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    try:
        for signum, handler in previous.items():
            if handler in (signal.SIG_DFL, None):
                signal.signal(signum, _raise)
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
