"""Named benchmarks: what is tuned (config space, metric, budget) and how it is run (a script or a table).

Each entry supplies its own ``--dataset`` help and raises ``BenchmarkError`` (one sentence for the user) for what it
cannot build, so that the launchers name no benchmark. Building an entry imports what that benchmark needs, and
nothing of the simulator until its blackbox is built.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "training_scripts"


class BenchmarkError(ValueError):
    """A benchmark that cannot be built as asked; the message is one sentence naming the bad value."""


class UnknownBenchmarkError(BenchmarkError):
    """A benchmark name that the registry does not know."""


class DatasetError(BenchmarkError):
    """A dataset that the benchmark does not have."""


@dataclass(frozen=True)
class Benchmark:
    """A tuning problem. ``config_space`` holds Syne Tune domains; the script gets every entry as ``--name value``."""

    name: str
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
    # Script flag naming the dataset (NAS-Bench-201), and the dataset the benchmark was built for.
    dataset_flag: str | None = None
    dataset: str | None = None
    # Builds the Syne Tune blackbox for the simulated backend (tabulated benchmarks only); keywords such as
    # table_seed go to the blackbox.
    blackbox: Callable[..., Any] | None = None
    # Where the benchmark can evaluate only some configurations (a partial table): which, and a note saying so
    # for metadata.json. Schedulers are then kept to those configurations.
    accepts: Callable[[dict[str, Any]], bool] | None = None
    sampling_note: str | None = None
    # The training seeds a table holds (for --table-seed N).
    table_seeds: tuple[int, ...] = ()
    # One seed's measured noise (standard deviation) in the table's final metric, where the table holds two or
    # more seeds: what differences its answers can resolve (recorded in metadata.json, printed by the summary).
    seed_noise: float | None = None
    # Where configurations can be equivalent (two NAS-Bench-201 cells of one class are the same network): a key
    # equal for equivalent configurations, so that schedulers never run the same thing twice.
    config_key: Callable[[dict[str, Any]], Any] | None = None
    # The tuned hyperparameters as a ConfigSpace space with their conditions (built on demand), for the schedulers
    # that model the space; None where the space has no conditions.
    configspace: Callable[[], Any] | None = None

    def script_config_space(self, max_epochs: int, dataset_path: str | None = None) -> dict[str, Any]:
        """The config space handed to the backend: hyperparameters plus the script's fixed flags."""
        space = dict(self.config_space)
        if self.epochs_flag:
            space[self.epochs_flag] = max_epochs
        if dataset_path is not None and self.dataset_path_flag:
            space[self.dataset_path_flag] = dataset_path
        if self.dataset_flag:
            space[self.dataset_flag] = self.dataset
        return space


@dataclass(frozen=True)
class BenchmarkEntry:
    """A registered benchmark: ``build(dataset)`` makes it; ``dataset_help`` is None where it takes no dataset."""

    name: str
    title: str
    build: Callable[[str | None], Benchmark]
    dataset_help: str | None = None
    tabulated: bool = False


def _mnist_convnet(dataset: str | None) -> Benchmark:
    from benchmarks.mnist.space import conditional_configspace, config_space

    return Benchmark(
        name="mnist_convnet",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=9,
        script=SCRIPTS_DIR / "mnist_convnet.py",
        configspace=conditional_configspace,
    )


def _nasbench201_class(config: dict[str, Any]) -> int:
    """The official equivalence class of a NAS-Bench-201 cell (its representative's index)."""
    from benchmarks.nasbench201.encoding import class_of, config_to_index

    return class_of(config_to_index(config))  # (it reads x0..x5 only)


def _nasbench201(dataset: str | None) -> Benchmark:
    from benchmarks.nasbench201.answers import ClassAnswers
    from benchmarks.nasbench201.card import seed_noise
    from benchmarks.nasbench201.encoding import NUM_ARCHS, config_to_index
    from benchmarks.nasbench201.space import config_space
    from benchmarks.nasbench201.table import DEFAULT_TABLE, TableError, load_named_table

    try:
        table, table_path = load_named_table(dataset or DEFAULT_TABLE)
    except TableError as error:
        raise DatasetError(str(error)) from None
    answers = ClassAnswers(table)
    n_answered = len(answers.answered_cells())
    accepts, note = None, None
    if n_answered < NUM_ARCHS:
        def answered(config: dict[str, Any]) -> bool:
            return answers.answered(config_to_index(config))
        accepts = answered
        note = (f"only the {n_answered} of {NUM_ARCHS} cells whose official class the table measured "
                f"({len(answers.classes)} of 6466 classes); other cells are never proposed")

    def blackbox(**options: Any) -> Any:
        # Imported here: the blackbox brings in Syne Tune's simulator and scikit-learn, which a local run never needs.
        from benchmarks.nasbench201.blackbox import NB201Blackbox

        return NB201Blackbox(table, answers=answers, **options)

    return Benchmark(
        name="nasbench201",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=table.n_epochs,
        script=SCRIPTS_DIR / "nasbench201_lookup.py",
        dataset_path_flag=None,
        dataset_flag="table",
        dataset=str(table_path),
        blackbox=blackbox,
        accepts=accepts,
        sampling_note=note,
        table_seeds=tuple(table.seeds),
        seed_noise=noise[0] if (noise := seed_noise(table)) else None,
        config_key=_nasbench201_class,
    )


def _mnist_convnet_efficient(dataset: str | None) -> Benchmark:
    from benchmarks.mnist.efficient_space import conditional_configspace, config_space

    return Benchmark(
        name="mnist_convnet_efficient",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=9,
        script=SCRIPTS_DIR / "mnist_convnet.py",
        configspace=conditional_configspace,
    )


def _fashion_mnist_mlp(dataset: str | None) -> Benchmark:
    from benchmarks.fashion_mnist.space import MAX_EPOCHS, config_space

    return Benchmark(
        name="fashion_mnist_mlp",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=MAX_EPOCHS,
        script=SCRIPTS_DIR / "fashion_mnist_mlp.py",
    )


def _nasbench201_train(dataset: str | None) -> Benchmark:
    from benchmarks.nasbench201.space import config_space

    return Benchmark(
        name="nasbench201_train",
        config_space=config_space(),
        metric="valid_error",
        mode="min",
        resource_attr="epoch",
        max_resource=200,
        script=SCRIPTS_DIR / "nasbench201_train.py",
        config_key=_nasbench201_class,
        dataset_flag="dataset",
        dataset=dataset or "mnist",
    )


def _table_names() -> str:
    """The tables shipped or built in the repository (for --help; numpy is not imported for it)."""
    names = sorted(path.stem for path in (Path(__file__).resolve().parent / "nasbench201" / "data").glob("*.npz"))
    return ", ".join(names) or "none yet"


BENCHMARKS: dict[str, BenchmarkEntry] = {entry.name: entry for entry in (
    BenchmarkEntry("mnist_convnet", "trains the MNIST convnet", _mnist_convnet),
    BenchmarkEntry("nasbench201", "looks NAS-Bench-201 cells up in a table", _nasbench201,
                   dataset_help=f"table name in benchmarks/nasbench201/data/ ({_table_names()}; each described "
                   "by its .md card) or a .npz path (default fmnist)",
                   tabulated=True),
    BenchmarkEntry("mnist_convnet_efficient", "trains the MNIST convnet with optional separable convolutions and "
                   "squeeze-and-excitation blocks", _mnist_convnet_efficient),
    BenchmarkEntry("fashion_mnist_mlp", "trains Syne Tune's tutorial MLP on Fashion-MNIST", _fashion_mnist_mlp),
    BenchmarkEntry("nasbench201_train", "trains NAS-Bench-201 cells from scratch", _nasbench201_train,
                   dataset_help="mnist, fashion_mnist or cifar10 (default mnist)"),
)}


def get_benchmark(name: str, dataset: str | None = None) -> Benchmark:
    """The registered benchmark called ``name``, on ``dataset`` where it has several; raises ``BenchmarkError``."""
    if name not in BENCHMARKS:
        raise UnknownBenchmarkError(f"Unknown benchmark '{name}': choose one of {', '.join(sorted(BENCHMARKS))}.")
    entry = BENCHMARKS[name]
    if dataset is not None and entry.dataset_help is None:
        with_datasets = [n for n, e in BENCHMARKS.items() if e.dataset_help is not None]
        raise DatasetError(f"--dataset applies to {' and '.join(with_datasets)}, not to '{name}'.")
    return entry.build(dataset)


def custom_benchmark(script: str | Path, config_space_file: str | Path, metric: str, mode: str,
                     resource_attr: str, max_resource: int) -> Benchmark:
    """A benchmark for any script that reports through ``syne_tune.Reporter``, its space in ConfigSpace JSON."""
    from benchmarks.configspace_json import load_config_space, load_configspace

    script = Path(script).resolve()
    return Benchmark(
        name=f"custom-{script.stem}",
        config_space=load_config_space(config_space_file),
        metric=metric,
        mode=mode,
        resource_attr=resource_attr,
        max_resource=max_resource,
        script=script,
        epochs_flag=None,
        dataset_path_flag=None,
        configspace=lambda: load_configspace(config_space_file),
    )
