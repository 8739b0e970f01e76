"""The benchmark registry: each entry's declared dataset help and table match what it builds; one error family."""
import pytest

from benchmarks.configspace_json import ConfigSpaceFileError, load_config_space
from benchmarks.registry import BENCHMARKS, BenchmarkError, DatasetError, UnknownBenchmarkError, get_benchmark


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_each_entry_declares_what_it_builds(name):
    entry = BENCHMARKS[name]
    benchmark = get_benchmark(name)
    assert benchmark.name == name and entry.title
    assert (entry.dataset_help is not None) == (benchmark.dataset_flag is not None)
    assert entry.tabulated == (benchmark.blackbox is not None)


def test_user_errors_are_benchmark_errors_with_one_sentence(tmp_path):
    with pytest.raises(UnknownBenchmarkError, match=r"^Unknown benchmark 'cifar': choose one of fashion_mnist_mlp, "):
        get_benchmark("cifar")
    with pytest.raises(DatasetError, match=r"^--dataset applies to nasbench201 and nasbench201_train, not to "
                                           r"'mnist_convnet'\.$"):
        get_benchmark("mnist_convnet", "cifar10")
    with pytest.raises(DatasetError, match=r"^No NAS-Bench-201 table 'imaginary'"):
        get_benchmark("nasbench201", "imaginary")
    with pytest.raises(ConfigSpaceFileError, match=r"does not exist: pass a ConfigSpace JSON file\.$"):
        load_config_space(tmp_path / "missing.json")
    assert issubclass(ConfigSpaceFileError, BenchmarkError) and issubclass(DatasetError, BenchmarkError)
