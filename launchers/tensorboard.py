"""``--tensorboard``: live TensorBoard runs, one per trial, under ``<experiment>/tensorboard/trial_<id>/``.

A trial's run holds every number of its reports twice: against the resource (tag ``epoch/<name>``, step = epoch) and
against tuner time (tag ``tuner_time/<name>``, step = whole seconds), each event's wall time being the run's start
plus the tuner time; and the trial's configuration as hparams (a session start, which TensorBoard's HPARAMS tab
reads, inferring its metrics from the scalar tags). It is a tuner callback like the results writer, so every
backend (Syne Tune's ``Tuner``, our simulation engine, Ray) feeds it the same way.

The writer is the optional tensorboardX package (``pip install -e ".[tensorboard]"``), imported only when the flag
is given. Its plain ``EventsWriter`` is used rather than ``SummaryWriter``, which starts a thread and a
multiprocessing queue per run and costs 7x as much per trial; this module flushes every few seconds instead.
"""
import importlib.util
import numbers
import time
from pathlib import Path
from typing import Any, Callable

from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

PACKAGE = "tensorboardX"
INSTALL = 'pip install -e ".[tensorboard]"'
TIME_TAG = "tuner_time"


def missing_package() -> str | None:
    """One sentence telling how to install the writer, or None where it is installed."""
    if importlib.util.find_spec(PACKAGE) is not None:
        return None
    return (f"--tensorboard needs the {PACKAGE} package, which is not installed: run {INSTALL} "
            f"(or pip install {PACKAGE}).")


def _hparam(value: Any) -> bool | float | str:
    """A config value as TensorBoard's hparams take it (bool, number or string)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


class TensorBoardLogger(TunerCallback):
    """Writes each trial's reports to ``folder/trial_<id>``; ``clock`` gives the tuner time where a report has none
    (the results writer's, so that both agree). An event file is open only while its trial runs; a trial resumed
    after a pause or a stop gets another one in the same run folder."""

    def __init__(self, folder: Path, hyperparameters: list[str], resource_attr: str, clock: Callable[[], float],
                 flush_interval: float = 2.0):
        # Imported here: the module itself loads without the package, to say what is missing.
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import hparams, scalar

        self._events_writer, self._event, self._hparams, self._scalar = EventsWriter, Event, hparams, scalar
        self.folder = Path(folder)
        self.hyperparameters = hyperparameters
        self.resource_attr = resource_attr
        self.clock = clock
        self.flush_interval = flush_interval
        self._wall_start = time.time()
        self._last_flush = time.perf_counter()
        self._open: dict[int, Any] = {}
        # Event files per trial so far: their names hold the second they were opened, so each gets its own suffix.
        self._files: dict[int, int] = {}

    def on_tuning_start(self, tuner):
        self._wall_start = time.time()
        self._last_flush = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _writer(self, trial: Trial, wall_time: float):
        """The trial's open event file, opened (with the configuration, the first time) where it is not."""
        writer = self._open.get(trial.trial_id)
        if writer is None:
            run = self.folder / f"trial_{trial.trial_id}"
            run.mkdir(parents=True, exist_ok=True)
            count = self._files.get(trial.trial_id)
            if count is None:  # a resumed run: the trial's files from before count, its configuration is there
                count = sum(1 for _ in run.glob("events*"))
            self._files[trial.trial_id] = count + 1
            writer = self._open[trial.trial_id] = self._events_writer(str(run / "events"), f".{count}")
            if count == 0:
                config = {name: _hparam(trial.config[name]) for name in self.hyperparameters
                          if trial.config.get(name) is not None}
                _, session_start, _ = self._hparams(config, {})
                writer.write_event(self._event(wall_time=wall_time, summary=session_start))
        return writer

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str):
        tuner_time = result[ST_TUNER_TIME] if ST_TUNER_TIME in result else self.clock()
        wall_time = self._wall_start + tuner_time
        writer = self._writer(trial, wall_time)
        epoch = result.get(self.resource_attr)
        time_step = int(round(tuner_time))
        for name, value in result.items():
            if name.startswith("st_") or not isinstance(value, numbers.Real):
                continue
            if epoch is not None and name != self.resource_attr:
                writer.write_event(self._event(wall_time=wall_time, step=int(epoch),
                                               summary=self._scalar(f"{self.resource_attr}/{name}", value)))
            writer.write_event(self._event(wall_time=wall_time, step=time_step,
                                           summary=self._scalar(f"{TIME_TAG}/{name}", value)))
        if decision in (SchedulerDecision.STOP, SchedulerDecision.PAUSE):
            self._close(trial.trial_id)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]):
        self._close(trial.trial_id)

    def on_loop_end(self):
        # Flushed every few seconds, so that TensorBoard shows a running trial while it runs.
        if time.perf_counter() - self._last_flush >= self.flush_interval:
            for writer in self._open.values():
                writer.flush()
            self._last_flush = time.perf_counter()

    def on_tuning_end(self):
        self.close()

    def _close(self, trial_id: int):
        writer = self._open.pop(trial_id, None)
        if writer is not None:
            writer.close()

    def close(self):
        """Flush and close every open event file (the end of the run, also after an error or Ctrl-C)."""
        for trial_id in list(self._open):
            self._close(trial_id)
