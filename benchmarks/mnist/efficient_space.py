"""The MNIST convnet's space with efficient convolutions: `benchmarks.mnist.space` plus a block choice per layer.

Per conv layer i (1 to 3): `conv_type_i` (`standard` 3x3 convolution or depthwise-`separable`), `se_i` (`off` or
`on`: a squeeze-and-excitation block after the activation) and `se_reduction_i` (SE's channel reduction ratio). The
defaults (`standard`, `off`) build exactly the convnet of `benchmarks.mnist.space`, which stays as it is, so results
on the two spaces are comparable. `config_space()` is flat (the script ignores the flags of absent layers and the
ratio of layers without SE); `conditional_configspace()` makes a layer's block choices active only when the layer
exists and `se_reduction_i` only when `se_i` is `on`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syne_tune.config_space import choice

from benchmarks.mnist import space as base

if TYPE_CHECKING:  # pragma: no cover
    import ConfigSpace

CONV_TYPES = ["standard", "separable"]
SE_SWITCH = ["off", "on"]
SE_REDUCTIONS = [2, 4, 8, 16]
CONV_TYPE_KEYS = ["conv_type_1", "conv_type_2", "conv_type_3"]
SE_KEYS = ["se_1", "se_2", "se_3"]
SE_REDUCTION_KEYS = ["se_reduction_1", "se_reduction_2", "se_reduction_3"]

DEFAULT_CONFIG: dict[str, Any] = {
    **base.DEFAULT_CONFIG,
    **{key: "standard" for key in CONV_TYPE_KEYS},
    **{key: "off" for key in SE_KEYS},
    **{key: 4 for key in SE_REDUCTION_KEYS},
}


def config_space() -> dict[str, Any]:
    """Flat Syne Tune config space: the MNIST convnet's plus, per layer, conv type, SE switch and SE ratio."""
    return {
        **base.config_space(),
        **{key: choice(list(CONV_TYPES)) for key in CONV_TYPE_KEYS},
        **{key: choice(list(SE_SWITCH)) for key in SE_KEYS},
        **{key: choice(list(SE_REDUCTIONS)) for key in SE_REDUCTION_KEYS},
    }


def conditional_configspace(seed: int | None = None) -> "ConfigSpace.ConfigurationSpace":
    """ConfigSpace version of `config_space()` with the layer and SE conditions; defaults are `DEFAULT_CONFIG`."""
    from ConfigSpace import CategoricalHyperparameter, EqualsCondition, GreaterThanCondition

    cs = base.conditional_configspace(seed)
    n_layers = cs["n_conv_layers"]
    conditions = []
    for layer, (conv_key, se_key, ratio_key) in enumerate(zip(CONV_TYPE_KEYS, SE_KEYS, SE_REDUCTION_KEYS), start=1):
        conv_type = CategoricalHyperparameter(conv_key, list(CONV_TYPES), default_value=DEFAULT_CONFIG[conv_key])
        se = CategoricalHyperparameter(se_key, list(SE_SWITCH), default_value=DEFAULT_CONFIG[se_key])
        ratio = CategoricalHyperparameter(ratio_key, list(SE_REDUCTIONS), default_value=DEFAULT_CONFIG[ratio_key])
        cs.add([conv_type, se, ratio])
        # the same layer conditions as the filter counts: layer 2 exists for 2 or 3 layers, layer 3 for 3
        if layer == 2:
            conditions += [GreaterThanCondition(conv_type, n_layers, 1), GreaterThanCondition(se, n_layers, 1)]
        elif layer == 3:
            conditions += [EqualsCondition(conv_type, n_layers, 3), EqualsCondition(se, n_layers, 3)]
        conditions.append(EqualsCondition(ratio, se, "on"))  # inactive too when `se` is, with its layer
    cs.add(conditions)
    return cs


def active_blocks(config: dict[str, Any]) -> list[tuple[bool, int | None]]:
    """(separable, SE reduction or None) of the layers that exist in `config`; absent entries take the defaults."""
    n_layers = int(config.get("n_conv_layers", DEFAULT_CONFIG["n_conv_layers"]))
    blocks = []
    for conv_key, se_key, ratio_key in list(zip(CONV_TYPE_KEYS, SE_KEYS, SE_REDUCTION_KEYS))[:n_layers]:
        separable = config.get(conv_key, DEFAULT_CONFIG[conv_key]) == "separable"
        se_on = config.get(se_key, DEFAULT_CONFIG[se_key]) == "on"
        blocks.append((separable, int(config.get(ratio_key, DEFAULT_CONFIG[ratio_key])) if se_on else None))
    return blocks
