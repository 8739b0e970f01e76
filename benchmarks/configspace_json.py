"""Read a ConfigSpace JSON file into a flat Syne Tune config space, and into ConfigSpace itself.

Syne Tune's schedulers know no conditions: every hyperparameter is sampled in every trial and passed to the script,
which ignores the ones that are inactive (as the MNIST convnet ignores ``n_filters_3`` with two layers). Our own
model-based schedulers take the ConfigSpace space (``load_configspace``) and honour its conditions.
"""
from pathlib import Path
from typing import Any

from syne_tune import config_space as st

from benchmarks.registry import BenchmarkError


class ConfigSpaceFileError(BenchmarkError):
    """A config space file that cannot be read or holds something Syne Tune cannot tune."""


def load_configspace(path: str | Path) -> Any:
    """The ConfigSpace space of a ConfigSpace JSON file, conditions included."""
    import ConfigSpace

    path = Path(path)
    if not path.is_file():
        raise ConfigSpaceFileError(f"Config space file '{path}' does not exist: pass a ConfigSpace JSON file.")
    try:
        space = ConfigSpace.ConfigurationSpace.from_json(path)
    except Exception as error:  # ConfigSpace raises a variety of errors for malformed files
        raise ConfigSpaceFileError(
            f"Config space file '{path}' is not ConfigSpace JSON ({error}): write it with "
            "ConfigurationSpace.to_json."
        ) from None
    if not list(space.values()):
        raise ConfigSpaceFileError(f"Config space file '{path}' holds no hyperparameters.")
    return space


def load_config_space(path: str | Path) -> dict[str, Any]:
    """Syne Tune domains for the hyperparameters of a ConfigSpace JSON file (conditions are dropped, see above)."""
    return {hp.name: _to_domain(hp, Path(path)) for hp in load_configspace(path).values()}


def _to_domain(hp: Any, path: Path) -> Any:
    from ConfigSpace import hyperparameters as h

    if isinstance(hp, h.Constant):
        return hp.value
    if isinstance(hp, h.CategoricalHyperparameter):
        return st.choice(list(hp.choices))
    if isinstance(hp, h.OrdinalHyperparameter):
        return st.ordinal(list(hp.sequence))
    if isinstance(hp, h.UniformFloatHyperparameter):
        return (st.loguniform if hp.log else st.uniform)(float(hp.lower), float(hp.upper))
    if isinstance(hp, h.UniformIntegerHyperparameter):
        return (st.lograndint if hp.log else st.randint)(int(hp.lower), int(hp.upper))
    raise ConfigSpaceFileError(
        f"Hyperparameter '{hp.name}' in '{path}' is a {type(hp).__name__}: accepted are uniform float and integer "
        "(optionally log), categorical, ordinal and constant hyperparameters."
    )
