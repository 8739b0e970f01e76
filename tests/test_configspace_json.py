"""Reading ConfigSpace JSON files into flat Syne Tune spaces."""
import ConfigSpace as CS
import pytest
from syne_tune.config_space import Categorical, Float, Integer, Ordinal, is_log_space

from benchmarks.configspace_json import ConfigSpaceFileError, load_config_space


def test_conditional_space_becomes_flat_syne_tune_domains(tmp_path):
    space = CS.ConfigurationSpace()
    space.add([CS.UniformFloatHyperparameter("lr", 1e-4, 1e-1, log=True), CS.UniformIntegerHyperparameter("n", 1, 3),
               CS.UniformIntegerHyperparameter("f2", 4, 64, log=True), CS.CategoricalHyperparameter("opt", ["a", "b"]),
               CS.OrdinalHyperparameter("bs", [16, 32]), CS.Constant("epochs", 3)])
    space.add(CS.GreaterThanCondition(space["f2"], space["n"], 1))
    space.to_json(tmp_path / "space.json")
    domains = load_config_space(tmp_path / "space.json")
    assert isinstance(domains["lr"], Float) and (domains["lr"].lower, domains["lr"].upper) == (1e-4, 1e-1)
    assert isinstance(domains["n"], Integer) and (domains["n"].lower, domains["n"].upper) == (1, 3)
    assert isinstance(domains["f2"], Integer)  # conditions are dropped: sampled always, ignored by the script
    assert [name for name, d in domains.items() if name != "epochs" and is_log_space(d)] == ["lr", "f2"]  # kept log
    assert isinstance(domains["opt"], Categorical) and domains["opt"].categories == ["a", "b"]
    assert isinstance(domains["bs"], Ordinal) and domains["bs"].categories == [16, 32]
    assert domains["epochs"] == 3


def test_bad_files_give_one_clear_sentence(tmp_path):
    with pytest.raises(ConfigSpaceFileError, match="does not exist"):
        load_config_space(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigSpaceFileError, match="is not ConfigSpace JSON"):
        load_config_space(tmp_path / "bad.json")
    space = CS.ConfigurationSpace()
    space.add(CS.NormalFloatHyperparameter("w", mu=0, sigma=1, lower=-3, upper=3))
    space.to_json(tmp_path / "normal.json")
    with pytest.raises(ConfigSpaceFileError, match="accepted are uniform float and integer"):
        load_config_space(tmp_path / "normal.json")
