"""The scheduler registry, the budget, Hyperband brackets, BOHB picks and the trial limit, driven without a backend."""
import numpy as np
import pytest
from sync_driver import drive
from syne_tune.config_space import choice, uniform

from schedulers.bookkeeping import TrialBookkeeping
from schedulers.budget import Budget, BudgetError, num_brackets
from schedulers.registry import SCHEDULERS, UnknownSchedulerError, get_scheduler
from schedulers.trial_limit import TrialLimit

SPACE = {"x": uniform(0, 1), "y": choice(["a", "b"]), "epochs": 9}
BUDGET = Budget("epoch", 1, 9, 3)


def build(name: str, seed: int = 0, budget: Budget = BUDGET, **hooks):
    # grid search: 20 values of x, so that its grid has more points than the tests run trials
    return get_scheduler(name).with_options({"grid_points": 20}).build(SPACE, "loss", "min", budget, seed, **hooks)


def run_trials(scheduler, n_trials: int, max_epochs: int = 9) -> list[dict]:
    """Drive a scheduler on one worker until ``n_trials`` trials ran; per trial its bookkeeping and epochs run."""
    np.random.seed(0)
    run = drive(scheduler, lambda config, epoch: (config["x"] - 0.3) ** 2 + 1.0 / epoch, n_workers=1,
                max_trials=n_trials, max_epochs=max_epochs)
    return [{**(scheduler.trial_bookkeeping(t) if isinstance(scheduler, TrialBookkeeping) else {}),
             "epochs": len(run.epochs[t]), "x": run.configs[t]["x"], "y": run.configs[t]["y"]}
            for t in sorted(run.configs)]


@pytest.mark.parametrize("min_r, max_r, eta, expected",
                         [(1, 9, 3, 3), (1, 27, 3, 4), (1, 10, 3, 3), (3, 3, 3, 1), (1, 1000, 10, 4), (1, 200, 3, 5)])
def test_bracket_count_follows_li_et_al(min_r, max_r, eta, expected):
    assert num_brackets(min_r, max_r, eta) == expected
    assert Budget("epoch", min_r, max_r, eta).brackets == expected


def test_a_budget_checks_its_numbers_and_serialises_under_one_name():
    assert BUDGET.to_dict() == {"resource_attr": "epoch", "min_resource": 1, "max_resource": 9, "eta": 3}
    with pytest.raises(BudgetError, match="Budget 5..3 is not accepted"):
        Budget("epoch", 5, 3, 3)
    with pytest.raises(BudgetError, match="Reduction factor 1 is not accepted"):
        Budget("epoch", 1, 9, 1)


def test_the_registry_keeps_the_names_users_type_and_rejects_unknown_ones():
    assert {"random_search", "hyperband", "bohb", "bohb_uncapped", "asha", "async_bohb", "rea", "tpe"} <= set(
        SCHEDULERS)
    assert [SCHEDULERS[name].module for name in ("hyperband", "bohb", "asha", "async_bohb")] == [
        "schedulers.hyperband_sync", "schedulers.bohb_sync", "schedulers.asha", "schedulers.async_bohb"]
    assert all(entry.title and "\n" not in entry.title for entry in SCHEDULERS.values())
    with pytest.raises(UnknownSchedulerError, match="Unknown scheduler 'sha': choose one of random_search, "):
        get_scheduler("sha")


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_entry_builds_a_scheduler_with_its_declared_hook(name):
    entry = SCHEDULERS[name]
    scheduler = build(name, seed=1)
    assert scheduler.metric_mode() == "min" and scheduler.metric_names() == ["loss"]
    if entry.columns:
        assert isinstance(scheduler, TrialBookkeeping)
    trials = run_trials(scheduler, 12)
    assert len(trials) == 12
    # The hook says exactly the declared columns; schedulers that declare none keep no bookkeeping.
    assert all(set(t) - {"epochs", "x", "y"} == set(entry.columns) for t in trials)


# The entries whose modules promise never to start a configuration (by ``config_key``) twice; Syne Tune's and asha
# may draw one again.
DISTINCT = {"random_search", "hyperband", "bohb", "bohb_uncapped", "grid_search"}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_entry_proposes_only_configurations_the_benchmark_accepts(name):
    def accepts(config):
        return config["y"] == "b" and config["x"] < 0.5

    def config_key(config):  # coarse: 11 keys among accepted configurations, so 10 random draws would repeat one
        return round(config["x"] * 20), config["y"]

    scheduler = build(name, seed=2, accepts=accepts, config_key=config_key)
    trials = run_trials(scheduler, 10)
    # Both conditions: a draw from SPACE meets y == "b" only half the time.
    assert len(trials) == 10 and all(accepts(t) for t in trials)
    if name in DISTINCT:
        assert len({config_key(t) for t in trials}) == len(trials)


@pytest.mark.parametrize("name", ["asha", "async_bohb"])
def test_asynchronous_successive_halving_settings_come_from_the_budget(name):
    budget = Budget("epoch", 2, 27, 3)
    scheduler = build(name, budget=budget)
    if name == "asha":
        assert (scheduler.resource_attr, scheduler.max_resource, scheduler.brackets[0].eta) == ("epoch", 27, 3)
        levels = [sorted(rung.level for rung in b.rungs) for b in scheduler.brackets]
    else:
        assert (scheduler.time_attr, scheduler.max_t, scheduler.reduction_factor) == ("epoch", 27, 3)
        levels = [sorted(level for level, _ in b.rungs) for b in scheduler.brackets]
    # Rungs at 2 * 3^k below 27, one bracket per first rung (Li et al.: floor(log_3(27 / 2)) + 1 = 3).
    assert levels == [[2, 6, 18], [6, 18], [18]]
    arguments = get_scheduler(name).arguments(SPACE, budget)
    assert {k: arguments[k] for k in ("grace_period", "max_t", "reduction_factor", "brackets")} == {
        "grace_period": 2, "max_t": 27, "reduction_factor": 3, "brackets": 3}


@pytest.mark.parametrize("name", ["async_bohb", "tpe", "bohb"])
def test_kde_schedulers_fit_with_d_plus_one_points(name):
    # two hyperparameters; the epochs constant does not count
    if name == "bohb":
        assert build(name).min_points == 3 and get_scheduler(name).arguments(SPACE, BUDGET)["min_points_in_model"] == 3
        return
    searcher = build(name).searcher
    # TPE's searcher is the KDE; async BOHB's makes one from its searcher_kwargs for the last result of every trial.
    kde = searcher if name == "tpe" else searcher.searcher_cls(config_space=SPACE, random_seed=0,
                                                               **searcher.searcher_kwargs)
    assert kde.num_min_data_points == 3
    assert get_scheduler(name).arguments(SPACE, BUDGET)["num_min_data_points"] == 3


def test_synchronous_schedulers_record_their_schedule_and_bohb_settings():
    arguments = get_scheduler("bohb").arguments(SPACE, Budget("epoch", 1, 9, 3))
    assert {k: arguments[k] for k in ("s_max", "budgets", "brackets", "bracket_sizes")} == {
        "s_max": 2, "budgets": [1, 3, 9], "brackets": [[9, 3, 1], [5, 1], [3]], "bracket_sizes": "li"}
    assert (arguments["top_n_percent"], arguments["num_samples"], arguments["random_fraction"],
            arguments["bandwidth_factor"], arguments["min_bandwidth"]) == (15, 64, 1 / 3, 3, 1e-3)
    assert arguments["categorical_cap"] == 0.625
    assert get_scheduler("bohb_uncapped").arguments(SPACE, BUDGET)["categorical_cap"] is None
    assert build("bohb_uncapped").categorical_cap is None


def test_rea_uses_nas_bench_201_settings_and_mutates_the_population():
    assert get_scheduler("rea").arguments(SPACE, BUDGET) == {"population_size": 10, "sample_size": 3}
    # Two floats: a child keeps at least one of them exactly as its parent had it, which a random draw never does.
    space = {"x": uniform(0, 1), "z": uniform(0, 1), "y": choice(["a", "b", "c"]), "epochs": 9}
    scheduler = get_scheduler("rea").build(space, "loss", "min", BUDGET, 0)
    assert (scheduler.searcher.population_size, scheduler.searcher.sample_size) == (10, 3)
    np.random.seed(0)  # Syne Tune's REA draws its first population from numpy's global generator
    run = drive(scheduler, lambda c, e: (c["x"] - 0.3) ** 2 + (c["z"] - 0.6) ** 2 + 1.0 / e, n_workers=1,
                max_trials=30)
    assert all(len(e) == 9 for e in run.epochs.values()) and len(scheduler.searcher.population) == 10
    configs = [run.configs[t] for t in range(30)]
    # One worker: trial t is proposed once trials t - 10 .. t - 1 have completed, and they are the population.
    # A child is a member with one hyperparameter redrawn to another value.
    for t in range(10, 30):
        assert any(sum(configs[t][k] != member[k] for k in ("x", "z", "y")) == 1 for member in configs[t - 10:t]), t


def test_asha_records_its_brackets_and_stops_trials_early():
    trials = run_trials(build("asha"), 30)
    assert {t["bracket"] for t in trials} <= {0, 1, 2} and len({t["bracket"] for t in trials}) >= 2
    assert any(t["epochs"] < 9 for t in trials) and any(t["epochs"] == 9 for t in trials)


def test_async_bohb_records_model_based_and_random_picks():
    picks = [t["model_based"] for t in run_trials(build("async_bohb"), 40)]
    # The first draws come before the KDE has data; later ones mix model picks and the random fraction.
    assert picks[:5] == [False] * 5
    assert True in picks[5:] and False in picks[5:]


def test_async_bohb_model_picks_concentrate_near_the_optimum():
    scheduler = build("async_bohb")
    run_trials(scheduler, 40)
    model_picks = []
    for _ in range(60):
        config = scheduler.suggest().config
        if scheduler.searcher.last_pick_model_based:
            model_picks.append(config["x"])
    # Uniform random draws would have a median near 0.5; the loss is smallest at x = 0.3.
    assert len(model_picks) >= 10 and abs(np.median(model_picks) - 0.3) < 0.1


def test_trial_limit_stops_suggesting_and_forwards_the_hook():
    limited = TrialLimit(build("async_bohb"), max_trials=4)
    trials = run_trials(limited, 10)
    assert len(trials) == 4 and limited.suggest() is None
    assert set(trials[0]) == {"bracket", "model_based", "epochs", "x", "y"}
    assert TrialLimit(build("random_search"), max_trials=1).trial_bookkeeping(0) == {}


@pytest.mark.slow
def test_random_search_never_starts_a_class_twice_and_ends_when_all_have_run(
        nb201_table_path, tmp_path, launch_in_process):
    import pandas as pd

    from benchmarks.nasbench201.encoding import class_of, config_to_index
    from benchmarks.nasbench201.table import NB201Table

    measured = {class_of(int(a)) for a in NB201Table.load(nb201_table_path).archs}
    code = launch_in_process("--scheduler", "random_search", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(nb201_table_path), "--experiment-name", "rs", "--max-num-trials",
                             str(len(measured) + 50), "--n-workers", "4", cwd=tmp_path)
    assert code == 0
    trials = pd.read_csv(tmp_path / "results" / "rs" / "trials.csv")
    classes = [class_of(config_to_index({f"x{k}": row[f"config_x{k}"] for k in range(6)}))
               for _, row in trials.iterrows()]
    assert len(classes) == len(set(classes)) == len(measured) and set(classes) == measured
