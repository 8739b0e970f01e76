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
    # Builds the Syne Tune blackbox for the simulated backend, given the dataset name (tabulated benchmarks only).
    blackbox: Callable[[str | None], Any] | None = None

    def script_config_space(self, max_epochs: int, dataset_path: str | None = None) -> dict[str, Any]:
        """The config space handed to the backend: hyperparameters plus the script's fixed flags."""
        space = {**self.config_space, **self.constants}
        if self.epochs_flag:
            space[self.epochs_flag] = max_epochs
        if dataset_path is not None and self.dataset_path_flag:
            space[self.dataset_path_flag] = dataset_path
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


BENCHMARKS: dict[str, Callable[[], Benchmark]] = {
    "mnist_convnet": _mnist_convnet,
}


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark called ``name``."""
    if name not in BENCHMARKS:
        raise UnknownBenchmarkError(f"Unknown benchmark '{name}': choose one of {', '.join(sorted(BENCHMARKS))}.")
    return BENCHMARKS[name]()


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
