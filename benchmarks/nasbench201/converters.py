"""Convert published NAS-Bench-201 results into `NB201Table` files.

Command line (`--help` for all flags):

    python -m benchmarks.nasbench201.converters official NAS-Bench-201-v1_1-096897.pth --dataset cifar10-valid
    python -m benchmarks.nasbench201.converters naslib nb201_cifar10_full_training.pickle

Without `--out`, tables go to `benchmarks/nasbench201/data/<dataset>.npz` (`table.default_table_path`).

**Official file** (`NAS-Bench-201-v1_1-096897.pth`, also v1_0), read with
`torch.load(path, map_location="cpu", weights_only=False)`. Structure relied on (from the official loader
`nas_201_api/api_201.py` and `api_utils.py`: `NASBench201API.__init__`, `ArchResults.create_from_state_dict`,
`ResultsCount.create_from_state_dict`, `get_train`, `get_eval`):

- top level: dict with `meta_archs` (list of architecture strings; list position = official index) and
  `arch2infos` (dict official index -> {'full': ArchResults state, 'less': ArchResults state}); 'full' is the
  200-epoch schedule (hp "200"), 'less' the 12-epoch one (hp "12").
- ArchResults state: dict with `arch_index`, `arch_str`, `dataset_seed` (dataset -> list of seeds) and
  `all_results` ((dataset, seed) -> ResultsCount state).
- ResultsCount state: dict with `epochs` (int), `train_losses` and `train_acc1es` (epoch -> value, epochs from 0;
  accuracies in percent), `train_times` (epoch -> seconds, or None), `eval_names`, `eval_losses`, `eval_acc1es`
  and `eval_times` (keyed '<set>@<epoch>', e.g. 'x-valid@199'), `params` (millions), `flop` (millions),
  `latency` (list of seconds, or None), `seed`, and `net_state_dict` (ignored).

Split choices (evaluation set names of the official API, `get_metrics`):

| dataset        | trained on                  | valid_*   | test_*   |
| -------------- | --------------------------- | --------- | -------- |
| cifar10-valid  | CIFAR-10 train half (25k)   | x-valid   | ori-test |
| cifar10        | CIFAR-10 train+valid (50k)  | (none)    | ori-test |
| cifar100       | CIFAR-100 train             | x-valid   | x-test   |
| ImageNet16-120 | ImageNet16-120 train        | x-valid   | x-test   |

For `cifar10` there is no validation set, so `valid_*` stay NaN (tune on `cifar10-valid`; Syne Tune's own
blackbox uses ori-test as its validation metric instead). `ori-test` of cifar100 / ImageNet16-120 is x-valid and
x-test together and is not stored. `epoch_time` = training seconds of the epoch + seconds evaluating the validation
set (training seconds alone where there is none). Errors are `1 - accuracy / 100`.

**NASLib / Freiburg DL course pickle** (`nb201_<dataset>_full_training.pickle`), read with `pickle.load`.
Structure relied on (from NASLib `naslib/search_spaces/nasbench201/graph.py` `query`, `conversions.py`, and
`naslib/utils/get_dataset_api.py`): a dict keyed by the official architecture string (NASLib builds it with
`convert_naslib_to_str`; some derived files are keyed by NASLib op-index tuples, which we also accept: op order
skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3 and edge order 0-1, 0-2, 0-3, 1-2, 1-3, 2-3) -> a dict
keyed by dataset ('cifar10-valid', 'cifar100', 'ImageNet16-120'; NASLib maps 'cifar10' to 'cifar10-valid') ->
a dict with per-epoch lists `train_losses`, `train_acc1es`, `eval_losses`, `eval_acc1es` (percent),
`train_times`, `eval_times`, and `cost_info` = {'flops', 'params', 'latency', 'train_time'}. It holds one run per
architecture (the seed is not recorded: the table's seed is 0) and one evaluation series, which NASLib uses as
both validation and test; we store it as `valid_*` (or `test_*` with `eval_split="test"`).
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .encoding import EDGES, ArchitectureError, ops_to_index, string_to_index
from .table import METRICS, NB201Table, default_table_path

DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SPLITS: dict[str, tuple[Optional[str], Optional[str]]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": (None, "ori-test"),
    "cifar100": ("x-valid", "x-test"),
    "ImageNet16-120": ("x-valid", "x-test"),
}
"""Dataset -> (official eval set stored as valid_*, official eval set stored as test_*)."""
HP_KEYS = {"200": "full", "12": "less"}
NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


class ConversionError(ValueError):
    """An input file or argument that a converter cannot use."""


# ---------------------------------------------------------------- helpers

def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ConversionError(f"Unknown dataset {dataset!r}; accepted datasets are {', '.join(DATASETS)}.")
    return dataset


def _number(value: Any) -> float:
    """A float from a number, 0-d tensor/array, or NaN for None."""
    if value is None:
        return math.nan
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


def _series(values: Any, n_epochs: int, keys: Optional[Sequence[Any]] = None) -> np.ndarray:
    """Per-epoch values from a list/array (position = epoch - 1) or a dict (looked up by `keys`, else by 0..E-1)."""
    out = np.full(n_epochs, np.nan)
    if values is None:
        return out
    if isinstance(values, Mapping):
        lookup = keys if keys is not None else range(n_epochs)
        try:  # fast path: every epoch present, plain numbers
            return np.asarray([values[key] for key in lookup], dtype=float)
        except (KeyError, TypeError, ValueError):
            pass
        for e, key in enumerate(lookup):
            if key in values:
                out[e] = _number(values[key])
        return out
    if hasattr(values, "tolist"):
        values = values.tolist()
    items = list(values)[:n_epochs]
    out[:len(items)] = [_number(v) for v in items]
    return out


def _table_arrays(n_archs: int, n_seeds: int, n_epochs: int) -> dict[str, np.ndarray]:
    return {m: np.full((n_archs, n_seeds, n_epochs), np.nan, dtype=np.float32) for m in METRICS}


def _latency(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        values = [_number(v) for v in value]
        values = [v for v in values if v > 0]
        return sum(values) / len(values) if values else math.nan
    latency = _number(value)
    return latency if latency > 0 else math.nan


def _mean_ignoring_nan(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


# ---------------------------------------------------------------- official .pth

def load_official(path: str | os.PathLike) -> dict:
    """Load the official benchmark file (torch-saved dict; needs `weights_only=False`)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"No file at {path}; give the path of NAS-Bench-201-v1_1-096897.pth.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a non-torch file
        raise ConversionError(f"{path} is not a torch-saved NAS-Bench-201 file (torch.load raised "
                              f"{type(err).__name__}); expected NAS-Bench-201-v1_1-096897.pth.") from None
    _check_official(data, str(path))
    return data


def _check_official(data: Any, name: str) -> None:
    if not isinstance(data, Mapping) or "arch2infos" not in data or "meta_archs" not in data:
        raise ConversionError(f"{name} is not an official NAS-Bench-201 file: it lacks the keys meta_archs and "
                              f"arch2infos; expected NAS-Bench-201-v1_1-096897.pth.")


def convert_official_pth(path: str | os.PathLike | Mapping, dataset: str,
                         out_path: Optional[str | os.PathLike] = None, hp: str = "200") -> NB201Table:
    """Convert one dataset of the official file (a path, or the dict already loaded) into a table.

    `hp` "200" takes the 200-epoch runs ('full'), "12" the 12-epoch ones ('less'). Saves to `out_path` (default
    `default_table_path(dataset)`) and returns the table.
    """
    _check_dataset(dataset)
    if str(hp) not in HP_KEYS:
        raise ConversionError(f"Unknown hp {hp!r}; accepted are 200 (full training) and 12 (short schedule).")
    if isinstance(path, Mapping):
        _check_official(path, "The given dict")
        return _convert_official(path, dataset, out_path, str(hp), "<dict>")
    return _convert_official(load_official(path), dataset, out_path, str(hp), Path(path).name)


def _convert_official(data: Mapping, dataset: str, out_path: Optional[str | os.PathLike], hp: str,
                      source: str) -> NB201Table:
    hp_key = HP_KEYS[str(hp)]
    meta_archs = data["meta_archs"]
    valid_set, test_set = SPLITS[dataset]

    runs: dict[int, tuple[int, dict[int, Mapping]]] = {}  # our index -> (official index, seed -> ResultsCount)
    for official_index in sorted(data["arch2infos"]):
        info = data["arch2infos"][official_index].get(hp_key)
        if not info:
            continue
        arch_str = info.get("arch_str") or meta_archs[official_index]
        try:
            index = string_to_index(arch_str)
        except ArchitectureError as err:
            raise ConversionError(f"Entry {official_index} of {source} has an unusable architecture: {err}") from None
        results = {seed: result for (name, seed), result in info.get("all_results", {}).items() if name == dataset}
        if results:
            runs[index] = (int(official_index), results)
    if not runs:
        raise ConversionError(f"{source} holds no {hp}-epoch results for dataset {dataset!r}.")

    archs = sorted(runs)
    seeds = sorted({int(seed) for _, results in runs.values() for seed in results})
    n_epochs = max(int(r.get("epochs") or 0) for _, results in runs.values() for r in results.values())
    if n_epochs < 1:
        raise ConversionError(f"{source} records no epochs for dataset {dataset!r}.")
    arrays = _table_arrays(len(archs), len(seeds), n_epochs)
    figures = {name: np.full(len(archs), np.nan) for name in ("params", "flops", "latency")}
    figures["official_index"] = np.full(len(archs), -1, dtype=np.int64)
    seed_pos = {s: i for i, s in enumerate(seeds)}
    epoch_keys = list(range(n_epochs))
    set_keys = {name: [f"{name}@{e}" for e in range(n_epochs)] for name in (valid_set, test_set) if name}

    for row, index in enumerate(archs):
        official_index, results = runs[index]
        figures["official_index"][row] = official_index
        params, flops, latency = [], [], []
        for seed, r in results.items():
            s = seed_pos[int(seed)]
            arrays["train_loss"][row, s] = _series(r.get("train_losses"), n_epochs, epoch_keys)
            arrays["train_error"][row, s] = 1.0 - _series(r.get("train_acc1es"), n_epochs, epoch_keys) / 100.0
            train_time = _series(r.get("train_times"), n_epochs, epoch_keys)
            eval_time = np.zeros(n_epochs)
            for prefix, name in (("valid", valid_set), ("test", test_set)):
                if name is None:
                    continue
                keys = set_keys[name]
                arrays[f"{prefix}_loss"][row, s] = _series(r.get("eval_losses"), n_epochs, keys)
                arrays[f"{prefix}_error"][row, s] = 1.0 - _series(r.get("eval_acc1es"), n_epochs, keys) / 100.0
                if prefix == "valid":
                    eval_time = np.nan_to_num(_series(r.get("eval_times"), n_epochs, keys), nan=0.0)
            arrays["epoch_time"][row, s] = train_time + eval_time
            params.append(_number(r.get("params")))
            flops.append(_number(r.get("flop")))
            latency.append(_latency(r.get("latency")))
        figures["params"][row] = _mean_ignoring_nan(params)
        figures["flops"][row] = _mean_ignoring_nan(flops)
        figures["latency"][row] = _mean_ignoring_nan(latency)

    meta = {
        "dataset": dataset, "source": source, "source_format": "NAS-Bench-201 official .pth", "hp": str(hp),
        "valid_split": valid_set, "test_split": test_set,
        "units": {"errors": "fraction", "epoch_time": "seconds (train + validation eval)", "params": "millions",
                  "flops": "millions", "latency": "seconds"},
    }
    table = NB201Table(archs, seeds, arrays, figures, dataset=dataset, meta=meta)
    table.save(out_path if out_path is not None else default_table_path(dataset))
    return table


# ---------------------------------------------------------------- NASLib pickle

def naslib_key_to_index(key: Any) -> int:
    """Our index of a NASLib pickle key: an official architecture string or a NASLib op-index tuple."""
    if isinstance(key, str):
        return string_to_index(key)
    if isinstance(key, (tuple, list)) and len(key) == len(EDGES) and all(
            isinstance(k, (int, np.integer)) and 0 <= k < len(NASLIB_OPS) for k in key):
        by_edge = {edge: NASLIB_OPS[k] for edge, k in zip(NASLIB_EDGES, key)}
        return ops_to_index([by_edge[edge] for edge in EDGES])
    raise ArchitectureError(f"The NASLib key {key!r} is neither an architecture string nor six op indices in 0..4.")


def load_naslib(path: str | os.PathLike) -> dict:
    """Load a NASLib / DL-course `nb201_*_full_training.pickle`."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"No file at {path}; give the path of an nb201_<dataset>_full_training.pickle file.")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as err:  # pickle raises many types for a non-pickle file
        raise ConversionError(f"{path} is not a pickle file (pickle.load raised {type(err).__name__}); "
                              f"expected nb201_<dataset>_full_training.pickle.") from None
    return data


def convert_naslib_pickle(path: str | os.PathLike | Mapping, out_path: Optional[str | os.PathLike] = None,
                          dataset: Optional[str] = None, eval_split: str = "valid") -> NB201Table:
    """Convert a NASLib-style pickle (a path, or the dict already loaded) into a table and save it.

    `dataset` picks the inner dataset key when the file holds several (default: the only one). The single
    evaluation series goes to `valid_*` (`eval_split="valid"`) or `test_*` (`"test"`).
    """
    if eval_split not in ("valid", "test"):
        raise ConversionError(f"Unknown eval_split {eval_split!r}; accepted are valid and test.")
    if isinstance(path, Mapping):
        return _convert_naslib(path, out_path, dataset, eval_split, "<dict>")
    return _convert_naslib(load_naslib(path), out_path, dataset, eval_split, Path(path).name)


def _datasets_in(data: Any) -> list[str]:
    """The dataset keys of a NASLib-style dict (empty if it is not one)."""
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        return []
    return sorted({str(name) for entry in data.values() for name in entry})


def _convert_naslib(data: Any, out_path: Optional[str | os.PathLike], dataset: Optional[str], eval_split: str,
                    source: str) -> NB201Table:
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, Mapping) for v in data.values()):
        raise ConversionError(f"{source} is not a NASLib NAS-Bench-201 pickle: expected a dict from architecture "
                              f"to a dict of per-dataset results.")
    names = _datasets_in(data)
    if dataset is None:
        if len(names) != 1:
            raise ConversionError(f"{source} holds the datasets {', '.join(names)}; "
                                  f"choose one with --dataset (dataset= in Python).")
        dataset = names[0]
    _check_dataset(dataset)
    if dataset not in names:
        raise ConversionError(f"{source} holds no dataset {dataset!r}; it holds {', '.join(names)}.")

    entries: dict[int, Mapping] = {}
    for key, entry in data.items():
        if dataset not in entry:
            continue
        try:
            index = naslib_key_to_index(key)
        except ArchitectureError as err:
            raise ConversionError(f"{source} has an unusable key: {err}") from None
        if not isinstance(entry[dataset], Mapping):
            raise ConversionError(f"{source} entry {key!r} holds no dict of results for {dataset!r}.")
        entries[index] = entry[dataset]
    lengths = [len(v) for e in entries.values() for k, v in e.items()
               if k in ("train_losses", "train_acc1es", "eval_losses", "eval_acc1es") and hasattr(v, "__len__")]
    n_epochs = max(lengths, default=0)
    if n_epochs < 1:
        raise ConversionError(f"{source} holds no per-epoch lists (train_losses, eval_acc1es, ...) for {dataset!r}.")

    archs = sorted(entries)
    arrays = _table_arrays(len(archs), 1, n_epochs)
    figures = {name: np.full(len(archs), np.nan) for name in ("params", "flops", "latency")}
    ev = eval_split
    for row, index in enumerate(archs):
        r = entries[index]
        arrays["train_loss"][row, 0] = _series(r.get("train_losses"), n_epochs)
        arrays["train_error"][row, 0] = 1.0 - _series(r.get("train_acc1es"), n_epochs) / 100.0
        arrays[f"{ev}_loss"][row, 0] = _series(r.get("eval_losses"), n_epochs)
        arrays[f"{ev}_error"][row, 0] = 1.0 - _series(r.get("eval_acc1es"), n_epochs) / 100.0
        eval_time = _series(r.get("eval_times"), n_epochs) if ev == "valid" else np.zeros(n_epochs)
        arrays["epoch_time"][row, 0] = _series(r.get("train_times"), n_epochs) + np.nan_to_num(eval_time, nan=0.0)
        cost = r.get("cost_info") if isinstance(r.get("cost_info"), Mapping) else {}
        figures["params"][row] = _number(cost.get("params", r.get("params")))
        figures["flops"][row] = _number(cost.get("flops", r.get("flop")))
        figures["latency"][row] = _latency(cost.get("latency", r.get("latency")))

    meta = {
        "dataset": dataset, "source": source, "source_format": "NASLib nb201 full-training pickle",
        "valid_split": "eval series of the pickle" if ev == "valid" else None,
        "test_split": "eval series of the pickle" if ev == "test" else None,
        "seeds_note": "one run per architecture; its seed is not recorded (stored as seed 0)",
        "units": {"errors": "fraction", "epoch_time": "seconds (train + eval)", "params": "millions",
                  "flops": "millions", "latency": "seconds"},
    }
    table = NB201Table(archs, [0], arrays, figures, dataset=dataset, meta=meta)
    table.save(out_path if out_path is not None else default_table_path(dataset))
    return table


# ---------------------------------------------------------------- command line

def _out_for(out: Optional[str], dataset: str, several: bool) -> Path:
    if out is None:
        return default_table_path(dataset)
    path = Path(out)
    if several or path.is_dir() or path.suffix != ".npz":
        return path / f"{dataset}.npz"
    return path


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry: `official` and `naslib` sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nasbench201.converters",
        description="Convert NAS-Bench-201 results into table files (.npz) for benchmarks.nasbench201.table.")
    sub = parser.add_subparsers(dest="source", required=True, metavar="{official,naslib}")
    p_off = sub.add_parser("official", help="the official NAS-Bench-201-v1_1-096897.pth (or v1_0)",
                           description="Convert the official NAS-Bench-201 .pth file (loading it takes minutes "
                                       "and several GB of memory; give several datasets to load it once).")
    p_off.add_argument("path", help="path of NAS-Bench-201-v1_1-096897.pth")
    p_off.add_argument("--dataset", nargs="+", default=["cifar10-valid"], metavar="DATASET",
                       help=f"one or more of {', '.join(DATASETS)}, or all (default cifar10-valid)")
    p_off.add_argument("--hp", choices=sorted(HP_KEYS), default="200", help="training schedule (default 200)")
    p_off.add_argument("--out", default=None,
                       help="output .npz file, or a folder for <dataset>.npz files "
                            "(default benchmarks/nasbench201/data/<dataset>.npz)")
    p_nas = sub.add_parser("naslib", help="a NASLib / DL-course nb201_<dataset>_full_training.pickle",
                           description="Convert a NASLib-style NAS-Bench-201 pickle.")
    p_nas.add_argument("path", help="path of nb201_<dataset>_full_training.pickle")
    p_nas.add_argument("--dataset", default=None, help="dataset key inside the file (default: its only one)")
    p_nas.add_argument("--eval-split", choices=("valid", "test"), default="valid",
                       help="store the file's single evaluation series as valid_* or test_* (default valid)")
    p_nas.add_argument("--out", default=None,
                       help="output .npz file or folder (default benchmarks/nasbench201/data/<dataset>.npz)")
    args = parser.parse_args(argv)

    try:
        if args.source == "official":
            datasets = list(DATASETS) if args.dataset == ["all"] else args.dataset
            for dataset in datasets:
                _check_dataset(dataset)
            data = load_official(args.path)
            for dataset in datasets:
                out = _out_for(args.out, dataset, len(datasets) > 1)
                table = _convert_official(data, dataset, out, args.hp, Path(args.path).name)
                print(f"wrote {out}: {table!r}")
        else:
            data = load_naslib(args.path)
            names = _datasets_in(data)
            dataset = args.dataset or (names[0] if len(names) == 1 else None)
            out = _out_for(args.out, dataset or "table", False)
            table = _convert_naslib(data, out, dataset, args.eval_split, Path(args.path).name)
            print(f"wrote {out}: {table!r}")
    except (ConversionError, ArchitectureError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
