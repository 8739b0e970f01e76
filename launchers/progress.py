"""A tqdm progress bar over trials or time, showing the best metric so far."""
import sys
import time

from syne_tune.backend.trial_status import Status
from syne_tune.tuner_callback import TunerCallback
from tqdm import tqdm

from launchers.results import ResultsWriter


class ProgressBar(TunerCallback):
    """Progress over finished trials when a trial limit is set, else over the time budget (seconds)."""

    def __init__(self, writer: ResultsWriter, max_trials: int | None, max_seconds: float, time_unit: str = "s"):
        self.writer = writer
        self.by_trials = max_trials is not None
        total = max_trials if self.by_trials else max_seconds
        unit = "trial" if self.by_trials else time_unit
        bar_format = None if self.by_trials else \
            "{l_bar}{bar}| {n:.0f}/{total:.0f} " + time_unit + " [{elapsed}{postfix}]"
        # Redraw at most twice a second on a terminal and every 30 s into a file or pipe.
        interval = 0.5 if sys.stderr.isatty() else 30
        self.bar = tqdm(total=total, unit=unit, bar_format=bar_format, dynamic_ncols=True, mininterval=interval)
        # Counting finished trials costs O(trials): do it a few times a second, not on every loop of the tuner.
        self._every = min(interval, 0.25)
        self._last = -float("inf")

    def on_loop_end(self):
        if time.perf_counter() - self._last >= self._every:
            self._update()

    def _update(self):
        self._last = time.perf_counter()
        self.writer.refresh_statuses()
        trials = self.writer.trials.values()
        running = sum(t["status"] in (Status.in_progress, Status.stopping) for t in trials)
        # A paused trial (synchronous Hyperband's, waiting for its rung) is not running; it counts as done unless
        # it is promoted and resumed.
        paused = sum(t["status"] == Status.paused for t in trials)
        position = len(self.writer.trials) - running if self.by_trials else \
            min(self.writer.tuner_time(), self.bar.total)
        best = self.writer.best_trial()
        postfix = {"trials": len(self.writer.trials), "running": running}
        if paused:
            postfix["paused"] = paused
        failed = sum(t["status"] == Status.failed for t in trials)
        if failed:
            postfix["failed"] = failed
        if best is not None:
            postfix[f"best {self.writer.metric}"] = f"{best['best_metric']:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(position - self.bar.n)

    def on_tuning_end(self):
        self._update()
        self.bar.refresh()
        self.bar.close()
