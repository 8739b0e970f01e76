"""Synchronous Hyperband: HpBandSter's schedule, successive halving, no duplicate evaluations, determinism."""
from collections import Counter

import numpy as np
import pytest
from sync_driver import drive
from syne_tune.config_space import choice, randint, uniform

from schedulers.budget import Budget
from schedulers.hyperband_schedule import HyperbandSchedule, ScheduleError
from schedulers.registry import get_scheduler
from schedulers.trial_limit import TrialLimit

CASES = [(1, 9, 3), (1, 27, 3), (1, 81, 3), (3, 100, 3), (1, 200, 3), (1, 16, 2)]
SPACE = {"x": uniform(0, 1), "y": choice(["a", "b", "c"]), "epochs": 9}


def hpbandster_schedule(min_budget: float, max_budget: float, eta: float, iteration: int, rule: str):
    """HpBandSter's Hyperband, written out from its formulas: (s, configurations per rung, budgets per rung)."""
    max_sh_iter = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(max_sh_iter - 1, 0, max_sh_iter))
    s = max_sh_iter - 1 - (iteration % max_sh_iter)
    if rule == "li":  # Li et al.: ceil((s_max + 1) / (s + 1) * eta^s)
        n0 = int(np.ceil(max_sh_iter / (s + 1) * eta ** s))
    else:  # HpBandSter's code: ceil(floor((s_max + 1) / (s + 1)) * eta^s)
        n0 = int(np.ceil(np.floor(max_sh_iter / (s + 1)) * eta ** s))
    ns = [max(int(n0 * eta ** (-i)), 1) for i in range(s + 1)]
    return s, ns, budgets[-s - 1:]


@pytest.mark.parametrize("min_r, max_r, eta", CASES)
@pytest.mark.parametrize("rule", ["li", "hpbandster"])
def test_brackets_rungs_and_configurations_follow_hpbandster(min_r, max_r, eta, rule):
    schedule = HyperbandSchedule(min_r, max_r, eta, rule)
    for iteration in range(2 * schedule.num_brackets + 1):
        s, ns, budgets = hpbandster_schedule(min_r, max_r, eta, iteration, rule)
        bracket = schedule.bracket(iteration)
        assert (bracket.s, list(bracket.sizes)) == (s, ns)
        assert bracket.index == iteration % schedule.num_brackets
        assert np.allclose(bracket.grid, budgets)  # before rounding: HpBandSter's budgets
        # Integer budgets: each within half an epoch of HpBandSter's, strictly rising, the largest exact.
        assert all(abs(b - g) <= 0.5 for b, g in zip(bracket.budgets, bracket.grid))
        assert all(a < b for a, b in zip(bracket.budgets, bracket.budgets[1:])) and bracket.budgets[-1] == max_r
        assert bracket.budgets[0] >= min_r


def test_li_and_hpbandster_bracket_sizes_differ_where_their_formulas_do():
    assert [HyperbandSchedule(1, 9, 3).bracket(i).sizes[0] for i in range(3)] == [9, 5, 3]
    assert [HyperbandSchedule(1, 9, 3, "hpbandster").bracket(i).sizes[0] for i in range(3)] == [9, 3, 3]


def test_rounding_lowers_a_rung_that_would_not_rise_and_refuses_what_cannot():
    schedule = HyperbandSchedule(1, 10, 1.6)
    assert [round(g, 2) for g in schedule.grid] == [1.53, 2.44, 3.91, 6.25, 10.0]
    assert schedule.budgets == (1, 2, 4, 6, 10)  # 1.53 and 2.44 both round to 2: the lower rung goes to 1
    with pytest.raises(ScheduleError, match=r"Budgets 2\.05, 2\.56, 3\.2, 4, 5 are not accepted"):
        HyperbandSchedule(2, 5, 1.25)
    with pytest.raises(ScheduleError, match="Bracket sizes 'paper' are not accepted"):
        HyperbandSchedule(1, 9, 3, "paper")


def build(name: str = "hyperband", seed: int = 0, budget: Budget = Budget("epoch", 1, 9, 3), space=None, **hooks):
    return get_scheduler(name).build(space or SPACE, "loss", "min", budget, seed, **hooks)


def quadratic(config, epoch):
    return (config["x"] - 0.3) ** 2 + 1.0 / epoch + {"a": 0.0, "b": 0.05, "c": 0.1}[config["y"]]


def test_trials_start_at_their_rung_pause_there_and_resume_with_the_next_budget():
    scheduler = build()
    run = drive(scheduler, quadratic, n_workers=1, max_trials=9 + 5 + 3)
    # Iteration 0 (bracket 0): nine trials with epochs=1, then the best three resumed to 3, the best of those to 9.
    assert [run.configs[i]["epochs"] for i in range(9)] == [1] * 9
    assert run.suggestions[9:13] == [("resume", t) for _, t in run.suggestions[9:12]] + [run.suggestions[12]]
    promoted = [t for kind, t in run.suggestions if kind == "resume"]
    first_rung = sorted(range(9), key=lambda t: quadratic(run.configs[t], 1))
    assert promoted[:3] == first_rung[:3]  # the top floor(9 / 3), best first
    second_rung = sorted(promoted[:3], key=lambda t: quadratic(run.configs[t], 3))
    assert promoted[3] == second_rung[0]
    # Every trial trained each epoch once: promoted trials continued from their checkpoint.
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in run.epochs.values())
    assert sorted(len(e) for e in run.epochs.values())[-1] == 9
    assert Counter(len(run.epochs[t]) for t in range(9)) == {1: 6, 3: 2, 9: 1}
    assert [scheduler.trial_bookkeeping(t) for t in (0, 9, 14)] == [
        {"iteration": 0, "bracket": 0}, {"iteration": 1, "bracket": 1}, {"iteration": 2, "bracket": 2}]
    assert [run.configs[t]["epochs"] for t in (9, 14)] == [3, 9]


def test_promotions_are_the_top_third_of_each_complete_rung_in_a_long_parallel_run():
    scheduler = build()
    run = drive(scheduler, quadratic, n_workers=4, max_trials=300)
    by_iteration: dict[int, list[int]] = {}
    for trial_id in run.configs:
        by_iteration.setdefault(scheduler.trial_bookkeeping(trial_id)["iteration"], []).append(trial_id)
    schedule = HyperbandSchedule(1, 9, 3)
    checked = 0
    for iteration, trial_ids in by_iteration.items():
        bracket = schedule.bracket(iteration)
        reached = {t: len(run.epochs[t]) for t in trial_ids}
        if len(trial_ids) < bracket.sizes[0] or any(run.status[t] == "running" for t in trial_ids) or \
                Counter(reached.values())[bracket.budgets[-1]] < bracket.sizes[-1]:
            continue  # the run ended inside this iteration
        for k in range(len(bracket.budgets) - 1):
            at_rung = [t for t in trial_ids if reached[t] >= bracket.budgets[k]]
            went_on = {t for t in at_rung if reached[t] >= bracket.budgets[k + 1]}
            assert len(at_rung) == bracket.sizes[k] and len(went_on) == bracket.sizes[k + 1] == len(at_rung) // 3
            ranked = sorted(at_rung, key=lambda t: quadratic(run.configs[t], bracket.budgets[k]))
            assert went_on == set(ranked[:len(went_on)])
        checked += 1
    assert checked >= 15


def test_idle_workers_start_the_next_iteration_instead_of_waiting():
    scheduler = build()
    run = drive(scheduler, quadratic, n_workers=4, max_trials=60, epoch_time=lambda c: 1.0 + c["x"])
    iterations = [scheduler.trial_bookkeeping(t)["iteration"] for t in range(60)]
    # Iteration 1 starts while iteration 0 still waits for its first rung (no promotion yet), and the scheduler
    # never answered "nothing to do" (the driver would have stopped asking).
    first_resume = next(i for i, (kind, _) in enumerate(run.suggestions) if kind == "resume")
    assert iterations[:9] == [0] * 9 and run.suggestions.index(("start", 9)) < first_resume
    assert iterations[9] == 1 and not run.exhausted and len(run.configs) == 60


def rung_evaluations(scheduler, run, key) -> Counter:
    """(configuration key, budget) for every rung result of the run: a trial is evaluated at each budget of its
    bracket that it reached."""
    schedule = scheduler.schedule
    pairs = Counter()
    for trial_id, epochs in run.epochs.items():
        bracket = schedule.bracket(scheduler.trial_bookkeeping(trial_id)["iteration"])
        pairs.update((key(run.configs[trial_id]), b) for b in bracket.budgets if epochs and b <= epochs[-1])
    return pairs


def test_no_configuration_is_evaluated_twice_at_a_budget_on_a_small_finite_space():
    space = {"a": choice(list(range(4))), "b": randint(0, 2), "epochs": 9}  # 12 configurations
    scheduler = build(space=space)
    run = drive(scheduler, lambda c, e: c["a"] + c["b"] / 10 + 1 / e, n_workers=3, max_trials=500)
    assert run.exhausted and len(run.configs) < 500
    pairs = rung_evaluations(scheduler, run, lambda c: (c["a"], c["b"]))
    assert max(pairs.values()) == 1 and {key for key, _ in pairs} == {(a, b) for a in range(4) for b in range(3)}
    # Each configuration started one trial: no epoch was trained twice; only promotions are left to suggest.
    assert len(run.configs) == 12
    assert all(not s.spawn_new_trial_id for s in iter(scheduler.suggest, None))


def test_equivalent_configurations_count_as_one_and_only_accepted_ones_are_drawn():
    space = {"a": choice(list(range(10))), "epochs": 9}
    scheduler = build(space=space, config_key=lambda c: c["a"] // 2, accepts=lambda c: c["a"] != 7)
    run = drive(scheduler, lambda c, e: c["a"] + 1 / e, n_workers=2, max_trials=100)
    assert 7 not in {c["a"] for c in run.configs.values()}
    pairs = rung_evaluations(scheduler, run, lambda c: c["a"] // 2)
    assert run.exhausted and max(pairs.values()) == 1 and {k for k, _ in pairs} == {0, 1, 2, 3, 4}


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    runs = [drive(build(seed=seed), quadratic, max_trials=80) for seed in (5, 5, 6)]
    assert runs[0].configs == runs[1].configs and runs[0].epochs == runs[1].epochs
    assert runs[0].configs != runs[2].configs


def test_a_failed_trial_is_never_promoted_and_its_rung_still_completes():
    scheduler = build()
    run = drive(scheduler, quadratic, n_workers=2, max_trials=40, fail=lambda c: c["x"] < 0.3)
    failed = [t for t, s in run.status.items() if s == "failed"]
    assert failed and not any(kind == "resume" and t in failed for kind, t in run.suggestions)
    # Later iterations reach 9 epochs whatever happens here (bracket 2 starts there), so look at iteration 0 itself:
    # its first rung holds failed trials and must still complete, promoting the best of the others.
    bracket = scheduler.schedule.bracket(0)
    first = [t for t in run.configs if scheduler.trial_bookkeeping(t)["iteration"] == 0]
    assert len(first) == bracket.sizes[0] and set(failed) & set(first)
    survivors = sorted(set(first) - set(failed), key=lambda t: quadratic(run.configs[t], bracket.budgets[0]))
    promoted = survivors[:bracket.sizes[1]]
    winner = min(promoted, key=lambda t: quadratic(run.configs[t], bracket.budgets[1]))
    assert [t for kind, t in run.suggestions if kind == "resume" and t in first] == promoted + [winner]
    assert len(run.epochs[winner]) == bracket.budgets[-1] and run.status[winner] == "completed"


def test_a_trial_limit_counts_new_trials_and_lets_ready_promotions_run():
    limited = TrialLimit(build(), max_trials=9)
    run = drive(limited, quadratic, n_workers=1, max_trials=100)
    assert len(run.configs) == 9 and Counter(len(e) for e in run.epochs.values()) == {1: 6, 3: 2, 9: 1}
    assert limited.trial_bookkeeping(0) == {"iteration": 0, "bracket": 0}


def test_a_space_without_the_epochs_flag_gets_its_trials_paused_and_stopped_by_decision():
    scheduler = build(space={"x": uniform(0, 1), "y": choice(["a"])})
    run = drive(scheduler, lambda c, e: c["x"] + 1 / e, n_workers=1, max_trials=13, max_epochs=9)
    assert all("epochs" not in c for c in run.configs.values())
    # Iteration 0: 8 trials paused at epoch 1 or 3, the best stopped at 9; iteration 1's first four paused at 3.
    assert Counter(run.status.values()) == {"paused": 12, "stopped": 1}
    assert sorted(len(e) for e in run.epochs.values()) == [1] * 6 + [3] * 6 + [9]
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in run.epochs.values())


def test_schedule_errors_name_the_bad_value():
    with pytest.raises(ScheduleError, match="Reduction factor 1 is not accepted"):
        HyperbandSchedule(1, 9, 1)
    # log(1000) / log(10) = 2.9999999999999996 in floating point: s_max is still 3 (HpBandSter's code says 2).
    assert HyperbandSchedule(1, 1000, 10).s_max == 3 and HyperbandSchedule(1, 243, 3).s_max == 5


# A script that checkpoints its epoch count and resumes from it, as the project's training scripts do.
RESUMING_SCRIPT = '''
import argparse, json, os, time
from syne_tune import Reporter
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--kind", type=str)
parser.add_argument("--epochs", type=int)
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()
path = os.path.join(args.st_checkpoint_dir, "epoch.json")
start = json.load(open(path))["epoch"] if os.path.exists(path) else 0
report = Reporter()
for epoch in range(start + 1, args.epochs + 1):
    time.sleep(0.01)
    os.makedirs(args.st_checkpoint_dir, exist_ok=True)
    json.dump({"epoch": epoch}, open(path, "w"))
    report(epoch=epoch, loss=(args.x - 0.3) ** 2 + 1.0 / epoch + (0.2 if args.kind == "b" else 0.0))
'''


@pytest.mark.slow
def test_on_the_local_backend_promoted_trials_resume_and_train_each_epoch_once(quick_script, tmp_path):
    from conftest import custom_flags, launch, read_results

    script, space = quick_script
    script.write_text(RESUMING_SCRIPT)
    run = launch(None, "--scheduler", "hyperband", *custom_flags(script, space, "--n-workers", "3",
                                                                 "--max-num-trials", "14", "--experiment-name", "hb"),
                 cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "hb")
    assert len(trials) == 14 and metadata["trial_columns"] == ["iteration", "bracket"]
    reported = results.groupby("trial_id")["epoch"].apply(list)
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in reported)  # each epoch once, in order
    assert (trials.set_index("trial_id")["epochs"] == reported.apply(len)).all()
    # Iteration 0 (bracket 0) ran whole: 9 trials at 1 epoch, 3 promoted to 3 epochs, 1 of them to 9.
    first = trials[trials["iteration"] == 0]
    assert sorted(first["epochs"]) == [1] * 6 + [3] * 2 + [9]
    assert set(first.loc[first["epochs"] == 9, "status"]) == {"Completed"}
    assert len(results) == trials["epochs"].sum()  # epochs trained / epochs needed = 1


# As RESUMING_SCRIPT, but a report's text and its newline are two writes with a pause between them, as an unbuffered
# stdout (PYTHONUNBUFFERED=1, common in containers) writes Syne Tune's report: a trial paused in between leaves its
# last line open.
SPLIT_REPORT_SCRIPT = RESUMING_SCRIPT.replace("from syne_tune import Reporter", "import sys").replace(
    "report = Reporter()", "").replace(
    "    report(epoch=epoch, loss=(args.x - 0.3) ** 2 + 1.0 / epoch + (0.2 if args.kind == \"b\" else 0.0))",
    "    loss = (args.x - 0.3) ** 2 + 1.0 / epoch + (0.2 if args.kind == \"b\" else 0.0)\n"
    "    report = {'epoch': epoch, 'loss': loss, 'st_worker_timestamp': time.time()}\n"
    "    sys.stdout.write('[tune-metric]: ' + json.dumps(report))\n"
    "    sys.stdout.flush()\n"
    "    time.sleep(0.5)\n"
    "    sys.stdout.write('\\n')\n"
    "    sys.stdout.flush()")


@pytest.mark.slow
def test_a_trial_paused_before_its_reports_newline_resumes_on_a_line_of_its_own(quick_script, tmp_path):
    from conftest import custom_flags, launch, read_results

    script, space = quick_script
    assert "time.sleep(0.5)" in SPLIT_REPORT_SCRIPT and "Reporter" not in SPLIT_REPORT_SCRIPT
    script.write_text(SPLIT_REPORT_SCRIPT)
    run = launch(None, "--scheduler", "hyperband", *custom_flags(script, space, "--n-workers", "3",
                                                                 "--max-num-trials", "14", "--experiment-name", "hb"),
                 cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    results, trials, _ = read_results(tmp_path / "results" / "hb")
    reported = results.groupby("trial_id")["epoch"].apply(list)
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in reported)
    first = trials[trials["iteration"] == 0]  # its promoted trials resumed and reported
    assert sorted(first["epochs"]) == [1] * 6 + [3] * 2 + [9]
    opened = [p for p in (tmp_path / "results" / "hb" / "trials").glob("*/std.out")
              if "}[tune-metric]" in p.read_text()]
    assert not opened
