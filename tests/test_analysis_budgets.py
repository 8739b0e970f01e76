"""Per-budget figures use the rungs the run's scheduler used, and the any-time aggregate drops seeds whose runs ended.

Synchronous Hyperband and BOHB put their rungs at round(max * eta^-k), the asynchronous ones at min * eta^k; a
seed that stopped early must not keep its last value in the mean over seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from test_analysis import write_results_folder

SYNC = ("hyperband", "bohb", "bohb_uncapped")


def _hyperband_run(root, scheduler: str, max_resource: int, eta: float, record: bool):
    """A run laid out as synchronous Hyperband's schedule on 1..max_resource: in each bracket, the j-th best trial
    reports every epoch up to the last rung it is promoted to; odd trials are model-based picks.
    ``record``: metadata.json holds the scheduler's arguments as the launcher writes them (else none, as in a
    folder from elsewhere: the levels are then where trials ended)."""
    from analysis.load import load_experiment
    from schedulers.budget import Budget
    from schedulers.hyperband_schedule import HyperbandSchedule
    from schedulers.registry import get_scheduler

    schedule = HyperbandSchedule(1, max_resource, eta)
    reports, configs, last_epoch = [], {}, {}
    for i in range(schedule.num_brackets):
        bracket = schedule.bracket(i)
        for j in range(bracket.sizes[0]):
            tid = len(configs)
            configs[tid] = {"x": float(tid)}
            last_epoch[tid] = max(b for b, n in zip(bracket.budgets, bracket.sizes) if j < n)
            reports += [{"trial_id": tid, "tuner_time": float(len(reports) + 1), "epoch": e,
                         "valid_error": 0.1 * (j + 1) / e} for e in range(1, last_epoch[tid] + 1)]
    kwargs = get_scheduler(scheduler).arguments({}, Budget("epoch", 1, max_resource, eta)) if record else None
    folder = write_results_folder(root, f"{scheduler}-{record}", reports, configs, scheduler=scheduler,
                                  max_resource=max_resource, eta=eta, scheduler_kwargs=kwargs,
                                  model_based={t: t % 2 == 1 for t in configs})
    return load_experiment(folder), last_epoch


@pytest.mark.parametrize("record", (True, False), ids=("recorded", "from_where_trials_ended"))
@pytest.mark.parametrize("scheduler", SYNC)
def test_synchronous_hyperband_figures_count_trials_at_its_rungs(tmp_path, scheduler, record):
    from analysis.plots import budget_label, draw_finished_over_time, draw_model_based_histograms
    from analysis.trajectories import budget_levels
    exp, last_epoch = _hyperband_run(tmp_path, scheduler, 6, 3, record)
    rungs = [round(6 / 3 ** k) for k in (1, 0)]  # max * eta^-k for k = s_max..0: 2, 6
    assert budget_levels(exp) == rungs
    reached = {b: sum(last >= b for last in last_epoch.values()) for b in rungs}
    ax = draw_finished_over_time(exp).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"{budget_label(b)} ({reached[b]} trials)" for b in rungs]
    panels = [ax for ax in draw_model_based_histograms(exp).axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [budget_label(b) for b in rungs]
    for ax, b in zip(panels, rungs):  # every trial that reached the rung reported there, random or model-based
        counts = [int(t.get_text().split("(")[1].rstrip(")")) for t in ax.get_legend().get_texts()]
        assert sum(counts) == reached[b]


def test_synchronous_hyperband_levels_on_a_long_range(tmp_path):
    from analysis.load import load_experiment
    from analysis.trajectories import budget_levels
    from schedulers.budget import Budget
    from schedulers.registry import get_scheduler

    reports = [{"trial_id": 0, "tuner_time": float(e), "epoch": e, "valid_error": 1 / e} for e in range(1, 201)]
    kwargs = get_scheduler("hyperband").arguments({}, Budget("epoch", 1, 200, 3))  # what the launcher records
    folder = write_results_folder(tmp_path, "hb200", reports, {0: {"x": 0.0}}, scheduler="hyperband",
                                  max_resource=200, eta=3, scheduler_kwargs=kwargs)
    # s_max = floor(log_3 200) = 4; rungs 200 * 3^-k rounded: 2, 7, 22, 67, 200
    assert budget_levels(load_experiment(folder)) == [round(200 / 3 ** k) for k in range(4, -1, -1)]


@pytest.mark.parametrize("eta,max_resource", ((3, 6), (2.5, 10)))
@pytest.mark.parametrize("scheduler", ("asha", "async_bohb"))
def test_asynchronous_levels_are_the_epochs_their_rungs_judge_at(tmp_path, scheduler, eta, max_resource):
    from analysis.load import load_experiment
    from analysis.trajectories import budget_levels
    from schedulers.asha import Bracket
    reports = [{"trial_id": 0, "tuner_time": float(e), "epoch": e, "valid_error": 1 / e}
               for e in range(1, max_resource + 1)]
    folder = write_results_folder(tmp_path, scheduler, reports, {0: {"x": 0.0}}, scheduler=scheduler,
                                  max_resource=max_resource, eta=eta)
    # A trial is judged at a rung at its first report at or above the rung's level, and stops at the largest budget.
    rungs = sorted({math.ceil(r.level) for r in Bracket(0, 1, max_resource, eta).rungs} | {max_resource})
    assert budget_levels(load_experiment(folder)) == rungs


def test_recorded_rungs_that_are_not_whole_numbers_are_refused(tmp_path):
    from analysis.load import ResultsFolderError, load_experiment
    from analysis.trajectories import budget_levels
    reports = [{"trial_id": 0, "tuner_time": float(e), "epoch": e, "valid_error": 1 / e} for e in range(1, 7)]
    folder = write_results_folder(tmp_path, "bad", reports, {0: {"x": 0.0}}, scheduler="bohb", max_resource=6,
                                  scheduler_kwargs={"budgets": "2,6"})
    with pytest.raises(ResultsFolderError, match="scheduler_kwargs budgets '2,6'; expected a list of whole"):
        budget_levels(load_experiment(folder))


# Seeds of different length ---------------------------------------------------------------------------------------

def _two_seeds(tmp_path):
    """Seed 0 ends at t=100 with 0.02; seed 1 found 0.15 at t=50 and ends at t=1000 without improving."""
    from analysis.load import load_experiment
    runs = {0: [(50.0, 0.3), (100.0, 0.02)], 1: [(50.0, 0.15), (1000.0, 0.2)]}
    exps = []
    for seed, points in runs.items():
        reports = [{"trial_id": i, "tuner_time": t, "epoch": 1, "valid_error": v} for i, (t, v) in enumerate(points)]
        folder = write_results_folder(tmp_path, f"rs-{seed}", reports, {i: {"x": float(i)} for i in range(2)},
                                      seed=seed, max_resource=1)
        exps.append(load_experiment(folder))
    return exps, {seed: min(v for _, v in points) for seed, points in runs.items()}


def test_a_seed_leaves_the_aggregate_when_its_run_ends(tmp_path):
    from analysis.trajectories import aggregate_by_method, aggregate_trajectories, experiment_trajectory, final_values
    exps, best = _two_seeds(tmp_path)
    agg = aggregate_by_method(exps)
    at_500 = agg[agg["time"] <= 500].iloc[-1]  # the step function's value at t=500
    assert at_500["center"] == pytest.approx(best[1]) and at_500["n"] == 1 and at_500["n_seeds"] == 2
    at_100 = agg[agg["time"] <= 100].iloc[-1]  # both still count at seed 0's last report
    assert at_100["center"] == pytest.approx((best[0] + best[1]) / 2) and at_100["n"] == 2
    direct = aggregate_trajectories([experiment_trajectory(e) for e in exps], [500.0])
    assert direct["center"].tolist() == pytest.approx([best[1]]) and direct["n"].tolist() == [1]
    # Each run's own final incumbent is unchanged (the summary's per-seed value).
    assert final_values(exps).set_index("seed")["final"].to_dict() == best


def test_anytime_line_is_thin_where_seeds_have_ended(tmp_path):
    from analysis import plots
    exps, best = _two_seeds(tmp_path)
    ax = plots.draw_anytime(exps, time_axis="linear").axes[0]
    thick = next(line for line in ax.get_lines() if line.get_label().startswith("random_search (2 seeds"))
    thin = next(line for line in ax.get_lines() if line.get_label() == "_ended")
    x, y = np.asarray(thick.get_xdata()), np.asarray(thick.get_ydata(), dtype=float)
    assert np.isnan(y[x > 100]).all() and not np.isnan(y[x <= 100]).any()
    x, y = np.asarray(thin.get_xdata()), np.asarray(thin.get_ydata(), dtype=float)
    assert y[x == 1000].tolist() == pytest.approx([best[1]])
    assert thin.get_linewidth() < thick.get_linewidth()
    assert plots.ENDED_NOTE in [t.get_text() for t in ax.get_legend().get_texts()]
