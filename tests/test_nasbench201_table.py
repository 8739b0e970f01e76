"""NAS-Bench-201 table: save/load, queries, and the converters on small files built with the official structures."""
from __future__ import annotations

import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest

from benchmarks.nasbench201 import encoding as enc
from benchmarks.nasbench201.converters import ConversionError, convert_naslib_pickle, convert_official_pth, main, \
    naslib_key_to_index
from benchmarks.nasbench201.encoding import ArchitectureError
from benchmarks.nasbench201.table import METRICS, ArchitectureNotInTableError, NB201Table, TableError

ARCHS = [3, 100, 4242, 9000, 15624]
SEEDS = [777, 888, 999]
EPOCHS = 4


@pytest.fixture
def table() -> NB201Table:
    rng = np.random.default_rng(0)
    metrics = {m: rng.random((len(ARCHS), len(SEEDS), EPOCHS)).astype(np.float32) for m in METRICS}
    metrics["valid_error"][1, 2, :] = np.nan  # arch 100 not run with seed 999
    metrics["test_error"][2, :, 3] = np.nan  # no seed known at epoch 4
    figures = {"params": rng.random(len(ARCHS)), "official_index": np.arange(len(ARCHS), dtype=np.int64)}
    return NB201Table(ARCHS, SEEDS, metrics, figures, dataset="cifar10-valid", meta={"source": "synthetic"})


def test_description(table):
    assert list(table.archs) == ARCHS and table.seeds == tuple(SEEDS) and table.n_epochs == EPOCHS
    assert table.metrics == METRICS and table.dataset == "cifar10-valid" and len(table) == 5
    assert 100 in table and 101 not in table and enc.index_to_string(100) in table and "junk" not in table


@pytest.mark.parametrize("mmap_mode", [True, False])
def test_save_load_round_trip(table, tmp_path, mmap_mode):
    path = table.save(tmp_path / "t")
    assert path.name == "t.npz"
    loaded = NB201Table.load(path, mmap_mode=mmap_mode)
    assert list(loaded.archs) == ARCHS and loaded.seeds == tuple(SEEDS) and loaded.n_epochs == EPOCHS
    assert loaded.metrics == table.metrics and loaded.dataset == "cifar10-valid"
    assert loaded.meta["source"] == "synthetic" and loaded.meta["format"] == "nb201-table/1"
    for m in METRICS:
        np.testing.assert_array_equal(loaded.array(m), table.array(m))
        assert loaded.array(m).dtype == np.float32
    np.testing.assert_array_equal(loaded.figure(4242, "official_index"), 2)
    np.testing.assert_equal(loaded.query(15624, 2), table.query(15624, 2))


def test_queries_match_arrays_by_string_index_and_config(table):
    row, arch = 3, 9000
    for key in (arch, enc.index_to_string(arch), enc.index_to_config(arch), np.int64(arch)):
        np.testing.assert_array_equal(table.curve(key, "train_loss", seed=888), table.array("train_loss")[row, 1])
        np.testing.assert_allclose(table.curve(key, "train_loss"), table.array("train_loss")[row].mean(axis=0),
                                   rtol=1e-6)
    result = table.query(arch, epoch=2, seed=777)
    assert result["epoch"] == 2 and result["params"] == pytest.approx(table.figure(arch, "params"))
    for m in METRICS:
        assert result[m] == pytest.approx(float(table.array(m)[row, 0, 1]))


def test_seed_mean_ignores_nan(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" warnings either
        curve = table.curve(100, "valid_error")
        np.testing.assert_allclose(curve, table.array("valid_error")[1, :2].mean(axis=0), rtol=1e-6)
        assert np.isnan(table.curve(100, "valid_error", seed=999)).all()
        test_curve = table.curve(4242, "test_error")
        assert np.isnan(test_curve[3]) and not np.isnan(test_curve[:3]).any()
        assert np.isnan(table.query(4242, 4)["test_error"])
        assert table.query(100, 1)["valid_error"] == pytest.approx(float(curve[0]))


def test_clear_errors(table, tmp_path):
    with pytest.raises(ArchitectureNotInTableError) as info:
        table.curve(101, "valid_error")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (f"Architecture {enc.index_to_string(101)} (index 101) is not in this cifar10-valid "
                               f"table, which holds 5 of the 15625 architectures.")
    with pytest.raises(ArchitectureError, match="Malformed architecture string"):
        table.curve("|none~0|", "valid_error")
    with pytest.raises(KeyError, match="Unknown metric 'accuracy'"):
        table.curve(100, "accuracy")
    with pytest.raises(KeyError, match="Unknown seed 1"):
        table.curve(100, "valid_error", seed=1)
    with pytest.raises(ValueError, match="Epoch 5 is out of range; this table has epochs 1 to 4"):
        table.query(100, 5)
    with pytest.raises(TableError, match="No table file"):
        NB201Table.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(TableError, match="is not a NAS-Bench-201 table file"):
        NB201Table.load(tmp_path / "junk.npz")
    with pytest.raises(TableError, match="sorted"):
        NB201Table([5, 3], SEEDS, {"x": np.zeros((2, 3, 1))})
    with pytest.raises(TableError, match="shape"):
        NB201Table([3, 5], SEEDS, {"x": np.zeros((2, 2, 1))})


# ---------------------------------------------------------------- official .pth converter

ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
EVAL_SETS = {"cifar10-valid": ["x-valid", "ori-test"], "cifar10": ["ori-test"],
             "cifar100": ["ori-test", "x-valid", "x-test"], "ImageNet16-120": ["ori-test", "x-valid", "x-test"]}


def value(arch_id: int, seed: int, dataset_id: int, what: int, epoch: int) -> float:
    """A distinct, recognisable number for each field of the synthetic files."""
    return arch_id * 1000 + (seed % 100) * 10 + dataset_id + what * 0.01 + epoch * 0.1


def results_count(arch_id: int, arch_str: str, dataset: str, seed: int, epochs: int) -> dict:
    """A ResultsCount state dict as in nas_201_api/api_utils.py (ResultsCount.__init__ / update_* / state_dict)."""
    d = list(EVAL_SETS).index(dataset)
    state = {
        "name": dataset, "net_state_dict": None, "train_acc5es": None, "seed": seed, "epochs": epochs,
        "arch_config": {"name": "infer.tiny", "C": 16, "N": 5, "arch_str": arch_str, "class_num": 10},
        "params": 0.1 + arch_id, "flop": 10.0 + arch_id, "latency": [0.002 + arch_id / 1000],
        "train_acc1es": OrderedDict((e, value(arch_id, seed, d, 1, e)) for e in range(epochs)),
        "train_losses": OrderedDict((e, value(arch_id, seed, d, 2, e) / 1000) for e in range(epochs)),
        "train_times": OrderedDict((e, 5.0 + e) for e in range(epochs)),
        "eval_names": EVAL_SETS[dataset], "eval_acc1es": {}, "eval_losses": {}, "eval_times": {},
    }
    for k, name in enumerate(EVAL_SETS[dataset]):
        for e in range(epochs):
            state["eval_acc1es"][f"{name}@{e}"] = value(arch_id, seed, d, 3 + k, e)
            state["eval_losses"][f"{name}@{e}"] = value(arch_id, seed, d, 6 + k, e) / 1000
            state["eval_times"][f"{name}@{e}"] = 0.5 + k
    return state


def arch_results(arch_id: int, arch_str: str, runs: dict[str, list[int]], epochs: int) -> dict:
    """An ArchResults state dict (api_utils.py ArchResults.state_dict)."""
    return {"arch_index": arch_id, "arch_str": arch_str, "clear_net_done": True,
            "dataset_seed": {dataset: sorted(seeds) for dataset, seeds in runs.items()},
            "all_results": {(dataset, seed): results_count(arch_id, arch_str, dataset, seed, epochs)
                            for dataset, seeds in runs.items() for seed in seeds}}


def official_file() -> dict:
    """A tiny NAS-Bench-201-v1_1-like dict: 2 evaluated archs, seeds 777/888 (B lacks 888), 3 epochs (full)."""
    meta_archs = [ARCH_B, ARCH_A, enc.index_to_string(0)]
    full_a = arch_results(1, ARCH_A, {d: [777, 888] for d in EVAL_SETS}, 3)
    full_b = arch_results(0, ARCH_B, {d: [777] for d in EVAL_SETS}, 3)
    less = arch_results(1, ARCH_A, {"cifar10-valid": [111]}, 2)
    return {"meta_archs": meta_archs, "evaluated_indexes": [0, 1],
            "arch2infos": {0: {"full": full_b, "less": less | {"arch_str": ARCH_B}},
                           1: {"full": full_a, "less": less}}}


@pytest.fixture(scope="module")
def official_path(tmp_path_factory):
    import torch
    path = tmp_path_factory.mktemp("official") / "NAS-Bench-201-v1_1-tiny.pth"
    torch.save(official_file(), path)
    return path


def test_official_converter_cifar10_valid(official_path, tmp_path):
    table = convert_official_pth(official_path, "cifar10-valid", tmp_path / "c10v.npz")
    loaded = NB201Table.load(tmp_path / "c10v.npz")
    a, b = enc.to_index(ARCH_A), enc.to_index(ARCH_B)
    assert list(loaded.archs) == sorted([a, b]) and loaded.seeds == (777, 888) and loaded.n_epochs == 3
    assert loaded.meta["valid_split"] == "x-valid" and loaded.meta["test_split"] == "ori-test"
    e = np.arange(3)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "train_error", seed=888),
                               1 - value(1, 888, 0, 1, e) / 100, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "train_loss", seed=777), value(1, 777, 0, 2, e) / 1000, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "valid_error", seed=777), 1 - value(1, 777, 0, 3, e) / 100,
                               rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "valid_loss", seed=777), value(1, 777, 0, 6, e) / 1000, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "test_error", seed=777), 1 - value(1, 777, 0, 4, e) / 100,
                               rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "epoch_time", seed=777), 5.0 + e + 0.5)  # train + x-valid
    assert np.isnan(loaded.curve(ARCH_B, "valid_error", seed=888)).all()  # B was not run with 888
    np.testing.assert_allclose(loaded.curve(ARCH_B, "valid_error"), 1 - value(0, 777, 0, 3, e) / 100, rtol=1e-6)
    result = loaded.query(ARCH_A, 3)
    assert result["train_error"] == pytest.approx(1 - (value(1, 777, 0, 1, 2) + value(1, 888, 0, 1, 2)) / 200)
    assert result["params"] == pytest.approx(1.1) and result["flops"] == pytest.approx(11.0)
    assert result["latency"] == pytest.approx(0.003) and result["official_index"] == 1
    assert loaded.figure(ARCH_B, "official_index") == 0
    np.testing.assert_equal(table.query(ARCH_A, 3), result)


@pytest.mark.parametrize("dataset, valid, test", [("cifar10", None, 0), ("cifar100", 1, 2),
                                                  ("ImageNet16-120", 1, 2)])
def test_official_converter_split_choices(official_path, tmp_path, dataset, valid, test):
    loaded = convert_official_pth(official_path, dataset, tmp_path / f"{dataset}.npz")
    d, e = list(EVAL_SETS).index(dataset), np.arange(3)
    if valid is None:
        assert np.isnan(loaded.array("valid_error")).all() and np.isnan(loaded.array("valid_loss")).all()
        np.testing.assert_allclose(loaded.curve(ARCH_A, "epoch_time", seed=888), 5.0 + e)  # train time only
    else:
        np.testing.assert_allclose(loaded.curve(ARCH_A, "valid_error", seed=888),
                                   1 - value(1, 888, d, 3 + valid, e) / 100, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "test_error", seed=888), 1 - value(1, 888, d, 3 + test, e) / 100,
                               rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "test_loss", seed=888), value(1, 888, d, 6 + test, e) / 1000,
                               rtol=1e-6)


def test_official_converter_short_schedule_and_errors(official_path, tmp_path):
    short = convert_official_pth(official_file(), "cifar10-valid", tmp_path / "less.npz", hp="12")
    assert short.seeds == (111,) and short.n_epochs == 2 and len(short) == 2
    with pytest.raises(ConversionError, match="Unknown dataset 'cifar10-test'; accepted datasets are"):
        convert_official_pth(official_path, "cifar10-test", tmp_path / "x.npz")
    with pytest.raises(ConversionError, match="No file at"):
        convert_official_pth(tmp_path / "nope.pth", "cifar10", tmp_path / "x.npz")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not torch")
    with pytest.raises(ConversionError, match="is not a torch-saved NAS-Bench-201 file"):
        convert_official_pth(junk, "cifar10", tmp_path / "x.npz")
    with pytest.raises(ConversionError, match="lacks the keys meta_archs and arch2infos"):
        convert_official_pth({"something": 1}, "cifar10", tmp_path / "x.npz")


# ---------------------------------------------------------------- NASLib pickle converter

def naslib_entry(arch_id: int, epochs: int) -> dict:
    """One architecture of a NASLib nb201_*_full_training.pickle (per-dataset dict of per-epoch lists)."""
    return {"cifar10-valid": {
        "train_acc1es": [value(arch_id, 0, 0, 1, e) for e in range(epochs)],
        "train_losses": [value(arch_id, 0, 0, 2, e) / 1000 for e in range(epochs)],
        "eval_acc1es": [value(arch_id, 0, 0, 3, e) for e in range(epochs)],
        "eval_losses": [value(arch_id, 0, 0, 6, e) / 1000 for e in range(epochs)],
        "train_times": [5.0 + e for e in range(epochs)],
        "eval_times": [0.5] * epochs,
        "cost_info": {"flops": 10.0 + arch_id, "params": 0.1 + arch_id, "latency": 0.002, "train_time": 1.0},
    }}


def test_naslib_keys():
    assert naslib_key_to_index(ARCH_A) == enc.to_index(ARCH_A)
    # NASLib op indices: skip, none, conv3, conv1, pool; edges 0-1, 0-2, 0-3, 1-2, 1-3, 2-3
    assert naslib_key_to_index((2, 2, 0, 4, 2, 0)) == enc.to_index(ARCH_A)
    with pytest.raises(ArchitectureError, match="neither an architecture string nor six op indices"):
        naslib_key_to_index((9, 9))


def test_naslib_converter(tmp_path):
    data = {ARCH_A: naslib_entry(1, 4), (3, 1, 0, 1, 1, 1): naslib_entry(2, 4)}  # 2nd: conv1x1 0->1, skip 0->3
    path = tmp_path / "nb201_cifar10_full_training.pickle"
    path.write_bytes(pickle.dumps(data))
    table = convert_naslib_pickle(path, tmp_path / "n.npz")
    loaded = NB201Table.load(tmp_path / "n.npz")
    second = enc.ops_to_string(["nor_conv_1x1", "none", "none", "skip_connect", "none", "none"])
    assert sorted([enc.to_index(ARCH_A), enc.to_index(second)]) == list(loaded.archs)
    assert loaded.dataset == "cifar10-valid" and loaded.seeds == (0,) and loaded.n_epochs == 4
    e = np.arange(4)
    np.testing.assert_allclose(loaded.curve(ARCH_A, "valid_error"), 1 - value(1, 0, 0, 3, e) / 100, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(second, "train_loss"), value(2, 0, 0, 2, e) / 1000, rtol=1e-6)
    np.testing.assert_allclose(loaded.curve(second, "epoch_time"), 5.5 + e)
    assert np.isnan(loaded.array("test_error")).all()
    assert loaded.figure(second, "params") == pytest.approx(2.1)
    np.testing.assert_equal(table.query(ARCH_A, 4), loaded.query(ARCH_A, 4))  # NaN == NaN here
    as_test = convert_naslib_pickle(data, tmp_path / "t.npz", eval_split="test")
    np.testing.assert_allclose(as_test.curve(ARCH_A, "test_error"), 1 - value(1, 0, 0, 3, e) / 100, rtol=1e-6)
    assert np.isnan(as_test.array("valid_error")).all()


def test_naslib_converter_errors(tmp_path):
    two = {ARCH_A: naslib_entry(1, 2) | {"cifar100": naslib_entry(1, 2)["cifar10-valid"]}}
    with pytest.raises(ConversionError, match="holds the datasets cifar10-valid, cifar100; choose one"):
        convert_naslib_pickle(two, tmp_path / "x.npz")
    assert convert_naslib_pickle(two, tmp_path / "x.npz", dataset="cifar100").dataset == "cifar100"
    with pytest.raises(ConversionError, match="not a NASLib NAS-Bench-201 pickle"):
        convert_naslib_pickle({"a": 1}, tmp_path / "x.npz")
    junk = tmp_path / "junk.pickle"
    junk.write_bytes(b"\x00\x01 not a pickle")
    with pytest.raises(ConversionError, match="is not a pickle file"):
        convert_naslib_pickle(junk, tmp_path / "x.npz")


# ---------------------------------------------------------------- command line

def test_command_line(official_path, tmp_path, capsys):
    assert main(["official", str(official_path), "--dataset", "cifar10-valid", "cifar100",
                 "--out", str(tmp_path / "tables")]) == 0
    assert NB201Table.load(tmp_path / "tables" / "cifar100.npz").dataset == "cifar100"
    assert NB201Table.load(tmp_path / "tables" / "cifar10-valid.npz").seeds == (777, 888)
    pickle_path = tmp_path / "nb201.pickle"
    pickle_path.write_bytes(pickle.dumps({ARCH_A: naslib_entry(1, 2)}))
    assert main(["naslib", str(pickle_path), "--out", str(tmp_path / "one.npz")]) == 0
    assert len(NB201Table.load(tmp_path / "one.npz")) == 1
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["official", str(pickle_path), "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "is not a torch-saved NAS-Bench-201 file" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["official", str(official_path), "--dataset", "mnist"])
    assert "Unknown dataset 'mnist'" in capsys.readouterr().err
