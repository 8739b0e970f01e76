"""Tabulated NAS-Bench-201 results: per architecture, seed and epoch metrics in one memory-mappable `.npz` file.

File layout (`numpy.savez`, uncompressed, so each array can be memory-mapped straight from the file):

- `archs` int64 (A,): our architecture indices held (see `encoding`), sorted ascending; a table may hold a subset.
- `seeds` int64 (S,); `epochs` int64 (E,) = 1..E (epochs are 1-based, as in the report lines).
- `metric_<name>` float32 (A, S, E) per metric, NaN where unknown (an arch not run with a seed, a split that
  the dataset lacks). Usual metrics: `train_loss`, `train_error`, `valid_loss`, `valid_error`, `test_loss`,
  `test_error` (errors are fractions in [0, 1]) and `epoch_time` (seconds for that epoch).
- `arch_<name>` (A,) per-architecture figures, e.g. `params` and `flops` (millions), `latency` (seconds),
  `official_index` (index in the official benchmark file, -1 if unknown).
- `meta`: a JSON string: `format`, `dataset`, and provenance (source file, split choices, ...).
"""
from __future__ import annotations

import json
import mmap
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from .encoding import NUM_ARCHS, Arch, ArchitectureError, index_to_string, to_index

FORMAT = "nb201-table/1"
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_TABLE = "fmnist"  # the table `--benchmark nasbench201` reads unless told otherwise
METRICS: tuple[str, ...] = ("train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error",
                            "epoch_time")
_METRIC_PREFIX, _ARCH_PREFIX = "metric_", "arch_"


def default_table_path(dataset: str) -> Path:
    """Where the converters write, and lookups read, the table of `dataset`: benchmarks/nasbench201/data/."""
    return DATA_DIR / f"{dataset}.npz"


class TableError(ValueError):
    """A table file or table content that cannot be used."""


class ArchitectureNotInTableError(KeyError):
    """The architecture is valid but the table holds no results for it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NB201Table:
    """Metrics of NAS-Bench-201 architectures per seed and epoch, queried by architecture (string, index, config).

    `metrics` maps a metric name to a float array (n_archs, n_seeds, n_epochs) whose rows follow `archs`
    (sorted indices); `arch_figures` maps a name to an array (n_archs,).
    """

    def __init__(self, archs: Sequence[int] | np.ndarray, seeds: Sequence[int] | np.ndarray,
                 metrics: Mapping[str, np.ndarray], arch_figures: Optional[Mapping[str, np.ndarray]] = None,
                 dataset: str = "", meta: Optional[Mapping[str, object]] = None) -> None:
        archs = np.asarray(archs, dtype=np.int64).reshape(-1)
        seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
        if archs.size and (np.any(np.diff(archs) <= 0) or archs[0] < 0 or archs[-1] >= NUM_ARCHS):
            raise TableError("The table's archs must be distinct indices in [0, 15625) sorted ascending.")
        if not metrics:
            raise TableError("A table needs at least one metric.")
        n_epochs = None
        self._metrics: dict[str, np.ndarray] = {}
        for name, values in metrics.items():
            values = np.asarray(values)
            if n_epochs is None:
                n_epochs = values.shape[-1] if values.ndim == 3 else -1
            if values.shape != (archs.size, seeds.size, n_epochs):
                raise TableError(f"Metric {name!r} has shape {values.shape}; expected (archs, seeds, epochs) = "
                                 f"{(archs.size, seeds.size, n_epochs)}.")
            self._metrics[name] = values
        self._figures: dict[str, np.ndarray] = {}
        for name, values in (arch_figures or {}).items():
            values = np.asarray(values)
            if values.shape != (archs.size,):
                raise TableError(f"Per-architecture array {name!r} has shape {values.shape}; "
                                 f"expected ({archs.size},).")
            self._figures[name] = values
        self._archs = archs
        self._seeds = tuple(int(s) for s in seeds)
        self._seed_pos = {s: i for i, s in enumerate(self._seeds)}
        self._n_epochs = int(n_epochs)
        self._row = {int(a): i for i, a in enumerate(archs)}
        self._meta = dict(meta or {})
        self._meta["dataset"] = dataset or str(self._meta.get("dataset", ""))

    # ------------------------------------------------------------------ description

    @property
    def archs(self) -> np.ndarray:
        """Our indices of the architectures held, sorted."""
        return self._archs

    @property
    def seeds(self) -> tuple[int, ...]:
        return self._seeds

    @property
    def n_epochs(self) -> int:
        return self._n_epochs

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the per-epoch metrics."""
        return tuple(self._metrics)

    @property
    def arch_figures(self) -> tuple[str, ...]:
        """Names of the per-architecture figures."""
        return tuple(self._figures)

    @property
    def dataset(self) -> str:
        return str(self._meta["dataset"])

    @property
    def meta(self) -> dict:
        """Metadata (dataset, provenance), as saved in the file."""
        return dict(self._meta)

    def __len__(self) -> int:
        return int(self._archs.size)

    def __contains__(self, arch: Arch) -> bool:
        try:
            return to_index(arch) in self._row
        except ArchitectureError:
            return False

    def __repr__(self) -> str:
        return (f"NB201Table(dataset={self.dataset!r}, archs={len(self)}, seeds={list(self._seeds)}, "
                f"epochs={self._n_epochs}, metrics={list(self._metrics)})")

    # ------------------------------------------------------------------ queries

    def row(self, arch: Arch) -> int:
        """The row of `arch` in the arrays; raises `ArchitectureNotInTableError` (a KeyError) if not held."""
        index = to_index(arch)
        row = self._row.get(index)
        if row is None:
            raise ArchitectureNotInTableError(
                f"Architecture {index_to_string(index)} (index {index}) is not in this {self.dataset} table, "
                f"which holds {len(self)} of the 15625 architectures.")
        return row

    def _metric(self, metric: str) -> np.ndarray:
        values = self._metrics.get(metric)
        if values is None:
            raise KeyError(f"Unknown metric {metric!r}; this table holds {', '.join(self._metrics)}.")
        return values

    def _seed(self, seed: int) -> int:
        pos = self._seed_pos.get(seed)
        if pos is None:
            raise KeyError(f"Unknown seed {seed!r}; this table holds seeds {', '.join(map(str, self._seeds))}.")
        return pos

    def array(self, metric: str) -> np.ndarray:
        """The whole (n_archs, n_seeds, n_epochs) array of `metric` (read-only when memory-mapped)."""
        return self._metric(metric)

    def curve(self, arch: Arch, metric: str, seed: Optional[int] = None) -> np.ndarray:
        """The learning curve of `metric` over epochs 1..n_epochs; seed None = mean over seeds, ignoring NaN."""
        block = self._metric(metric)[self.row(arch)]
        if seed is not None:
            return np.array(block[self._seed(seed)])
        return _nanmean_rows(block)

    def query(self, arch: Arch, epoch: int, seed: Optional[int] = None) -> dict[str, float]:
        """All metrics at `epoch` (1-based) and the per-architecture figures; seed None = mean over seeds."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not 1 <= epoch <= self._n_epochs:
            raise ValueError(f"Epoch {epoch!r} is out of range; this table has epochs 1 to {self._n_epochs}.")
        row = self.row(arch)
        e = int(epoch) - 1
        pos = None if seed is None else self._seed(seed)
        out: dict[str, float] = {"epoch": int(epoch)}
        for name, values in self._metrics.items():
            column = values[row, :, e].tolist()  # a few seeds: plain Python beats numpy calls here
            if pos is not None:
                out[name] = column[pos]
            else:
                finite = [v for v in column if v == v]
                out[name] = sum(finite) / len(finite) if finite else float("nan")
        for name, values in self._figures.items():
            out[name] = values[row].item()
        return out

    def figure(self, arch: Arch, name: str) -> float:
        """A per-architecture figure such as `params` or `flops`."""
        values = self._figures.get(name)
        if values is None:
            raise KeyError(f"Unknown figure {name!r}; this table holds {', '.join(self._figures) or 'none'}.")
        return values[self.row(arch)].item()

    def figure_array(self, name: str) -> np.ndarray:
        """The per-architecture figure `name` of every row."""
        values = self._figures.get(name)
        if values is None:
            raise KeyError(f"Unknown figure {name!r}; this table holds {', '.join(self._figures) or 'none'}.")
        return values

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as one uncompressed `.npz` file (the suffix is added if missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self._meta, format=FORMAT)
        arrays: dict[str, np.ndarray] = {
            "archs": self._archs, "seeds": np.asarray(self._seeds, dtype=np.int64),
            "epochs": np.arange(1, self._n_epochs + 1, dtype=np.int64),
            "meta": np.asarray(json.dumps(meta, sort_keys=True)),
        }
        arrays.update({_METRIC_PREFIX + k: np.ascontiguousarray(v, dtype=np.float32)
                       for k, v in self._metrics.items()})
        arrays.update({_ARCH_PREFIX + k: np.ascontiguousarray(v) for k, v in self._figures.items()})
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, mmap_mode: bool = True) -> "NB201Table":
        """Read a table file; with `mmap_mode` the large arrays are memory-mapped (read-only), not read."""
        path = Path(path)
        if not path.is_file():
            raise TableError(f"No table file at {path}; build one with `python -m benchmarks.nasbench201.converters`.")
        try:
            arrays = _read_npz(path, mmap_mode)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
            raise TableError(f"{path} is not a NAS-Bench-201 table file (.npz written by NB201Table.save): "
                             f"{err}.") from None
        try:
            meta = json.loads(str(arrays["meta"][()]))
            archs, seeds = arrays["archs"], arrays["seeds"]
        except (KeyError, json.JSONDecodeError):
            raise TableError(f"{path} is not a NAS-Bench-201 table file: it lacks archs, seeds or meta.") from None
        if meta.get("format") != FORMAT:
            raise TableError(f"{path} has format {meta.get('format')!r}; this code reads {FORMAT!r}.")
        metrics = {k[len(_METRIC_PREFIX):]: v for k, v in arrays.items() if k.startswith(_METRIC_PREFIX)}
        figures = {k[len(_ARCH_PREFIX):]: v for k, v in arrays.items() if k.startswith(_ARCH_PREFIX)}
        return cls(archs, seeds, metrics, figures, dataset=str(meta.get("dataset", "")), meta=meta)


def _nanmean_rows(block: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (NaN where a column has no value), without warnings."""
    if block.shape[0] == 1:
        return np.array(block[0])
    total = np.add.reduce(block, axis=0)
    if not np.isnan(total).any():
        total /= block.shape[0]
        return total
    nan = np.isnan(block)
    count = block.shape[0] - nan.sum(axis=0)
    total = np.where(nan, 0.0, block).sum(axis=0, dtype=block.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _read_npz(path: Path, mmap_mode: bool) -> dict[str, np.ndarray]:
    """The arrays of an `.npz`; stored (uncompressed) numeric members are memory-mapped when asked."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        buffer = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) if mmap_mode else None
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            if buffer is not None and info.compress_type == zipfile.ZIP_STORED:
                raw.seek(info.header_offset)
                local = raw.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError(f"bad zip entry {info.filename}")
                start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") \
                    + int.from_bytes(local[28:30], "little")
                raw.seek(start)
                version = np.lib.format.read_magic(raw)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
                if not dtype.hasobject:
                    count = int(np.prod(shape, dtype=np.int64))
                    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=raw.tell())
                    out[key] = array.reshape(shape, order="F" if fortran else "C")
                    continue
            with archive.open(info) as member:
                out[key] = np.lib.format.read_array(member, allow_pickle=False)
    return out


def load_named_table(dataset: str) -> tuple[NB201Table, Path]:
    """The table of ``dataset``: a name of a file in benchmarks/nasbench201/data/, or the path of a table file."""
    path = Path(dataset) if dataset.endswith(".npz") else default_table_path(dataset)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in DATA_DIR.glob("*.npz"))) or "none yet"
        raise TableError(f"No NAS-Bench-201 table '{dataset}' (looked for {path}): choose one of {available}, or "
                         "pass the path of a .npz table (`python -m benchmarks.nasbench201.converters` makes them).")
    return NB201Table.load(path), path.resolve()
