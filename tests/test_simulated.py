"""The simulated backend: NAS-Bench-201 tables as Syne Tune blackboxes, replayed by the registered schedulers."""
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from syne_tune.blackbox_repository.blackbox import Blackbox

from benchmarks.nasbench201.blackbox import OBJECTIVES, NB201Blackbox
from benchmarks.nasbench201.encoding import HP_NAMES, NUM_ARCHS, class_of, config_to_index, index_to_config
from benchmarks.nasbench201.table import ArchitectureNotInTableError, NB201Table, TableError
from benchmarks.registry import BENCHMARKS
from conftest import NB201_TABLE_EPOCHS as EPOCHS
from conftest import read_results, simulate
from schedulers.registry import SCHEDULERS


def expected_answers(table: NB201Table, metric: str) -> dict[int, np.ndarray]:
    """Class representative -> (seeds, epochs): the mean of the class's rows per seed, a missing seed filled with
    the class's mean over its other seeds (computed here without the code under test)."""
    rows: dict[int, list[int]] = {}
    for row, arch in enumerate(table.archs):
        rows.setdefault(class_of(int(arch)), []).append(row)
    out = {}
    for rep, members in rows.items():
        block = np.nanmean(table.array(metric)[members].astype(np.float64), axis=0)
        out[rep] = np.where(np.isnan(block), np.nanmean(block, axis=0), block)
    return out


def test_blackbox_answers_every_cell_of_a_measured_class_with_its_class_answer(nb201_table_path):
    table = NB201Table.load(nb201_table_path)
    blackbox = NB201Blackbox(table)
    want = expected_answers(table, "valid_error")
    for index in range(NUM_ARCHS):
        config = index_to_config(index)
        rep = class_of(index)
        assert blackbox.is_answered(config) == (rep in want)
        if rep not in want:
            continue
        curve = blackbox.objective_function(config)
        assert curve.shape == (EPOCHS, len(OBJECTIVES))
        assert np.allclose(curve[:, OBJECTIVES.index("valid_error")], want[rep].mean(axis=0), atol=1e-6)
        assert (curve[:, OBJECTIVES.index("estimated")] == 0).all()
        seed_one = blackbox.objective_function(config, seed=1)
        assert np.allclose(seed_one[:, 0], want[rep][1], atol=1e-6)
    unanswered = next(i for i in range(NUM_ARCHS) if class_of(i) not in want)
    with pytest.raises(ArchitectureNotInTableError, match="has not measured"):
        blackbox.objective_function(index_to_config(unanswered))


def simulate_in_process(launch_in_process, cwd, table, scheduler, name, *flags):
    code = launch_in_process("--scheduler", scheduler, "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(table), "--experiment-name", name, *flags, cwd=cwd)
    assert code == 0
    return read_results(cwd / "results" / name)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["random_search", "hyperband", "bohb"])
def test_simulated_run_is_identical_for_a_seed_and_differs_for_another(scheduler, nb201_table_path, tmp_path):
    flags = ["--max-num-trials", "30", "--max-epochs", str(EPOCHS)]
    first, first_trials, _, _ = simulate(tmp_path, nb201_table_path, scheduler, "a", *flags, "--seed", "1")
    again, again_trials, _, _ = simulate(tmp_path, nb201_table_path, scheduler, "b", *flags, "--seed", "1")
    other, _, _, _ = simulate(tmp_path, nb201_table_path, scheduler, "c", *flags, "--seed", "2")
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_trials, again_trials)
    assert not first.equals(other)
    assert len(first_trials) == 30 and set(first.columns) >= {"tuner_time", "epoch", "valid_error", *(
        f"config_{name}" for name in HP_NAMES)}
    if scheduler != "random_search":
        assert (first_trials["epochs"] < EPOCHS).any() and (first_trials["epochs"] == EPOCHS).any()


@pytest.mark.slow
def test_a_hundred_trial_bohb_run_at_four_workers(nb201_table_path, tmp_path, launch_in_process, capsys):
    results, trials, metadata = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "bohb", "hundred",
                                                    "--n-workers", "4")
    assert len(trials) == 100 and set(trials["model_based"]) == {True, False}  # default: 100 trials
    assert metadata["table_seed"] == "mean" and metadata["simulated_time"] is True
    # The closing line names the best report: its trial, its epoch, and how far that trial ran.
    best = trials.loc[trials["best_metric"].idxmin()]
    rows = results[(results["trial_id"] == best["trial_id"]) & (results["valid_error"] == best["best_metric"])]
    assert (f"Best valid_error: {best['best_metric']:.6g} (trial {best['trial_id']}, epoch {rows['epoch'].iloc[0]} "
            f"of {best['epochs']})") in capsys.readouterr().out
    # Simulated time: four trials run at once, so the run spans far less than the sum of the trials' times.
    assert results["tuner_time"].max() < results.groupby("trial_id")["elapsed_time"].max().sum() / 2


@pytest.mark.parametrize("scheduler, settings", [("rea", {"population_size": 10, "sample_size": 3}),
                                                 ("tpe", {"num_min_data_points": 7})])
def test_single_fidelity_schedulers_run_every_trial_to_the_end(scheduler, settings, nb201_table_path, tmp_path,
                                                               launch_in_process):
    results, trials, metadata = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, scheduler, "sf",
                                                    "--max-num-trials", "24", "--n-workers", "2")
    assert len(trials) == 24 and (trials["epochs"] == EPOCHS).all() and set(trials["status"]) == {"Completed"}
    assert list(trials.columns[8:]) == [f"config_{name}" for name in HP_NAMES]  # no scheduler columns declared
    assert metadata["scheduler"] == scheduler and metadata["trial_columns"] == list(SCHEDULERS[scheduler].columns)
    assert metadata["scheduler_kwargs"] == settings


def test_simulated_wallclock_limit_stops_on_simulated_seconds(nb201_table_path, tmp_path, launch_in_process):
    from backends.engine import Delays

    limit, workers = 30, 4
    results, trials, _ = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "random_search",
                                             "timed", "--max-wallclock-time", str(limit), "--n-workers", str(workers))
    # The run ends with the first report past the limit, which comes within one epoch (and the simulated
    # latencies) of the last one before it, since every worker is busy.
    slowest = float(NB201Table.load(nb201_table_path).array("epoch_time").max())
    latency = sum(dataclasses.astuple(Delays()))
    assert limit < results["tuner_time"].max() <= limit + slowest + latency
    assert "InProgress" not in set(trials["status"])
    # Each worker runs whole trials back to back, none longer than EPOCHS of the slowest epoch (plus latencies).
    assert (trials["status"] == "Completed").sum() >= workers * (limit // (EPOCHS * slowest + latency))


def run_curves(results: pd.DataFrame) -> dict[int, tuple[dict, np.ndarray]]:
    """Trial id -> (config, reported (valid_error, test_error) by epoch)."""
    out = {}
    for trial_id, rows in results.groupby("trial_id"):
        config = {name: rows[f"config_{name}"].iloc[0] for name in HP_NAMES}
        out[trial_id] = (config, rows.sort_values("epoch")[["valid_error", "test_error"]].to_numpy().T)
    return out


@pytest.mark.parametrize("table_seed", ["mean", "1", "random"])
def test_table_seed_chooses_the_answer_and_only_measured_cells_are_proposed(
        table_seed, nb201_table_path, tmp_path, launch_in_process):
    results, trials, metadata = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "random_search",
                                                    "t", "--max-num-trials", "16", "--table-seed", table_seed)
    table = NB201Table.load(nb201_table_path)
    want = {m: expected_answers(table, m) for m in ("valid_error", "test_error")}
    assert metadata["table_seed"] == (int(table_seed) if table_seed.isdigit() else table_seed)
    assert metadata["sampling"].startswith("only the ")
    seeds_used = set()
    for config, reported in run_curves(results).values():
        rep = class_of(config_to_index(config))
        assert rep in want["valid_error"], f"an unmeasured cell was proposed: {config}"
        answer = np.stack([want[m][rep] for m in ("valid_error", "test_error")], axis=1)  # (seeds, 2, epochs)
        candidates = {"mean": [answer.mean(axis=0)], "1": [answer[1]], "random": list(answer)}[table_seed]
        n = reported.shape[1]
        matches = [k for k, curve in enumerate(candidates) if np.allclose(reported, curve[:, :n], atol=1e-6)]
        assert matches, (config, reported)
        seeds_used.update(matches)
    if table_seed == "random":
        assert seeds_used == {0, 1}  # a seed drawn per trial
    assert list(trials["estimated"]) == [False] * len(trials)


@pytest.mark.parametrize("table_seed", ["mean", "random"])
def test_the_tables_noise_reaches_metadata_and_the_summary(table_seed, nb201_table_path, tmp_path,
                                                           launch_in_process):
    """The noise measured between the table's seeds (over working cells with both) is what the summary says
    differences must exceed: the mean of the two seeds has a standard error 1/sqrt(2) of one seed's."""
    from analysis.load import load_experiment
    from analysis.summary import summary_markdown
    from benchmarks.nasbench201.encoding import is_working

    simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "random_search", "n", "--max-num-trials", "8",
                        "--table-seed", table_seed)
    table = NB201Table.load(nb201_table_path)
    final = table.array("valid_error")[:, :, -1]
    rows = [i for i, a in enumerate(table.archs) if is_working(int(a)) and not np.isnan(final[i]).any()]
    seed_sd = np.std(final[rows, 0] - final[rows, 1], ddof=1) / np.sqrt(2)
    noise = load_experiment(tmp_path / "results" / "n").metadata["table_noise"]
    answer_se = seed_sd / np.sqrt(2) if table_seed == "mean" else seed_sd
    assert noise["seed_sd"] == pytest.approx(seed_sd) and noise["answer_se"] == pytest.approx(answer_se)
    summary = summary_markdown([load_experiment(tmp_path / "results" / "n")])
    assert f"has a standard error of {answer_se:.4g}. Answers closer than {2 * np.sqrt(2) * answer_se:.4g}" in summary


def test_a_table_of_one_seed_says_it_cannot_measure_its_noise(tmp_path, launch_in_process):
    from analysis.load import load_experiment
    from analysis.summary import summary_markdown

    simulate_in_process(launch_in_process, tmp_path, "mnist10k", "random_search", "one", "--max-num-trials", "8")
    experiment = load_experiment(tmp_path / "results" / "one")
    assert experiment.metadata["table_noise"] == {"seed_sd": None, "seeds_per_answer": 1, "answer_se": None}
    assert "one training seed per cell, so it cannot measure the noise" in summary_markdown([experiment])


class _Estimating(Blackbox):
    """The table's blackbox, with the answers of half the configurations marked estimated (as a table with a
    surrogate would), to check that estimates are marked all the way to the summary."""

    def __init__(self, inner: Blackbox):
        super().__init__(configuration_space=inner.configuration_space, fidelity_space=inner.fidelity_space,
                         objectives_names=inner.objectives_names)
        self.inner = inner
        self.seeds = inner.seeds

    @property
    def fidelity_values(self) -> np.ndarray:
        return self.inner.fidelity_values

    def _objective_function(self, configuration, fidelity=None, seed=None):
        values = self.inner.objective_function(configuration, fidelity, seed)
        estimated = float(config_to_index({k: configuration[k] for k in HP_NAMES}) % 2)
        if fidelity is None:
            values[:, OBJECTIVES.index("estimated")] = estimated
            return values
        return {**values, "estimated": estimated}


@pytest.fixture
def estimating(monkeypatch) -> None:
    entry = BENCHMARKS["nasbench201"]

    def build(dataset):
        benchmark = entry.build(dataset)
        return dataclasses.replace(benchmark, blackbox=lambda **options: _Estimating(benchmark.blackbox(**options)))
    monkeypatch.setitem(BENCHMARKS, "nasbench201", dataclasses.replace(entry, build=build))


def test_estimated_answers_reach_trials_csv(estimating, nb201_table_path, tmp_path, launch_in_process):
    results, trials, _ = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "random_search",
                                             "e", "--max-num-trials", "12")
    assert list(trials["estimated"]) == list(results.groupby("trial_id")["estimated"].max() == 1)
    assert trials["estimated"].any() and not trials["estimated"].all()


def test_the_summary_reports_the_incumbents_test_error_and_marks_estimates(estimating, nb201_table_path,
                                                                           tmp_path, launch_in_process):
    from analysis.load import load_experiment
    from analysis.summary import ESTIMATED_NOTE, summary_markdown

    results, _, _ = simulate_in_process(launch_in_process, tmp_path, nb201_table_path, "rea", "s",
                                        "--max-num-trials", "12")
    best = results.loc[results["valid_error"].idxmin()]
    summary = summary_markdown([load_experiment(tmp_path / "results" / "s")])
    row = next(line for line in summary.splitlines() if line.startswith("| s | rea |"))
    value = f"{best['valid_error']:.4g}" + ("*" if best["estimated"] == 1 else "")
    assert f"| {value} | {best['test_error']:.4g} | {int(best['epoch'])} | {int(best['trial_id'])} |" in row
    assert (ESTIMATED_NOTE in summary) == (best["estimated"] == 1)


def _with_epoch_times(path, tmp_path, change) -> Path:
    """A copy of the table at ``path`` whose epoch times ``change`` (archs, times) edits in place."""
    table = NB201Table.load(path)
    metrics = {m: np.array(table.array(m), dtype=np.float32) for m in table.metrics}
    change(table.archs, metrics["epoch_time"])
    return NB201Table(np.array(table.archs), list(table.seeds), metrics, dataset="gaps").save(tmp_path / "gaps.npz")


def test_missing_epoch_times_are_filled_so_simulated_time_goes_forward(nb201_table_path, tmp_path):
    def gaps(archs, times):
        times[::7, 1, 2] = np.nan  # one seed's epoch: the class's other seed's time at that epoch
        times[3::7, :, 4] = np.nan  # both seeds' epoch: the class's mean over its measured epochs

    table = NB201Table.load(_with_epoch_times(nb201_table_path, tmp_path, gaps))
    blackbox = NB201Blackbox(table)
    elapsed = OBJECTIVES.index("elapsed_time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no seed of a class measured
        per_seed = expected_answers(table, "epoch_time")
    assert any(np.isnan(times).all(axis=0).any() for times in per_seed.values())  # both kinds of gap are tested
    for rep, times in per_seed.items():
        want = np.where(np.isnan(times), np.nanmean(times), times)
        for seed in (0, 1):
            got = blackbox.objective_function(index_to_config(rep), seed=seed)[:, elapsed]
            assert np.allclose(got, np.cumsum(want[seed]), rtol=1e-5), (rep, seed)
            assert (np.diff(got) > 0).all()


def test_a_class_without_epoch_times_is_refused_in_one_sentence(nb201_table_path, tmp_path, launch_in_process, capsys):
    def untimed(archs, times):
        alone = next(r for r, a in enumerate(archs) if sum(class_of(int(b)) == class_of(int(a)) for b in archs) == 1)
        times[alone] = np.nan  # the only row of its class

    path = _with_epoch_times(nb201_table_path, tmp_path, untimed)
    n_classes = len({class_of(int(a)) for a in NB201Table.load(path).archs})
    with pytest.raises(TableError, match=f"no epoch times for 1 of its {n_classes} classes"):
        NB201Blackbox(NB201Table.load(path))
    code = launch_in_process("--scheduler", "random_search", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(path), "--experiment-name", "untimed", cwd=tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "no epoch times" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "untimed").exists()
