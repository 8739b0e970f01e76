"""Scheduler factory, Hyperband brackets, BOHB pick recording and the trial limit, driven without a backend."""
from datetime import datetime

import numpy as np
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import choice, uniform

from schedulers.factory import SCHEDULERS, UnknownSchedulerError, make_scheduler
from schedulers.hyperband import num_brackets
from schedulers.trial_limit import TrialLimit

SPACE = {"x": uniform(0, 1), "y": choice(["a", "b"]), "epochs": 9}


def run_trials(scheduler, n_trials: int, max_epochs: int = 9) -> list[dict]:
    """Drive a scheduler through trials sequentially; returns per trial its bookkeeping and epochs run."""
    np.random.seed(0)
    out = []
    for trial_id in range(n_trials):
        suggestion = scheduler.suggest()
        if suggestion is None:
            break
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        epoch = 0
        for epoch in range(1, max_epochs + 1):
            loss = (suggestion.config["x"] - 0.3) ** 2 + 1.0 / epoch
            if scheduler.on_trial_result(trial, {"epoch": epoch, "loss": loss}) != "CONTINUE":
                break
        out.append({**getattr(scheduler, "trial_bookkeeping", lambda _: {})(trial_id), "epochs": epoch})
    return out


@pytest.mark.parametrize("min_r, max_r, eta, expected",
                         [(1, 9, 3, 3), (1, 27, 3, 4), (1, 10, 3, 3), (3, 3, 3, 1), (1, 1000, 10, 4), (1, 200, 3, 5)])
def test_bracket_count_follows_li_et_al(min_r, max_r, eta, expected):
    assert num_brackets(min_r, max_r, eta) == expected


def test_factory_builds_every_scheduler_and_rejects_unknown_names():
    for name in SCHEDULERS:
        scheduler = make_scheduler(name, SPACE, "loss", "min", "epoch", 1, 9, 3, seed=1)
        assert scheduler.metric_mode() == "min"
    with pytest.raises(UnknownSchedulerError, match="choose one of random_search, hyperband, bohb"):
        make_scheduler("tpe", SPACE, "loss", "min", "epoch", 1, 9)


def test_hyperband_has_one_bracket_per_level_and_records_them():
    scheduler = make_scheduler("hyperband", SPACE, "loss", "min", "epoch", 1, 9, 3, seed=0)
    assert [sorted(level for level, _ in b.rungs) for b in scheduler.brackets] == [[1, 3, 9], [3, 9], [9]]
    trials = run_trials(scheduler, 30)
    assert {t["bracket"] for t in trials} <= {0, 1, 2} and len({t["bracket"] for t in trials}) >= 2
    assert any(t["epochs"] < 9 for t in trials) and any(t["epochs"] == 9 for t in trials)


def test_bohb_records_model_based_and_random_picks():
    scheduler = make_scheduler("bohb", SPACE, "loss", "min", "epoch", 1, 9, 3, seed=0)
    picks = [t["model_based"] for t in run_trials(scheduler, 40)]
    # The first draws come before the KDE has data; later ones mix model picks and the random fraction.
    assert picks[:5] == [False] * 5
    assert True in picks[5:] and False in picks[5:]


def test_bohb_model_picks_concentrate_near_the_optimum():
    scheduler = make_scheduler("bohb", SPACE, "loss", "min", "epoch", 1, 9, 3, seed=0)
    run_trials(scheduler, 40)
    model_picks = []
    for _ in range(60):
        config = scheduler.suggest().config
        if scheduler.searcher.last_pick_model_based:
            model_picks.append(config["x"])
    # Uniform random draws would have a median near 0.5; the loss is smallest at x = 0.3.
    assert len(model_picks) >= 10 and abs(np.median(model_picks) - 0.3) < 0.1


def test_trial_limit_stops_suggesting_and_keeps_bookkeeping():
    limited = TrialLimit(make_scheduler("bohb", SPACE, "loss", "min", "epoch", 1, 9, 3, seed=0), max_trials=4)
    trials = run_trials(limited, 10)
    assert len(trials) == 4
    assert limited.suggest() is None
    assert set(trials[0]) == {"bracket", "model_based", "epochs"}
