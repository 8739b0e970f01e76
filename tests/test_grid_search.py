"""Grid search: grid values, counts with conditions, order, the benchmark's hooks, the end of the grid."""
from collections import Counter

import numpy as np
import pytest
from sync_driver import drive
from syne_tune.config_space import choice, loguniform, randint, uniform

from schedulers.budget import Budget
from schedulers.grid_search import GridError
from schedulers.registry import get_scheduler

BUDGET = Budget("epoch", 1, 9, 3)


def grid(space, seed=0, **options):
    return get_scheduler("grid_search").with_options(options).build(space, "loss", "min", BUDGET, seed)


def test_numeric_values_are_evenly_spaced_log_spaced_where_log_and_each_integer_once():
    space = {"lr": loguniform(1e-4, 1e-1), "drop": uniform(0, 0.5), "layers": randint(1, 3), "opt": choice(["a", "b"]),
             "epochs": 9}
    scheduler = grid(space, grid_points=4, grid_order="ordered")
    values = {name: sorted({p[name] for p in scheduler.points}) for name in ("lr", "drop", "layers", "opt")}
    assert np.allclose(values["lr"], [1e-4, 1e-3, 1e-2, 1e-1])
    assert np.allclose(values["drop"], [0, 1 / 6, 1 / 3, 0.5])
    assert values["layers"] == [1, 2, 3] and values["opt"] == ["a", "b"]  # a range of 3 integers: all 3, once each
    assert len(scheduler.points) == 4 * 4 * 3 * 2 and all(p["epochs"] == 9 for p in scheduler.points)
    assert grid(space, grid_points=1).points[0]["drop"] == pytest.approx(0.25)  # one point: the middle


def test_a_conditional_space_keeps_only_valid_combinations_once_each():
    from ConfigSpace import Configuration

    from benchmarks.mnist.space import conditional_configspace, config_space

    configspace = conditional_configspace()
    scheduler = get_scheduler("grid_search").with_options({"grid_points": 3}).build(
        {**config_space(), "epochs": 9}, "loss", "min", BUDGET, 0, configspace=configspace)
    # learning rate, filters 1 and dropout take 3 values, batch size 4, optimizer 2; n_filters_2 (3 values) exists
    # for 2 or 3 layers and n_filters_3 (3 values) for 3 layers: 3 * 3 * 3 * 4 * 2 * (1 + 3 + 3 * 3).
    assert len(scheduler.points) == 3 * 3 * 3 * 4 * 2 * (1 + 3 + 9)
    keys = {tuple(sorted(p.items())) for p in scheduler.points}
    assert len(keys) == len(scheduler.points)
    for point in scheduler.points[:200]:
        Configuration(configspace, values={k: v for k, v in point.items() if k != "epochs"}).check_valid_configuration()
    assert Counter(p["n_conv_layers"] for p in scheduler.points) == {1: 216, 2: 648, 3: 1944}


def test_shuffled_order_is_seeded_and_ordered_is_the_product_order():
    space = {"a": choice([1, 2, 3]), "b": choice(["x", "y"]), "epochs": 9}
    ordered = [(p["a"], p["b"]) for p in grid(space, grid_order="ordered").points]
    assert ordered == [(1, "x"), (1, "y"), (2, "x"), (2, "y"), (3, "x"), (3, "y")]
    first, again, other = ([(p["a"], p["b"]) for p in grid(space, seed=s).points] for s in (1, 1, 2))
    assert first == again and sorted(first) == ordered and first != ordered and first != other


def test_the_run_visits_every_point_once_and_ends_saying_how_many(capsys):
    space = {"a": choice(list(range(10))), "x": uniform(0, 1), "epochs": 9}
    scheduler = grid(space, grid_points=3, grid_order="shuffled")
    run = drive(scheduler, lambda c, e: c["x"] + 1 / e, n_workers=3, max_trials=1000)
    assert run.exhausted and len(run.configs) == 30 and all(len(e) == 9 for e in run.epochs.values())
    assert len({(c["a"], c["x"]) for c in run.configs.values()}) == 30
    assert "Grid exhausted: all 30 grid points have been started" in capsys.readouterr().err


def test_points_the_benchmark_cannot_evaluate_are_skipped_and_equivalent_ones_run_once():
    space = {"a": choice(list(range(10))), "epochs": 9}
    scheduler = get_scheduler("grid_search").build(space, "loss", "min", BUDGET, 0, accepts=lambda c: c["a"] != 7,
                                                   config_key=lambda c: c["a"] // 2)
    assert sorted(p["a"] // 2 for p in scheduler.points) == [0, 1, 2, 3, 4]
    assert 7 not in [p["a"] for p in scheduler.points]


def test_bad_grid_settings_name_the_value():
    with pytest.raises(GridError, match="--grid-points 0 is not accepted"):
        grid({"x": uniform(0, 1)}, grid_points=0)
    with pytest.raises(GridError, match=f"--grid-points 40 gives {40 ** 5 * 50:,} combinations, more than 1,000,000"):
        grid({f"x{k}": uniform(0, 1) for k in range(5)} | {"c": choice(list(range(50)))}, grid_points=40)
    assert get_scheduler("grid_search").with_options({"grid_points": 2, "seed": 3}).arguments(
        {"x": uniform(0, 1), "c": choice([1, 2, 3])}, BUDGET) == {"grid_points": 2, "grid_order": "shuffled",
                                                                  "combinations": 6}


def test_the_launcher_hands_the_grid_flags_to_grid_search_only(capsys, tmp_path):
    from launchers.cli import parse_args

    plan = parse_args(None, ["--scheduler", "grid_search", "--grid-points", "3", "--grid-order", "ordered",
                             "--results-dir", str(tmp_path)])
    assert plan.scheduler.options == {"grid_points": 3, "grid_order": "ordered"}
    assert parse_args(None, ["--scheduler", "grid_search", "--results-dir", str(tmp_path)]).scheduler.options == {}
    with pytest.raises(SystemExit):
        parse_args("bohb", ["--grid-points", "3", "--results-dir", str(tmp_path)])
    assert "--grid-points applies to --scheduler grid_search, not to 'bohb'." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(None, ["--scheduler", "grid_search", "--grid-points", "0", "--results-dir", str(tmp_path)])
    assert "--grid-points must be at least 1, got 0." in capsys.readouterr().err
