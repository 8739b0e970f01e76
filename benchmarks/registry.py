"""Named benchmarks: what is tuned (config space, metric, budget) and how it is run (a script or a table)."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "training_scripts"


class UnknownBenchmarkError(ValueError):
    """A benchmark name that the registry does not know."""


@dataclass(frozen=True)
class Benchmark:
    """A tuning problem. ``config_space`` holds Syne Tune domains; the script gets every entry as ``--name value``."""

    name: str
    description: str
    config_space: dict[str, Any]
    metric: str
    mode: str
    resource_attr: str
    max_resource: int
    script: Path | None = None
    # Script flag that receives the largest number of epochs a trial may run; None when the space holds it.
    epochs_flag: str | None = "epochs"
    # Script flag for the data folder; None when the script reads no data.
    dataset_path_flag: str | None = "dataset_path"
    # Extra constants that every trial of this benchmark gets (e.g. the dataset of a tabulated benchmark).
    constants: dict[str, Any] = field(default_factory=dict)
    # Script flag naming the dataset (NAS-Bench-201), and the dataset the benchmark was built for.
    dataset_flag: str | None = None
    dataset: str | None = None
    # Builds the Syne Tune blackbox for the simulated backend (tabulated benchmarks only).
    blackbox: Callable[[], Any] | None = None

    def script_config_space(self, max_epochs: int, dataset_path: str | None = None) -> dict[str, Any]:
        """The config space handed to the backend: hyperparameters plus the script's fixed flags."""
        space = {**self.config_space, **self.constants}
        if self.epochs_flag:
            space[self.epochs_flag] = max_epochs
        if dataset_path is not None and self.dataset_path_flag:
            space[self.dataset_path_flag] = dataset_path
        if self.dataset_flag:
            space[self.dataset_flag] = self.dataset
        return space


def _mnist_convnet() -> Benchmark:
    from benchmarks.mnist.space import config_space

    return Benchmark(
        name="mnist_convnet",
        description="MNIST convnet (1-3 conv layers, filters, learning rate, batch size, optimizer, dropout)",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=9,
        script=SCRIPTS_DIR / "mnist_convnet.py",
    )


def _nasbench201(dataset: str | None) -> Benchmark:
    from benchmarks.nasbench201.blackbox import NB201Blackbox
    from benchmarks.nasbench201.space import config_space
    from benchmarks.nasbench201.table import load_named_table

    table, table_path = load_named_table(dataset or NASBENCH201_DEFAULT_TABLE)
    return Benchmark(
        name="nasbench201",
        description=f"NAS-Bench-201 cells looked up in the table {table_path}",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=table.n_epochs,
        script=SCRIPTS_DIR / "nasbench201_lookup.py",
        dataset_path_flag=None,
        dataset_flag="table",
        dataset=str(table_path),
        blackbox=lambda: NB201Blackbox(table),
    )


def _nasbench201_train(dataset: str | None) -> Benchmark:
    from benchmarks.nasbench201.space import config_space

    return Benchmark(
        name="nasbench201_train",
        description="NAS-Bench-201 cells trained from scratch (SGD, cosine schedule, as in NAS-Bench-201)",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=200,
        script=SCRIPTS_DIR / "nasbench201_train.py",
        dataset_flag="dataset",
        dataset=dataset or "mnist",
    )


NASBENCH201_DEFAULT_TABLE = "mnist10k"
BENCHMARKS: dict[str, Callable[[str | None], Benchmark]] = {
    "mnist_convnet": lambda dataset: _mnist_convnet(),
    "nasbench201": _nasbench201,
    "nasbench201_train": _nasbench201_train,
}


def get_benchmark(name: str, dataset: str | None = None) -> Benchmark:
    """The registered benchmark called ``name``, on ``dataset`` where it has several (NAS-Bench-201)."""
    if name not in BENCHMARKS:
        raise UnknownBenchmarkError(f"Unknown benchmark '{name}': choose one of {', '.join(sorted(BENCHMARKS))}.")
    return BENCHMARKS[name](dataset)


def custom_benchmark(script: str | Path, config_space_file: str | Path, metric: str, mode: str,
                     resource_attr: str, max_resource: int) -> Benchmark:
    """A benchmark for any script that reports through ``syne_tune.Reporter``, its space in ConfigSpace JSON."""
    from benchmarks.configspace_json import load_config_space

    script = Path(script).resolve()
    return Benchmark(
        name=f"custom-{script.stem}",
        description=f"custom script {script}",
        config_space=load_config_space(config_space_file),
        metric=metric,
        mode=mode,
        resource_attr=resource_attr,
        max_resource=max_resource,
        script=script,
        epochs_flag=None,
        dataset_path_flag=None,
    )
