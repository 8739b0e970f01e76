"""Synchronous BOHB: HpBandSter's KDE (checked against statsmodels), per-budget models, conditions, no repeats."""
from collections import Counter

import numpy as np
import pytest
from sync_driver import drive
from syne_tune.config_space import choice, uniform

from schedulers.bohb_sync import SynchronousBOHB
from schedulers.budget import Budget
from schedulers.kde import KDE, impute_inactive
from schedulers.registry import get_scheduler

BUDGET = Budget("epoch", 1, 9, 3)
SPACE = {"x": uniform(0, 1), "y": choice(["a", "b", "c"]), "epochs": 9}


def quadratic(config, epoch):
    return (config["x"] - 0.3) ** 2 + 1.0 / epoch + {"a": 0.0, "b": 0.05, "c": 0.1}[config["y"]]


def build(name="bohb", seed=0, space=None, **hooks) -> SynchronousBOHB:
    return get_scheduler(name).build(space or SPACE, "loss", "min", BUDGET, seed, **hooks)


# The KDE --------------------------------------------------------------------------------------------------------

def test_bandwidths_and_densities_equal_statsmodels_where_every_category_is_present():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    levels = np.array([0, 5, 0, 3])
    data = np.column_stack([rng.random(30), np.arange(30) % 5, rng.random(30), rng.integers(0, 3, 30)]).astype(float)
    ours = KDE.fit(data, levels, min_bandwidth=1e-3, categorical_cap=None)
    theirs = sm.nonparametric.KDEMultivariate(data=data, var_type="cucu", bw="normal_reference")
    assert np.allclose(ours.bandwidth, theirs.bw)
    points = np.column_stack([rng.random(7), rng.integers(0, 5, 7), rng.random(7), rng.integers(0, 3, 7)])
    assert np.allclose(ours.pdf(points), theirs.pdf(points))


def test_the_cap_keeps_a_matching_category_weightier_than_another():
    # Uniform codes over five values and few points: the normal reference rule gives bandwidths above 4/5.
    data = np.tile(np.arange(5.0), 2)[:, None]
    uncapped = KDE.fit(data, np.array([5]), categorical_cap=None)
    capped = KDE.fit(data, np.array([5]))
    assert uncapped.bandwidth[0] > 0.8 and capped.bandwidth[0] == pytest.approx(0.5)
    one = np.array([[0.0]])
    # Only the point at 0 matches: weight 1 - h against h / 4 for each of the other eight.
    match, other = 1 - capped.bandwidth[0], capped.bandwidth[0] / 4
    assert capped.pdf(one)[0] == pytest.approx((2 * match + 8 * other) / 10) and match > other
    assert 1 - uncapped.bandwidth[0] < uncapped.bandwidth[0] / 4  # uncapped: a match weighs less
    binary = KDE.fit(np.array([[0.0], [1.0]] * 3), np.array([2]))
    assert binary.bandwidth[0] == pytest.approx(0.625 * 0.5)


def test_samples_stay_in_range_and_keep_a_category_with_probability_one_minus_h():
    rng = np.random.default_rng(1)
    data = np.array([[0.02, 1.0], [0.97, 1.0], [0.5, 3.0], [0.4, 1.0], [0.6, 2.0]])
    kde = KDE.fit(data, np.array([0, 4]))
    samples = kde.sample(20_000, rng, bandwidth_factor=3)
    assert samples[:, 0].min() >= 0 and samples[:, 0].max() <= 1 and set(np.unique(samples[:, 1])) <= {0, 1, 2, 3}
    h = kde.bandwidth[1]
    # Centres are drawn uniformly: a sample keeps its centre's category with probability 1 - h + h / 4.
    share_of_1 = 3 / 5 * (1 - h + h / 4) + 2 / 5 * h / 4
    assert np.mean(samples[:, 1] == 1) == pytest.approx(share_of_1, abs=0.015)


def test_inactive_coordinates_are_imputed_from_points_where_they_are_active():
    rng = np.random.default_rng(2)
    nan = np.nan
    data = np.array([[0.1, 1.0, nan, nan], [0.2, 2.0, 0.7, nan], [0.3, nan, 0.8, nan], [0.4, 0.0, nan, nan]])
    out = impute_inactive(data, np.array([0, 3, 0, 4]), rng)
    assert not np.isnan(out).any() and np.array_equal(out[~np.isnan(data)], data[~np.isnan(data)])
    assert out[0, 2] in (0.7, 0.8) and out[3, 2] in (0.7, 0.8) and out[2, 1] in (1.0, 2.0, 0.0)
    assert set(out[:, 3]) <= {0, 1, 2, 3}  # never active anywhere: a random legal category


# Models per budget ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 6, 8])
def test_a_budget_gets_a_model_exactly_when_hpbandster_would_fit_one(d):
    space = {f"x{k}": uniform(0, 1) for k in range(d)}
    scheduler = build(space={**space, "epochs": 9})
    for n in range(1, 80):
        # HpBandSter: n > min_points - 1, then good and bad sets of more than d rows each.
        min_points = d + 1
        n_good = max(min_points, 15 * n // 100)
        n_bad = max(min_points, 85 * n // 100)
        expected = n > min_points - 1 and min(n_good, n) > d and len(range(n)[n_good:n_good + n_bad]) > d
        assert scheduler._has_model(n) == expected, n


def moving_optimum(config, epoch):
    """Best x is 0.8 at the smaller budgets and 0.3 at the largest: the budget a model is fitted on shows."""
    return (config["x"] - (0.3 if epoch >= 9 else 0.8)) ** 2 + 1.0 / epoch + {"a": 0.0, "b": 0.05, "c": 0.1}[
        config["y"]]


def test_picks_come_from_the_largest_budget_with_a_model_and_concentrate_near_the_optimum():
    scheduler = build()
    run = drive(scheduler, moving_optimum, max_trials=120)
    # Every budget has a model by the end, so picking the largest is a real choice.
    assert all(scheduler._has_model(len(scheduler._losses[b])) for b in (1, 3, 9)) and scheduler.model_budget() == 9
    picks = Counter(scheduler.trial_bookkeeping(t)["model_based"] for t in run.configs)
    assert picks[True] > picks[False] > 0
    late = [run.configs[t]["x"] for t in run.configs if t >= 60 and scheduler.trial_bookkeeping(t)["model_based"]]
    # Near the largest budget's optimum, not the smaller budgets' (uniform draws: 30% within 0.15 of either).
    assert abs(np.median(late) - 0.3) < 0.1
    assert np.mean([abs(x - 0.3) < 0.15 for x in late]) > 0.5 and np.mean([abs(x - 0.8) < 0.15 for x in late]) < 0.1
    ys = [run.configs[t]["y"] for t in run.configs if t >= 60 and scheduler.trial_bookkeeping(t)["model_based"]]
    assert Counter(ys).most_common(1)[0][0] == "a"
    assert set(scheduler.trial_bookkeeping(0)) == {"iteration", "bracket", "model_based"}


def test_the_first_picks_are_random_until_a_budget_has_enough_results():
    scheduler = build()
    run = drive(scheduler, quadratic, n_workers=1, max_trials=30)
    picks = [scheduler.trial_bookkeeping(t)["model_based"] for t in sorted(run.configs)]
    # d = 2: a model needs 6 results at a budget; iteration 0 gives 9 at budget 1 only after its 9 starts.
    assert picks[:9] == [False] * 9 and True in picks[9:]


def test_same_seed_same_run():
    runs = [drive(build(seed=seed), quadratic, max_trials=80) for seed in (3, 3, 4)]
    assert runs[0].configs == runs[1].configs and runs[0].epochs == runs[1].epochs
    assert runs[0].configs != runs[2].configs


# Conditions and duplicates --------------------------------------------------------------------------------------

def test_every_suggestion_satisfies_the_conditions_of_the_mnist_convnet_space():
    from ConfigSpace import Configuration

    from benchmarks.mnist.space import conditional_configspace, config_space

    configspace = conditional_configspace()
    scheduler = build(space={**config_space(), "epochs": 9}, configspace=configspace)

    def loss(config, epoch):  # better with more layers and a learning rate near 1e-2
        return abs(np.log10(config["learning_rate"]) + 2) - 0.1 * config["n_conv_layers"] + 1 / epoch

    run = drive(scheduler, loss, max_trials=150)
    for config in run.configs.values():
        hyperparameters = {k: v for k, v in config.items() if k != "epochs"}
        Configuration(configspace, values=hyperparameters).check_valid_configuration()  # raises if invalid
        assert ("n_filters_3" in config) == (config["n_conv_layers"] == 3)
    assert Counter(scheduler.trial_bookkeeping(t)["model_based"] for t in run.configs)[True] >= 30


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bohb", "bohb_uncapped", "hyperband"])
def test_no_nas_bench_201_class_is_evaluated_twice_at_a_budget_in_a_long_run(name):
    from benchmarks.registry import get_benchmark

    # A table of 6,660 answered cells (2,500 classes), so that 1,500 trials draw many classes twice.
    benchmark = get_benchmark("nasbench201", "mnist10k")
    rng = np.random.default_rng(0)
    quality: dict = {}

    def loss(config, epoch):
        key = benchmark.config_key(config)
        return quality.setdefault(key, rng.random()) + 1 / epoch

    scheduler = get_scheduler(name).build(benchmark.script_config_space(9), "loss", "min", BUDGET, 0,
                                          config_key=benchmark.config_key, accepts=benchmark.accepts)
    run = drive(scheduler, loss, max_trials=1500)
    assert all(benchmark.accepts(config) for config in run.configs.values())
    pairs = Counter()
    for trial_id, epochs in run.epochs.items():
        bracket = scheduler.schedule.bracket(scheduler.trial_bookkeeping(trial_id)["iteration"])
        pairs.update((benchmark.config_key(run.configs[trial_id]), b) for b in bracket.budgets
                     if epochs and b <= epochs[-1])
    assert max(pairs.values()) == 1 and len(run.configs) == 1500


def test_a_finite_space_ends_cleanly_when_every_configuration_has_run(capsys):
    space = {"a": choice(list(range(6))), "b": choice(["u", "v"]), "epochs": 9}
    scheduler = build(space=space)
    run = drive(scheduler, lambda c, e: c["a"] + (c["b"] == "v") + 1 / e, n_workers=2, max_trials=400)
    assert run.exhausted and len(run.configs) == 12
    assert all(not s.spawn_new_trial_id for s in iter(scheduler.suggest, None))
    assert "Search space exhausted: all 12 configurations" in capsys.readouterr().err


def test_nested_and_combined_conditions_and_forbidden_clauses_of_a_json_space_hold_in_every_pick(tmp_path):
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace()
    kind = CS.CategoricalHyperparameter("kind", ["linear", "tree", "net"])
    depth = CS.UniformIntegerHyperparameter("depth", 1, 8)
    leaf = CS.UniformFloatHyperparameter("leaf", 1e-3, 1.0, log=True)  # child of depth, grandchild of kind
    width = CS.UniformIntegerHyperparameter("width", 4, 64, log=True)
    act = CS.CategoricalHyperparameter("act", ["relu", "tanh"])
    reg = CS.UniformFloatHyperparameter("reg", 0.0, 1.0)
    cs.add([kind, depth, leaf, width, act, reg])
    cs.add([CS.OrConjunction(CS.EqualsCondition(depth, kind, "tree"), CS.EqualsCondition(depth, kind, "net")),
            CS.GreaterThanCondition(leaf, depth, 3), CS.EqualsCondition(width, kind, "net"),
            CS.NotEqualsCondition(act, kind, "linear"), CS.InCondition(reg, kind, ["linear", "net"])])
    cs.add(CS.ForbiddenAndConjunction(CS.ForbiddenEqualsClause(kind, "net"), CS.ForbiddenEqualsClause(act, "tanh")))
    cs.to_json(tmp_path / "space.json")
    configspace = CS.ConfigurationSpace.from_json(tmp_path / "space.json")
    from benchmarks.configspace_json import load_config_space

    flat = {**load_config_space(tmp_path / "space.json"), "epochs": 9}
    scheduler = build(space=flat, configspace=configspace)

    def loss(config, epoch):
        return (config.get("depth", 4) - 6) ** 2 / 10 + config.get("reg", 0.5) + 1 / epoch

    run = drive(scheduler, loss, max_trials=200)
    kinds = Counter()
    for config in run.configs.values():
        hyperparameters = {k: v for k, v in config.items() if k != "epochs"}
        CS.Configuration(configspace, values=hyperparameters).check_valid_configuration()  # raises if invalid
        assert not (config["kind"] == "net" and config.get("act") == "tanh")
        kinds[config["kind"], "leaf" in config, "width" in config, "act" in config] += 1
    assert Counter(scheduler.trial_bookkeeping(t)["model_based"] for t in run.configs)[True] >= 40
    assert len(kinds) >= 5  # the picks cover the branches of the conditions


def test_a_configspace_with_other_hyperparameters_is_refused():
    import ConfigSpace as CS

    from schedulers.search_space import SpaceError

    other = CS.ConfigurationSpace()
    other.add(CS.UniformFloatHyperparameter("z", 0, 1))
    with pytest.raises(SpaceError, match=r"holds \['z'\], not the tuned hyperparameters \['x', 'y'\]"):
        build(configspace=other)
