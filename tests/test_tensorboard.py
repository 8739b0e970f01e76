"""--tensorboard: one TensorBoard run per trial, read back record by record; the message where the package is
missing; nothing loaded without the flag."""
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision

from conftest import custom_flags, launch, read_results
from launchers.cli import parse_args

needs_writer = pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None,
                                  reason='--tensorboard needs tensorboardX: pip install -e ".[tensorboard]"')

SESSION_START = "_hparams_/session_start_info"


def event_files(run: Path) -> list[Path]:
    """A run's event files in the order they were opened (the logger numbers them: ``...<host>.<n>``)."""
    return sorted(run.glob("events.out.tfevents.*"), key=lambda path: int(path.name.rsplit(".", 1)[1]))


def read_events(run: Path) -> list:
    """Every event of a run folder, each record's framing and checksums checked (the TFRecord format)."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    events = []
    for path in event_files(run):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            header = data[offset:offset + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[offset + 8:offset + 12])[0] == masked_crc32c(header)
            body = data[offset + 12:offset + 12 + length]
            assert struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])[0] == masked_crc32c(body)
            events.append(Event.FromString(body))
            offset += 16 + length
    return events


def scalars(events: list) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall time)] in the order written."""
    series: dict[str, list] = {}
    for event in events:
        for value in event.summary.value:
            if value.tag != SESSION_START:
                series.setdefault(value.tag, []).append((event.step, value.simple_value, event.wall_time))
    return series


def hparams(events: list) -> dict[str, object]:
    """The configuration recorded as TensorBoard hparams (the session start info), by name."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    starts = [value for event in events for value in event.summary.value if value.tag == SESSION_START]
    assert len(starts) == 1, "one session start per trial"
    assert starts[0].metadata.plugin_data.plugin_name == "hparams"
    data = HParamsPluginData.FromString(starts[0].metadata.plugin_data.content)
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in data.session_start_info.hparams.items()}


@pytest.fixture
def hyperband_run(launch_in_process, nb201_table_path, tmp_path) -> Path:
    """A simulated Hyperband run (it pauses and resumes trials) with --tensorboard; returns its results folder."""
    code = launch_in_process("--scheduler", "hyperband", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(nb201_table_path), "--experiment-name", "tb", "--max-num-trials", "12",
                             "--n-workers", "2", "--tensorboard", cwd=tmp_path)
    assert code == 0
    return tmp_path / "results" / "tb"


@needs_writer
def test_each_trial_gets_a_run_with_every_metric_against_epoch_and_time_and_its_config(capsys, hyperband_run):
    results, trials, _ = read_results(hyperband_run)
    logdir = hyperband_run / "tensorboard"
    assert f"tensorboard --logdir {logdir.relative_to(hyperband_run.parent.parent)}" in capsys.readouterr().out
    assert sorted(path.name for path in logdir.iterdir()) == sorted(f"trial_{i}" for i in trials["trial_id"])
    metrics = ["valid_error", "valid_loss", "train_loss", "test_error", "elapsed_time", "estimated"]
    resumed = 0
    for trial_id, rows in results.groupby("trial_id", sort=False):
        run = logdir / f"trial_{trial_id}"
        resumed += len(event_files(run)) > 1
        events = read_events(run)
        series = scalars(events)
        assert set(series) == {f"epoch/{m}" for m in metrics} | {f"tuner_time/{m}" for m in metrics + ["epoch"]}
        for metric in metrics:
            expected = [(e, np.float32(v)) for e, v in zip(rows["epoch"], rows[metric])]
            assert [(step, np.float32(value)) for step, value, _ in series[f"epoch/{metric}"]] == expected
            by_time = series[f"tuner_time/{metric}"]
            assert [step for step, _, _ in by_time] == [round(t) for t in rows["tuner_time"]]
            assert [np.float32(value) for _, value, _ in by_time] == [np.float32(v) for v in rows[metric]]
        # Wall times: the run's start plus the tuner time, so the time axis is exact where steps are whole seconds.
        walls = np.array([wall for _, _, wall in series["epoch/valid_error"]])
        np.testing.assert_allclose(walls - walls[0], rows["tuner_time"] - rows["tuner_time"].iloc[0], atol=1e-5)
        config = trials.set_index("trial_id").loc[trial_id]
        assert hparams(events) == {name[len("config_"):]: config[name] for name in trials.columns
                                   if name.startswith("config_")}
    assert resumed, "Hyperband resumed some trial, whose run then has a second event file"


@needs_writer
def test_tensorboard_itself_reads_the_runs_and_the_hparams(hyperband_run):
    """Through the loader TensorBoard's server uses (scalars become tensors there)."""
    multiplexer_module = pytest.importorskip(
        "tensorboard.backend.event_processing.plugin_event_multiplexer",
        reason="reading with TensorBoard's own loader needs the tensorboard package (pip install tensorboard)")
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    results, trials, _ = read_results(hyperband_run)
    multiplexer = multiplexer_module.EventMultiplexer(tensor_size_guidance={"scalars": 0})
    multiplexer.AddRunsFromDirectory(str(hyperband_run / "tensorboard"))
    multiplexer.Reload()
    assert set(multiplexer.Runs()) == {f"trial_{i}" for i in trials["trial_id"]}
    for trial_id, rows in results.groupby("trial_id"):
        run = f"trial_{trial_id}"
        points = multiplexer.Tensors(run, "epoch/valid_error")
        assert [(p.step, np.float32(tensor_util.make_ndarray(p.tensor_proto))) for p in points] == \
            [(e, np.float32(v)) for e, v in zip(rows["epoch"], rows["valid_error"])]
        content = multiplexer.PluginRunToTagToContent("hparams")[run][metadata.SESSION_START_INFO_TAG]
        start = metadata.parse_session_start_info_plugin_data(content)
        assert start.hparams["x0"].string_value == trials.set_index("trial_id").loc[trial_id, "config_x0"]


@needs_writer
def test_a_running_trial_is_on_disk_before_it_ends_and_a_resume_adds_a_file(tmp_path):
    from launchers.tensorboard import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path / "tb", ["lr", "opt", "unset"], "epoch", clock=lambda: 12.4,
                               flush_interval=0)
    logger.on_tuning_start(None)
    trial = Trial(trial_id=3, config={"lr": 0.01, "opt": "adam", "unset": None, "epochs": 9}, creation_time=None)
    logger.on_trial_result(trial, "InProgress", {"epoch": 1, "loss": 0.5, "note": "text"}, SchedulerDecision.CONTINUE)
    logger.on_loop_end()  # flushed: a running trial is visible now, with its file still open
    run = tmp_path / "tb" / "trial_3"
    events = read_events(run)
    assert scalars(events) == {"epoch/loss": [(1, 0.5, pytest.approx(events[-1].wall_time))],
                               "tuner_time/loss": [(12, 0.5, pytest.approx(events[-1].wall_time))],
                               "tuner_time/epoch": [(12, 1.0, pytest.approx(events[-1].wall_time))]}
    assert hparams(events) == {"lr": 0.01, "opt": "adam"}  # not the script's fixed flags, nor inactive ones
    logger.on_trial_result(trial, "InProgress", {"epoch": 2, "loss": 0.25, "st_tuner_time": 30.2},
                           SchedulerDecision.PAUSE)
    # A pause closes the file (so open files stay as many as running trials); the resume writes a second one.
    logger.on_trial_result(trial, "InProgress", {"epoch": 3, "loss": 0.125, "st_tuner_time": 41.0},
                           SchedulerDecision.CONTINUE)
    logger.close()
    assert len(event_files(run)) == 2
    series = scalars(read_events(run))
    assert [(step, value) for step, value, _ in series["epoch/loss"]] == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert [step for step, _, _ in series["tuner_time/loss"]] == [12, 30, 41]


def test_a_missing_package_is_one_sentence_with_the_pip_command(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        parse_args("random_search", ["--tensorboard", "--experiment-name", "nope"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith('error: --tensorboard needs the tensorboardX package, which is not installed: run '
                          'pip install -e ".[tensorboard]" (or pip install tensorboardX).')
    assert not (tmp_path / "results").exists()


def test_a_run_without_the_flag_loads_no_writer(launch_in_process, nb201_table_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # importing it would fail the run
    monkeypatch.delitem(sys.modules, "launchers.tensorboard", raising=False)
    code = launch_in_process("--scheduler", "asha", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(nb201_table_path), "--experiment-name", "plain", "--max-num-trials",
                             "6", cwd=tmp_path)
    assert code == 0 and "launchers.tensorboard" not in sys.modules
    assert not (tmp_path / "results" / "plain" / "tensorboard").exists()


@pytest.mark.slow
@needs_writer
def test_local_trials_are_logged_as_they_report(quick_script, tmp_path):
    """Syne Tune's Tuner with trials as processes: each trial's nine epochs, by its own reports."""
    run = launch("random_search", *custom_flags(*quick_script, "--max-num-trials", "2", "--n-workers", "2",
                                                "--experiment-name", "local", "--tensorboard"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "results" / "local"
    results, trials, _ = read_results(folder)
    for trial_id, rows in results.groupby("trial_id"):
        events = read_events(folder / "tensorboard" / f"trial_{trial_id}")
        series = scalars(events)
        assert [(s, np.float32(v)) for s, v, _ in series["epoch/loss"]] == \
            [(e, np.float32(v)) for e, v in zip(rows["epoch"], rows["loss"])] and len(rows) == 9
        assert hparams(events)["kind"] == trials.set_index("trial_id").loc[trial_id, "config_kind"]


@needs_writer
def test_a_resumed_simulation_logs_every_report_once(launch_in_process, nb201_table_path, tmp_path, monkeypatch):
    """A resumed simulated run replays the run from its seed: its TensorBoard runs are those of an uninterrupted
    run, not the reports before the interruption twice."""
    from launchers.run import run
    from test_reliability import _StopAfter

    flags = ["--scheduler", "asha", "--backend", "simulated", "--benchmark", "nasbench201", "--dataset",
             str(nb201_table_path), "--max-num-trials", "20", "--n-workers", "2", "--tensorboard"]
    assert launch_in_process(*flags, "--experiment-name", "whole", cwd=tmp_path) == 0
    monkeypatch.chdir(tmp_path)
    assert run(parse_args(None, [*flags, "--experiment-name", "cut"]), progress_bar=False,
               callbacks=[_StopAfter(8)]) == 130
    assert launch_in_process("--resume", "cut", cwd=tmp_path) == 0
    whole, cut = (tmp_path / "results" / name / "tensorboard" for name in ("whole", "cut"))
    assert sorted(p.name for p in cut.iterdir()) == sorted(p.name for p in whole.iterdir())
    for run_folder in whole.iterdir():
        again = read_events(cut / run_folder.name)
        assert {tag: [(step, value) for step, value, _ in points] for tag, points in scalars(again).items()} == {
            tag: [(step, value) for step, value, _ in points]
            for tag, points in scalars(read_events(run_folder)).items()}
        hparams(again)  # exactly one session start
