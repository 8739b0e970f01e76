"""What data a NAS-Bench-201 network trains on (`DataSpec`), checked without importing torch (scripts parse flags
before they pay for torch)."""
from __future__ import annotations

from dataclasses import dataclass

DATASETS: tuple[str, ...] = ("cifar10", "fashion_mnist", "mnist")


@dataclass(frozen=True)
class DataSpec:
    """What `prepare_data` builds: dataset, folder, split and size choices (all recorded as provenance)."""

    dataset: str = "mnist"
    dataset_path: str = "data"
    valid_fraction: float = 0.1
    data_fraction: float = 1.0
    image_size: int | None = None
    split_seed: int = 0
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None


def check_spec(spec: DataSpec) -> None:
    """Raise ValueError with one sentence for a bad dataset name, fraction or image size."""
    if spec.dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {spec.dataset!r}; accepted datasets are {', '.join(DATASETS)}.")
    if not 0.0 < spec.valid_fraction < 1.0:
        raise ValueError(f"valid_fraction {spec.valid_fraction} is not accepted; it must lie in (0, 1).")
    if not 0.0 < spec.data_fraction <= 1.0:
        raise ValueError(f"data_fraction {spec.data_fraction} is not accepted; it must lie in (0, 1].")
    if spec.image_size is not None and spec.image_size < 4:
        raise ValueError(f"image_size {spec.image_size} is not accepted; it must be at least 4.")
    for name in ("n_train", "n_valid", "n_test"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} {value!r} is not accepted; it must be a positive number of examples.")
