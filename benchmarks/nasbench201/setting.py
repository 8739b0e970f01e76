"""The setting of a table the project trains: data, network and recipe of one table answer.

One answer is the mean over `seeds` of the same architecture trained side by side (`training.SeedGroupTrainer`), so
the seeds cost little more than one. `setting_experiment` measures candidate settings; `TABLE_SETTING` is the one it
chose, the default of `generate_table`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .dataspec import DataSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Setting:
    """Data, network and training recipe of one table answer (all recorded in the runs file's header)."""

    dataset: str = "fashion_mnist"
    dataset_path: str = str(SHARED_DATASETS / "fashion-mnist")
    valid_fraction: float = 0.25
    n_train: int | None = 6000
    n_valid: int | None = 5000
    n_test: int | None = 5000
    image_size: int | None = 16
    channels: int = 4
    cells_per_stage: int = 1
    epochs: int = 6
    batch_size: int = 128
    learning_rate: float = 0.1
    seeds: tuple[int, ...] = field(default=(0, 1))

    def data_spec(self) -> DataSpec:
        return DataSpec(self.dataset, self.dataset_path, self.valid_fraction, 1.0, self.image_size, 0,
                        self.n_train, self.n_valid, self.n_test)

    def train_spec(self):
        from .training import TrainSpec
        return TrainSpec(channels=self.channels, cells_per_stage=self.cells_per_stage, epochs=self.epochs,
                         batch_size=self.batch_size, learning_rate=self.learning_rate, seed=self.seeds[0])

    def with_seeds(self, seeds: tuple[int, ...]) -> "Setting":
        return Setting(**{**asdict(self), "seeds": tuple(seeds)})

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Setting":
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "seeds" else v for k, v in values.items() if k in known})

    def describe(self) -> str:
        size = f"{self.image_size}px" if self.image_size else "full-size"
        return (f"{self.dataset} {size}, {self.n_train} train / {self.n_valid} valid / {self.n_test} test images, "
                f"{self.channels} channels, {self.cells_per_stage} cell(s) per stage, {self.epochs} epochs, batch "
                f"{self.batch_size}, learning rate {self.learning_rate}, mean of {len(self.seeds)} seed(s)")


def parse_overrides(text: str, base: Setting) -> Setting:
    """`base` with the fields given as `key=value,...` (seeds as `0+1`); ValueError names a bad one."""
    types = {f.name: f.type for f in fields(Setting)}
    values: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"{item!r} is not accepted; give key=value pairs over {', '.join(types)}.")
        try:
            if key == "seeds":
                values[key] = tuple(int(v) for v in value.split("+"))
            elif key in ("dataset", "dataset_path"):
                values[key] = value
            elif key in ("valid_fraction", "learning_rate"):
                values[key] = float(value)
            else:
                values[key] = None if value == "none" else int(value)
        except ValueError:
            raise ValueError(f"{item!r} is not accepted; {key} takes a number.") from None
    return Setting(**{**asdict(base), **values})


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A setting's fields that decide its numbers (not where the data lie)."""
    return {k: v for k, v in values.items() if k != "dataset_path"}


# Chosen by the setting experiment (candidate fmnist12-10k-e6-b64); the card prints the experiment and this reason.
TABLE_SETTING = Setting(image_size=12, n_train=10000, batch_size=64, learning_rate=0.05)
TABLE_SETTING_REASON = (
    "No candidate met all three targets within the budget. fmnist12-10k-e6-b64 is the only one that meets the "
    "seed-vs-seed target (run vs run 0.728 >= 0.7; the others 0.600 and 0.512); it misses validation vs test "
    "(0.851, target 0.9) and epoch max/3 vs max (0.436, target 0.5). It cost 26.9 CPU seconds per class in the "
    "experiment, which ran beside other jobs on a loaded machine (the cheaper candidates 20.9), i.e. 48 core-hours "
    "for the table, 7% over the ~45 core-hour budget; the generator's classes, on a calmer machine, take about 22. "
    "By seed-vs-seed correlation per core-hour it and fmnist12-10k-e6 are indistinguishable (0.0151 against 0.0160; "
    "95% bootstrap intervals of the two correlations 0.56-0.84 and 0.39-0.76 over the 60 classes), so the one that "
    "resolves architectures was taken.")
TABLE_NAME = "fmnist"
