"""The Syne Tune config space of NAS-Bench-201: one categorical hyperparameter per cell edge.

`x0`..`x5` follow the official architecture string order (see `encoding`); `encoding.to_string(config)` turns a
sampled config into the architecture string, `encoding.to_index(config)` into our index.
"""
from __future__ import annotations

from typing import Any

from syne_tune.config_space import choice

from .encoding import HP_NAMES, OPS


def config_space() -> dict[str, Any]:
    """{x0: choice(OPS), ..., x5: choice(OPS)}, 15,625 configurations."""
    return {name: choice(list(OPS)) for name in HP_NAMES}
