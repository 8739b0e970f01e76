"""Our asha and random search against Syne Tune's: the same decisions on the same reports and the same distributions
of draws (their flat cost per decision is measured by perf/simulation_speed.py, not here)."""
import random
from collections import Counter

import numpy as np
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import choice, loguniform, randint
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

from schedulers.asha import AsynchronousHyperband
from schedulers.budget import Budget
from schedulers.random_search import RandomSearch

SPACE = {"x": loguniform(1e-3, 1.0), "n": randint(1, 4), "op": choice(["a", "b", "c"]), "epochs": 27}


def trial(trial_id: int, config: dict | None = None) -> Trial:
    return Trial(trial_id=trial_id, config=config or {}, creation_time=None)


@pytest.mark.parametrize("budget, seed", [(Budget("epoch", 1, 27, 3), 0), (Budget("epoch", 1, 9, 3), 1),
                                          (Budget("epoch", 2, 27, 3), 2), (Budget("epoch", 1, 16, 2), 3),
                                          (Budget("epoch", 1, 100, 4), 4)])
def test_asha_decides_as_syne_tunes_on_the_same_reports(budget, seed):
    """Many trials in random brackets report interleaved, with ties; every decision is Syne Tune's."""
    rng = random.Random(seed)
    ours = AsynchronousHyperband(SPACE, "loss", "min", budget, seed)
    theirs = AsynchronousSuccessiveHalving(SPACE, metric="loss", do_minimize=True, time_attr="epoch",
                                           max_t=budget.max_resource, grace_period=budget.min_resource,
                                           reduction_factor=budget.eta, brackets=budget.brackets, random_seed=seed)
    assert [[rung.level for rung in b.rungs] for b in ours.brackets] == [[m for m, _ in b.rungs]
                                                                         for b in theirs.brackets]
    running: dict[int, int] = {}  # trial id -> last epoch reported
    decisions = Counter()
    for trial_id in range(400):
        t = trial(trial_id)
        ours.on_trial_add(t)
        theirs.on_trial_add(t)
        bracket = ours.trial_bookkeeping(trial_id)["bracket"]
        theirs.trial_info[trial_id] = theirs.brackets[bracket]  # the same bracket on both sides
        running[trial_id] = 0
        while running and rng.random() < 0.7:  # a few reports between two starts, from random running trials
            trial_id_ = rng.choice(sorted(running))
            epoch = running[trial_id_] + 1
            result = {"epoch": epoch, "loss": rng.choice([0.1, 0.2, 0.3]) if rng.random() < 0.3 else rng.random()}
            decision = ours.on_trial_result(trial(trial_id_), result)
            assert decision == theirs.on_trial_result(trial(trial_id_), result), (trial_id_, result)
            decisions[decision] += 1
            if decision == SchedulerDecision.STOP:
                del running[trial_id_]
            elif rng.random() < 0.05:  # a trial that ends by itself: its last result is recorded on both sides
                ours.on_trial_complete(trial(trial_id_), result)
                theirs.on_trial_complete(trial(trial_id_), result)
                del running[trial_id_]
            else:
                running[trial_id_] = epoch
    assert decisions[SchedulerDecision.STOP] > 50 and decisions[SchedulerDecision.CONTINUE] > 50
    for mine, syne in zip(ours.brackets, theirs.brackets):
        for rung, (_, recorded) in zip(mine.rungs, syne.rungs):
            assert rung.trials == set(recorded) and rung.values == sorted(v["loss"] for v in recorded.values())


def test_asha_draws_brackets_with_syne_tunes_probabilities():
    scheduler = AsynchronousHyperband(SPACE, "loss", "min", Budget("epoch", 1, 9, 3), 0)
    assert np.allclose(scheduler.bracket_probabilities, [0.665, 0.245, 0.090], atol=5e-4)
    for trial_id in range(3000):
        scheduler.on_trial_add(trial(trial_id))
    counts = Counter(scheduler.trial_bookkeeping(t)["bracket"] for t in range(3000))
    assert abs(counts[0] / 3000 - 0.665) < 0.03 and abs(counts[2] / 3000 - 0.090) < 0.02


def test_asha_ranks_a_nan_last_and_maximises_when_asked():
    scheduler = AsynchronousHyperband(SPACE, "acc", "max", Budget("epoch", 1, 9, 3), 0)
    for trial_id in range(4):
        scheduler.on_trial_add(trial(trial_id))
        scheduler._trial_bracket[trial_id] = scheduler.brackets[0]
    assert scheduler.on_trial_result(trial(0), {"epoch": 1, "acc": 0.5}) == SchedulerDecision.CONTINUE
    assert scheduler.on_trial_result(trial(1), {"epoch": 1, "acc": float("nan")}) == SchedulerDecision.STOP
    assert scheduler.on_trial_result(trial(2), {"epoch": 1, "acc": 0.9}) == SchedulerDecision.CONTINUE
    assert scheduler.on_trial_result(trial(3), {"epoch": 1, "acc": 0.1}) == SchedulerDecision.STOP
    assert scheduler.on_trial_result(trial(2), {"epoch": 9, "acc": 0.9}) == SchedulerDecision.STOP  # the end


def test_random_search_draws_as_syne_tunes_prior_does():
    """Log-uniform floats, uniform integers and choices: the same marginals as Syne Tune's sampler."""
    ours = RandomSearch(SPACE, "loss", "min", 0)
    configs = [ours.suggest().config for _ in range(4000)]
    assert all(c["epochs"] == 27 for c in configs)
    logs = np.log10([c["x"] for c in configs])
    assert abs(np.mean(logs) + 1.5) < 0.05 and abs(np.mean(logs < -2) - 1 / 3) < 0.03
    for name, values in (("n", [1, 2, 3, 4]), ("op", ["a", "b", "c"])):
        counts = Counter(c[name] for c in configs)
        assert sorted(counts) == values and all(abs(counts[v] / 4000 - 1 / len(values)) < 0.03 for v in values)


def test_random_search_walks_a_finite_space_without_repeats_and_says_when_it_is_used_up(capsys):
    space = {"a": choice([0, 1, 2, 3]), "b": choice(["p", "q", "r"]), "epochs": 3}

    def key(config):  # two values of a per class
        return config["a"] % 2, config["b"]

    ours = RandomSearch(space, "loss", "min", 5, config_key=key, accepts=lambda c: c["b"] != "r")
    configs = []
    while (suggestion := ours.suggest()) is not None:
        configs.append(suggestion.config)
    assert len(configs) == 4 and len({key(c) for c in configs}) == 4 and all(c["b"] != "r" for c in configs)
    assert "Search space exhausted" in capsys.readouterr().err and ours.suggest() is None


def test_random_search_picks_each_class_with_the_share_of_its_members():
    """The first class drawn is a class of 1 member a fifth as often as a class of 4 (uniform draws over cells)."""
    space = {"a": choice([0, 1, 2, 3, 4])}
    firsts = Counter()
    for seed in range(800):
        ours = RandomSearch(space, "loss", "min", seed, config_key=lambda c: min(c["a"], 1))
        firsts[min(ours.suggest().config["a"], 1)] += 1
    assert abs(firsts[0] / 800 - 0.2) < 0.045  # 3.2 standard errors; a uniform pick among classes gives 0.5
