"""The Ray backend (``--backend ray``): its flags, and runs on a real two-node Ray cluster started on this machine.

The cluster (a head and a second node, 1 CPU each, ``ray.cluster_utils.Cluster``) is shared by the module; tests that
need it are skipped with the reason where Ray is not installed or cannot start. Both nodes are this machine, so the
tests can see every trial process; each trial's ``nodes`` file says which Ray node ran it.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from conftest import REPO_ROOT, custom_flags, default_signals, launch, read_results
from launchers.cli import parse_args
from schedulers.registry import SCHEDULERS
from launchers.results import TRIAL_COLUMNS

# Reports after a checkpoint, which it resumes from: a paused trial resumed elsewhere continues its epoch count.
CHECKPOINT_SCRIPT = '''
import argparse, json, os, sys, time
from syne_tune import Reporter
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--epochs", type=int)
parser.add_argument("--sleep", type=float, default=0.3)
parser.add_argument("--fail", type=int, default=0)
parser.add_argument("--hold", type=float, default=0, help="seconds to sleep, silent, after the first report")
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()
if args.fail:
    sys.exit("failing on purpose")
path = os.path.join(args.st_checkpoint_dir, "state.json")
start = json.load(open(path))["epoch"] if os.path.exists(path) else 0
os.makedirs(args.st_checkpoint_dir, exist_ok=True)
report = Reporter()
for epoch in range(start + 1, args.epochs + 1):
    time.sleep(args.sleep)
    json.dump({"epoch": epoch}, open(path + ".tmp", "w"))
    os.replace(path + ".tmp", path)
    report(epoch=epoch, loss=(args.x - 0.3) ** 2 + 1.0 / epoch, resumed_from=start, pid=os.getpid(),
           threads=int(os.environ["OMP_NUM_THREADS"]))
    if epoch == start + 1:
        time.sleep(args.hold)
'''
VOLATILE_COLUMNS = ("tuner_time", "start_time", "end_time")


def parse_error(capsys, *flags: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse_args("random_search", list(flags))
    assert exit_.value.code == 2
    return capsys.readouterr().err


# Flags, without Ray ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--cpus-per-trial", "2"], "--cpus-per-trial applies to --backend ray only, not to 'local'."),
    (["--ray-address", "auto"], "--ray-address applies to --backend ray only, not to 'local'."),
    (["--storage", "/tmp"], "--storage applies to --backend ray only, not to 'local'."),
    (["--backend", "ray", "--cpus-per-trial", "0"], "--cpus-per-trial must be a positive number of CPUs (e.g. 1 or "
                                                    "0.5), got 0."),
    (["--backend", "ray", "--gpus-per-trial", "-1"], "--gpus-per-trial must be 0 or a positive number of GPUs, got "
                                                     "-1."),
    (["--backend", "ray", "--storage", "/no/such/dir"], "--storage '/no/such/dir' is not a directory: give one that "
                                                        "every Ray node mounts at the same path."),
])
def test_bad_ray_flags_exit_with_one_clear_sentence(flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in parse_error(capsys, *flags)


def test_the_ray_flags_become_the_backends_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = parse_args("random_search", ["--backend", "ray", "--cpus-per-trial", "2", "--gpus-per-trial", "0.5",
                                        "--storage", str(tmp_path), "--ray-address", "head:6379",
                                        "--experiment-name", "e"])
    assert plan.backend_options == {"ray_address": "head:6379", "cpus_per_trial": 2.0, "gpus_per_trial": 0.5,
                                    "storage": str(tmp_path.resolve() / "e")}
    defaults = parse_args("random_search", ["--backend", "ray"]).backend_options
    assert defaults == {"ray_address": None, "cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "storage": None}
    assert parse_args("random_search", []).backend_options == {}


def test_storage_already_holding_the_experiment_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e" / "0").mkdir(parents=True)
    assert (f"--storage '{tmp_path}' already holds checkpoints of an experiment 'e': choose another "
            "--experiment-name or --storage.") in parse_error(capsys, "--backend", "ray", "--storage", str(tmp_path),
                                                              "--experiment-name", "e")


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    import importlib.util

    from backends import ray_cluster

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    with pytest.raises(SystemExit, match=r'needs Ray, which is not installed: pip install -e "\.\[ray\]"'):
        ray_cluster.start(None, 1)


def test_help_and_a_local_run_never_import_ray(tmp_path):
    code = f"""
import sys
from launchers.cli import parse_args
try:
    parse_args("random_search", ["--help"])
except SystemExit:
    pass
plan = parse_args("random_search", ["--results-dir", {str(tmp_path)!r}])
plan.backend.start(plan.benchmark, 1, options=plan.backend_options)
import launchers.run
assert not [m for m in sys.modules if m == "ray" or m.startswith(("ray.", "backends.ray"))], "ray was imported"
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# A two-node cluster ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    """A head and a second Ray node on this machine, 1 CPU each; the test process is connected to it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e \".[ray]\")")
    from ray.cluster_utils import Cluster

    small = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
    try:
        cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": True})
        cluster.add_node(**small)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    except Exception as error:  # any failure to start means: no cluster on this machine
        pytest.skip(f"Ray could not start a two-node cluster here: {error}")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def nodes_of(folder: Path) -> dict[int, list[str]]:
    """For each trial of a results folder, the Ray node of each of its runs."""
    return {int(path.parent.name): path.read_text().splitlines() for path in (folder / "trials").glob("*/nodes")}


def processes_running(script: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``script`` (a path unique to the test)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with_script = str(script) in " ".join(process.info["cmdline"] or [])
        if with_script and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def live_on_cluster() -> list[tuple[str, str]]:
    """(name, state) of the tuner's actors not yet dead and of tasks still running or waiting, on the cluster."""
    from ray.util.state import list_actors, list_tasks

    actors = list_actors(filters=[("class_name", "=", "TrialRunner")], limit=10_000, raise_on_missing_output=False)
    tasks = list_tasks(limit=10_000, raise_on_missing_output=False)
    return [(a.class_name, a.state) for a in actors if a.state != "DEAD"] + \
        [(t.name, t.state) for t in tasks if t.state not in ("FINISHED", "FAILED")]


def assert_nothing_left(script: Path):
    """No process of ``script`` and, once Ray's state has caught up (it is reported every second), nothing of the
    tuner on the cluster."""
    assert not processes_running(script)
    deadline = time.time() + 30
    while live_on_cluster() and time.time() < deadline:
        time.sleep(0.5)
    assert not live_on_cluster(), live_on_cluster()


def wait_for(condition, seconds: float = 60, what: str = "condition"):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def without_times(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows sorted by ``keys``, without the columns that hold times."""
    frame = frame.drop(columns=[c for c in VOLATILE_COLUMNS if c in frame.columns])
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_random_search_on_two_nodes_writes_what_the_local_backend_writes(ray_cluster, quick_script, tmp_path):
    flags = custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "4", "--seed", "3")
    ray_run = launch("random_search", *flags, "--backend", "ray", "--ray-address", ray_cluster.address,
                     "--experiment-name", "ray", cwd=tmp_path)
    assert ray_run.returncode == 0, ray_run.stderr
    local_run = launch("random_search", *flags, "--experiment-name", "local", cwd=tmp_path)
    assert local_run.returncode == 0, local_run.stderr
    (ray_results, ray_trials, ray_meta), (results, trials, meta) = (
        read_results(tmp_path / "results" / name) for name in ("ray", "local"))
    # Same shape and, the script being deterministic, the same content apart from times.
    assert list(ray_results.columns) == list(results.columns) and list(ray_trials.columns) == list(trials.columns)
    pd.testing.assert_frame_equal(without_times(ray_results, ["trial_id", "epoch"]),
                                  without_times(results, ["trial_id", "epoch"]))
    pd.testing.assert_frame_equal(without_times(ray_trials, ["trial_id"]), without_times(trials, ["trial_id"]))
    assert list(ray_meta) == list(meta) and ray_meta["backend"] == "ray" and ray_meta["status"] == "finished"
    assert set(ray_trials["status"]) == {"Completed"} and len(ray_results) == 36
    nodes = nodes_of(tmp_path / "results" / "ray")
    assert sorted(nodes) == [0, 1, 2, 3] and len({node for runs in nodes.values() for node in runs}) == 2
    for trial_id in range(4):
        trial = tmp_path / "results" / "ray" / "trials" / str(trial_id)
        assert (trial / "std.out").read_text().count("[tune-metric]") == 9 and (trial / "config.json").exists()
    assert "Tuning finished: 4 trials, 36 reports." in ray_run.stdout


@pytest.mark.slow
def test_hyperband_promotions_on_two_nodes_resume_from_the_shared_storage(ray_cluster, tmp_path):
    import ConfigSpace as CS

    script, space, storage = tmp_path / "checkpointing.py", tmp_path / "space.json", tmp_path / "storage"
    script.write_text(CHECKPOINT_SCRIPT)
    config_space = CS.ConfigurationSpace()
    config_space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.Constant("epochs", 9), CS.Constant("sleep", 0.05)])
    config_space.to_json(space)
    storage.mkdir()
    run = launch("hyperband", *custom_flags(script, space, "--n-workers", "2", "--max-wallclock-time", "30"),
                 "--backend", "ray", "--ray-address", ray_cluster.address, "--storage", str(storage),
                 "--experiment-name", "hb", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "hb")
    declared = list(SCHEDULERS["hyperband"].columns)
    assert list(trials.columns) == TRIAL_COLUMNS + declared + [c for c in trials.columns if c.startswith("config_")]
    assert (trials["epochs"] == 9).any() and (trials["epochs"] < 9).any()
    # Promoted trials were paused and resumed from their checkpoints: no epoch was trained twice or skipped.
    for trial_id, epochs in results.groupby("trial_id")["epoch"]:
        assert list(epochs) == list(range(1, len(epochs) + 1)), (trial_id, list(epochs))
    assert (results["resumed_from"] > 0).any() and (results["threads"] == 1).all()
    reached, epochs = results.groupby("trial_id")["epoch"].max(), trials.set_index("trial_id")["epochs"]
    assert (epochs[reached.index] == reached).all() and (epochs.drop(reached.index) == 0).all()
    # Checkpoints went to the storage, not the results folder, and were all deleted at the end.
    assert not list((tmp_path / "results" / "hb" / "trials").glob("*/checkpoints")) and not list(storage.iterdir())
    runs = nodes_of(tmp_path / "results" / "hb")
    assert len({node for nodes in runs.values() for node in nodes}) == 2 and max(map(len, runs.values())) >= 2


@pytest.mark.slow
def test_more_workers_than_the_cluster_holds_wait_for_a_runner_that_comes_free(ray_cluster, quick_script, tmp_path):
    """Three workers on a cluster with room for two trials: the third waits for a runner that comes free (runners
    are reused, so the cluster frees nothing: it used to wait for ever, and synchronous Hyperband's rung with it).
    The script writes each report and its newline apart, as an unbuffered stdout does."""
    from test_hyperband_sync import SPLIT_REPORT_SCRIPT

    script, space = quick_script
    script.write_text(SPLIT_REPORT_SCRIPT)
    run = launch("hyperband", *custom_flags(script, space, "--n-workers", "3", "--max-wallclock-time", "30"),
                 "--backend", "ray", "--ray-address", ray_cluster.address, "--experiment-name", "hb", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "the other 1 of --n-workers 3 wait for a free node" in run.stderr
    results, trials, _ = read_results(tmp_path / "results" / "hb")
    first = trials[trials["iteration"] == 0].set_index("trial_id")
    assert (first["epochs"] >= 1).all() and (first["epochs"] >= 3).any()  # its rung filled: promotions ran
    moved = {int(m) for m in re.findall(r"trial (\d+): run \d+, moved to a runner that came free",
                                        (tmp_path / "results" / "hb" / "tuner.log").read_text())}
    assert moved & set(first.index)  # a trial of the first rung waited for a runner
    for trial_id, epochs in results.groupby("trial_id")["epoch"]:
        assert list(epochs) == list(range(1, len(epochs) + 1)), (trial_id, list(epochs))
    assert not [p for p in (tmp_path / "results" / "hb" / "trials").glob("*/std.out")
                if "}[tune-metric]" in p.read_text()]


@pytest.mark.slow
@pytest.mark.parametrize("scheduler, limit", [("random_search", ["--max-num-trials", "3", "--max-epochs", "2"]),
                                              ("hyperband", ["--max-wallclock-time", "75", "--max-epochs", "3"])],
                         ids=["random_search", "hyperband"])
def test_mnist_convnet_on_two_nodes(scheduler, limit, ray_cluster, synthetic_mnist_root, tmp_path):
    run = launch(scheduler, "--n-workers", "2", *limit, "--dataset-path", str(synthetic_mnist_root),
                 "--backend", "ray", "--ray-address", ray_cluster.address, "--experiment-name", "mnist",
                 cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "mnist")
    assert results["valid_error"].between(0, 1).all() and metadata["backend"] == "ray"
    assert results["epoch"].max() == metadata["budget"]["max_resource"]
    # No epoch trained twice or skipped, also by trials that were paused and resumed from their checkpoints.
    for trial_id, epochs in results.groupby("trial_id")["epoch"]:
        assert list(epochs) == list(range(1, len(epochs) + 1)), (trial_id, list(epochs))
    runs = nodes_of(tmp_path / "results" / "mnist")
    assert len({node for nodes in runs.values() for node in nodes}) == 2
    if scheduler == "random_search":
        assert len(trials) == 3 and set(trials["status"]) == {"Completed"}
    else:
        resumed = [trial_id for trial_id, nodes in runs.items() if len(nodes) >= 2]
        # (the time limit may end the run while the last one resumed is still at its first epoch)
        assert resumed and (trials.set_index("trial_id").loc[resumed, "epochs"] >= 2).any()


class PauseAllAtRung(TrialScheduler):
    """One synchronous rung: every trial pauses at epoch ``rung``; once all are paused, all resume to the end."""

    def __init__(self, configs: list[dict], rung: int):
        super().__init__(random_seed=0)
        self.configs, self.rung, self.paused, self.resumed = list(configs), rung, [], set()

    def suggest(self) -> TrialSuggestion | None:
        if self.configs:
            return TrialSuggestion.start_suggestion(self.configs.pop(0))
        waiting = [trial_id for trial_id in self.paused if trial_id not in self.resumed]
        if not waiting:
            return None
        self.resumed.add(waiting[0])
        return TrialSuggestion.resume_suggestion(waiting[0])

    def on_trial_result(self, trial, result: dict) -> str:
        if result["epoch"] == self.rung and trial.trial_id not in self.paused:
            self.paused.append(trial.trial_id)
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE

    def metric_names(self) -> list[str]:
        return ["loss"]

    def metric_mode(self) -> str:
        return "min"


@pytest.mark.slow
def test_synchronous_promotions_resume_from_checkpoints_in_shared_storage(ray_cluster, tmp_path, monkeypatch):
    from syne_tune import StoppingCriterion, Tuner

    from backends.ray_trials import RayTrialBackend

    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    script = tmp_path / "checkpointing.py"
    script.write_text(CHECKPOINT_SCRIPT)
    storage = tmp_path / "storage"
    backend = RayTrialBackend(str(script), checkpoint_root=storage, shutdown_ray=False, delete_checkpoints=False)
    configs = [{"x": x, "epochs": 6, "sleep": 0.3} for x in (0.1, 0.5, 0.9)]
    tuner = Tuner(trial_backend=backend, scheduler=PauseAllAtRung(configs, rung=2),
                  stop_criterion=StoppingCriterion(max_wallclock_time=120), n_workers=2, sleep_time=0.05,
                  asynchronous_scheduling=False, save_tuner=False, trial_backend_path=str(tmp_path / "trials"),
                  tuner_name="pause", suffix_tuner_name=False)
    tuner.run()
    for trial_id in range(3):
        metrics = [json.loads(line.split(": ", 1)[1]) for line in backend.stdout(trial_id) if "[tune-metric]" in line]
        # Epochs 1-6 exactly once: the resumed run started from the checkpoint the paused one wrote.
        assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5, 6], metrics
        assert metrics[-1]["resumed_from"] >= 2 and metrics[0]["pid"] != metrics[-1]["pid"]
        assert json.loads((storage / str(trial_id) / "checkpoints" / "state.json").read_text()) == {"epoch": 6}
        assert len((tmp_path / "trials" / str(trial_id) / "nodes").read_text().splitlines()) == 2
    assert_nothing_left(script)


@pytest.mark.slow
def test_a_paused_trial_resumes_on_the_other_node_and_stop_and_failure_are_recorded(ray_cluster, tmp_path):
    from syne_tune.backend.trial_status import Status

    from backends.ray_trials import RayTrialBackend

    script = tmp_path / "checkpointing.py"
    script.write_text(CHECKPOINT_SCRIPT)
    backend = RayTrialBackend(str(script), checkpoint_root=tmp_path / "storage", shutdown_ray=False)
    backend.set_path(str(tmp_path / "trials"))
    reports: dict[int, list[dict]] = {}

    def status(trial_id: int) -> str:
        statuses, results = backend.fetch_status_results([trial_id])
        for result_trial_id, result in results:
            reports.setdefault(result_trial_id, []).append(result)
        return statuses[trial_id][1]

    try:
        backend.start_trial({"x": 0.1, "epochs": 6, "sleep": 0.3})
        wait_for(lambda: status(0) and len(reports.get(0, [])) >= 2, what="two reports of trial 0")
        backend.pause_trial(0)
        # Trial 1 takes the runner trial 0 left (its node's only CPU): trial 0 resumes in a new runner on the other.
        backend.start_trial({"x": 0.5, "epochs": 100, "sleep": 0.3})
        backend.resume_trial(0)
        wait_for(lambda: status(0) == Status.completed, what="trial 0 to complete")
        assert [r["epoch"] for r in reports[0]] == [1, 2, 3, 4, 5, 6]
        first, second = (tmp_path / "trials" / "0" / "nodes").read_text().splitlines()
        assert first != second and (tmp_path / "trials" / "1" / "nodes").read_text().strip() == first
        wait_for(lambda: status(1) and reports.get(1), what="a report of trial 1")
        backend.stop_trial(1)
        assert status(1) == Status.stopped
        wait_for(lambda: not psutil.pid_exists(reports[1][0]["pid"]) or
                 psutil.Process(reports[1][0]["pid"]).status() == psutil.STATUS_ZOMBIE, 10, "trial 1 to end")
        backend.start_trial({"x": 0.5, "epochs": 3, "fail": 1})
        wait_for(lambda: status(2) == Status.failed, what="trial 2 to fail")
        assert "failing on purpose" in "".join(backend.stderr(2))
    finally:
        backend.stop_all()
    # The run could be resumed: checkpoints (and the node's output) are kept until the run is over for good.
    assert json.loads((tmp_path / "storage" / "0" / "checkpoints" / "state.json").read_text()) == {"epoch": 6}
    assert (tmp_path / "storage" / "0" / "node-std.out").read_text() == "".join(backend.stdout(0))
    backend.discard_checkpoints()
    assert not (tmp_path / "storage").exists()  # checkpoints deleted, no empty folders left
    assert_nothing_left(script)


@pytest.mark.slow
def test_a_trial_whose_runner_dies_fails_and_its_process_goes_with_it(ray_cluster, tmp_path):
    from syne_tune.backend.trial_status import Status

    from backends.ray_trials import RayTrialBackend

    script = tmp_path / "checkpointing.py"
    script.write_text(CHECKPOINT_SCRIPT)
    backend = RayTrialBackend(str(script), shutdown_ray=False)
    backend.set_path(str(tmp_path / "trials"))
    reports = []

    def status() -> str:
        statuses, results = backend.fetch_status_results([0])
        reports.extend(result for _, result in results)
        return statuses[0][1]

    try:
        backend.start_trial({"x": 0.1, "epochs": 100, "sleep": 0.3, "hold": 600})
        wait_for(lambda: status() and reports, what="a report")
        trial = psutil.Process(reports[0]["pid"])
        # Kill the Ray worker process of the trial's runner, as if its node were lost. The trial, silent for now,
        # would not notice its closed output; it is killed because the thread that waited for it is gone.
        trial.parent().kill()
        wait_for(lambda: status() == Status.failed, what="the trial to fail")
        assert "[ray backend] trial 0: its Ray actor died" in "".join(backend.stderr(0))
        wait_for(lambda: not trial.is_running() or trial.status() == psutil.STATUS_ZOMBIE, 10, "the trial to die")
    finally:
        backend.stop_all()
    assert_nothing_left(script)


@pytest.mark.slow
def test_ctrl_c_leaves_nothing_running_on_the_cluster(ray_cluster, quick_script, tmp_path):
    import ray

    script, space = quick_script
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "launchers" / "launch_random_search.py"),
         *custom_flags(script, space, "--n-workers", "2", "--experiment-name", "int"), "--backend", "ray",
         "--ray-address", ray_cluster.address],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_signals)
    folder = tmp_path / "results" / "int"
    try:
        wait_for(lambda: (folder / "results.csv").exists() and len(pd.read_csv(folder / "results.csv")) >= 5
                 and len(processes_running(script)) == 2, 120, "two running trials")
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    results, trials, metadata = read_results(folder)
    assert metadata["status"] == "interrupted" and "InProgress" not in set(trials["status"])
    assert "Tuning interrupted" in stdout
    assert_nothing_left(script)
    wait_for(lambda: ray.available_resources().get("CPU") == 2, 30, "the cluster's CPUs to be free")


@pytest.mark.slow
def test_ctrl_c_on_a_local_ray_instance_stops_it_too(quick_script, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e \".[ray]\")")
    script, space = quick_script
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "launchers" / "launch_random_search.py"),
         *custom_flags(script, space, "--n-workers", "2", "--experiment-name", "local-ray"), "--backend", "ray"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_signals)
    folder = tmp_path / "results" / "local-ray"
    try:
        wait_for(lambda: (folder / "results.csv").exists() and len(pd.read_csv(folder / "results.csv")) >= 3
                 and len(processes_running(script)) == 2, 180, "two running trials")
        started = psutil.Process(process.pid).children(recursive=True)  # Ray's processes and the trials
        names = [" ".join(p.cmdline()[:1]) for p in started]
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert any(name.endswith("raylet") for name in names) and any(name.endswith("gcs_server") for name in names)
    time.sleep(1)
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline()[:2] for p in alive]
    assert read_results(folder)[2]["status"] == "interrupted"


# --resume of a Ray run ------------------------------------------------------------------------------------------

def _add_an_unread_report(trial_folder: Path, node_output: Path, checkpoint: Path) -> int:
    """As a script on a node would, just before its launcher was killed: checkpoint the next epoch and print its
    report (loss 123.0), which reaches the node's output in the storage but never the tuner; that epoch."""
    last = json.loads([line for line in node_output.read_text().splitlines() if "[tune-metric]" in line][-1]
                      .split(": ", 1)[1])
    epoch = last["epoch"] + 1
    checkpoint.write_text(json.dumps({"epoch": epoch}))
    report = {**last, "epoch": epoch, "loss": 123.0, "st_worker_timestamp": time.time(),
              "st_worker_iter": last.get("st_worker_iter", 0) + 1}
    with open(node_output, "a") as lines:
        lines.write("[tune-metric]: " + json.dumps(report) + "\n")
    return epoch


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_an_interrupted_ray_run_resumes_from_its_checkpoints_losing_nothing(signum, ray_cluster, tmp_path):
    """kill -9 (or Ctrl-C) of the launcher mid-run: nothing stays on the cluster, the checkpoints stay in the storage,
    and --resume replays the journal, restarts the running trials from their checkpoints and completes the run as if
    never interrupted."""
    import ConfigSpace as CS

    from analysis.load import run_status

    script, space, storage = tmp_path / "checkpointing.py", tmp_path / "space.json", tmp_path / "storage"
    script.write_text(CHECKPOINT_SCRIPT)
    config_space = CS.ConfigurationSpace()
    config_space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.Constant("epochs", 8), CS.Constant("sleep", 0.4)])
    config_space.to_json(space)
    storage.mkdir()
    folder, checkpoints = tmp_path / "results" / "cut", storage / "cut"
    launcher = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "launchers" / "launch_random_search.py"),
         *custom_flags(script, space, "--n-workers", "2", "--max-num-trials", "3", "--max-resource", "8",
                       "--experiment-name", "cut"),
         "--backend", "ray", "--ray-address", ray_cluster.address, "--storage", str(storage)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_signals)
    try:
        # (the launcher's command line names the script too)
        wait_for(lambda: (folder / "results.csv").exists() and len(pd.read_csv(folder / "results.csv")) >= 2
                 and len([p for p in processes_running(script) if p.pid != launcher.pid]) == 2, 120,
                 "two running trials")
        os.killpg(launcher.pid, signum)
        launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    assert launcher.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130)
    # Killed, the trials die with their runners, which Ray ends with the launcher (their driver).
    wait_for(lambda: not processes_running(script), 30, "the trials to end with their launcher")
    assert_nothing_left(script)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert run_status(metadata) == "interrupted"
    before = pd.read_csv(folder / "results.csv")
    cut = [int(path.parent.parent.name) for path in checkpoints.glob("*/checkpoints/state.json")
           if json.loads(path.read_text())["epoch"] < 7]
    assert cut, "no trial was cut short, or its checkpoint was not kept"
    unread, epoch = None, None
    if signum == signal.SIGKILL:  # a report only the node got: made here, not to hang on the timing of the kill
        unread = cut[0]
        epoch = _add_an_unread_report(folder / "trials" / str(unread), checkpoints / str(unread) / "node-std.out",
                                      checkpoints / str(unread) / "checkpoints" / "state.json")

    run = launch(None, "--resume", "cut", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(folder)
    assert metadata["status"] == "finished" and len(metadata["resumed"]) == 1 and metadata["backend"] == "ray"
    kept = before.merge(results, how="left", indicator=True)
    assert (kept["_merge"] == "both").all()  # every report written before the interruption is still there, unchanged
    assert len(trials) == 3 and set(trials["status"]) == {"Completed"} and len(results) == 3 * 8
    for trial_id, epochs in results.groupby("trial_id")["epoch"]:  # no epoch trained twice or skipped
        assert list(epochs) == list(range(1, 9)), (trial_id, list(epochs))
    # The trials cut short went on from their checkpoints, in a second run each.
    restarted = results[results["resumed_from"] > 0]
    assert set(cut) <= set(restarted["trial_id"])
    assert all(len((folder / "trials" / str(trial_id) / "nodes").read_text().splitlines()) == 2 for trial_id in cut)
    if unread is not None:  # the report that reached only the node's output is there once, and the trial went on
        assert results.loc[results["loss"] == 123.0, ["trial_id", "epoch"]].values.tolist() == [[unread, epoch]]
        assert "123.0" in (folder / "trials" / str(unread) / "std.out").read_text()
        assert restarted.loc[restarted["trial_id"] == unread, "resumed_from"].eq(epoch).all()
    new = results.merge(before, how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    assert results.loc[new, "tuner_time"].min() >= before["tuner_time"].max()  # the clock goes on where it stopped
    # Checkpoints and the nodes' output were removed once the run was over.
    assert not checkpoints.exists() and not list(storage.iterdir())
    assert_nothing_left(script)
