"""Encodings of NAS-Bench-201 cells: architecture string, config dict, integer index, and equivalence classes.

A cell has 4 nodes (0 = input, 3 = output) and 6 edges, each holding one of the five operations in `OPS`. The
hyperparameters `x0`..`x5` name the edges in the order of the official architecture string
`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`: x0 = 0->1; x1 = 0->2, x2 = 1->2; x3 = 0->3, x4 = 1->3, x5 = 2->3.

Our **index** (not the official NAS-Bench-201 index, whose order follows the benchmark file) reads the six op
indices (positions in `OPS`) as base-5 digits, x0 most significant:
`index = sum(OPS.index(x_k) * 5 ** (5 - k) for k in range(6))`, so index 0 is the all-`none` cell and 15624 the
all-`avg_pool_3x3` cell.

Equivalence classes follow NAS-Bench-201's official rule (`equivalence_key`): two cells are equivalent when they
compute the same expression once `none` edges give zero and `skip_connect` passes its input on. That gives the
6,466 unique architectures of the NAS-Bench-201 paper, of which 6,461 are working (some path of non-`none` edges
joins input and output) and 5 degenerate. A class is represented by its smallest index. Our project's tables train
one representative per class and answer every member of a class with the same values.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from numbers import Integral
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import numpy as np

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
HP_NAMES: tuple[str, ...] = tuple(f"x{k}" for k in range(len(EDGES)))
NUM_NODES = 4
INPUT_NODE, OUTPUT_NODE = 0, 3
NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625

Arch = Union[str, int, Mapping[str, str], Sequence[str]]
"""An architecture: the official string, our integer index, a config dict with x0..x5, or six op names."""

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EDGE_POS = {edge: k for k, edge in enumerate(EDGES)}
_PLACES = tuple(len(OPS) ** (len(EDGES) - 1 - k) for k in range(len(EDGES)))
_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class ArchitectureError(ValueError):
    """A NAS-Bench-201 architecture (string, config, index or op list) that is not valid."""


# ---------------------------------------------------------------- ops tuple <-> everything

def _check_ops(ops: Sequence[str]) -> tuple[str, ...]:
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise ArchitectureError(f"The op list {list(ops)!r} has {len(ops)} entries; a cell needs exactly 6.")
    for op in ops:
        if not isinstance(op, str) or op not in _OP_INDEX:
            raise ArchitectureError(f"Unknown operation {op!r}; accepted operations are {', '.join(OPS)}.")
    return ops


def ops_to_string(ops: Sequence[str]) -> str:
    """The official architecture string of the six ops given in x0..x5 order."""
    o = _check_ops(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def string_to_ops(arch_str: str) -> tuple[str, ...]:
    """The six ops (x0..x5 order) of an official architecture string; strict about its format."""
    if not isinstance(arch_str, str):
        raise ArchitectureError(f"The architecture {arch_str!r} is not a string; expected one like {_EXAMPLE!r}.")
    nodes = arch_str.split("+")
    bad = f"Malformed architecture string {arch_str!r}; expected the form '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'."
    if len(nodes) != NUM_NODES - 1:
        raise ArchitectureError(bad)
    ops = []
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or node[0] != "|" or node[-1] != "|":
            raise ArchitectureError(bad)
        inputs = node[1:-1].split("|")
        if len(inputs) != j:
            raise ArchitectureError(bad)
        for i, item in enumerate(inputs):
            op, sep, src = item.partition("~")
            if not sep or src != str(i):
                raise ArchitectureError(bad)
            if op not in _OP_INDEX:
                raise ArchitectureError(
                    f"Unknown operation {op!r} in architecture string {arch_str!r}; "
                    f"accepted operations are {', '.join(OPS)}.")
            ops.append(op)
    # the string lists node 1's, node 2's, node 3's inputs: that is already x0..x5 order
    return tuple(ops)


def ops_to_index(ops: Sequence[str]) -> int:
    """Our base-5 index of the six ops (x0 most significant)."""
    o = _check_ops(ops)
    return sum(_OP_INDEX[op] * place for op, place in zip(o, _PLACES))


def index_to_ops(index: int) -> tuple[str, ...]:
    """The six ops (x0..x5 order) of our index."""
    index = _check_index(index)
    return tuple(OPS[(index // place) % len(OPS)] for place in _PLACES)


def _check_index(index: object) -> int:
    if isinstance(index, bool) or not isinstance(index, Integral):
        raise ArchitectureError(f"The architecture index {index!r} is not an integer; accepted are 0 to 15624.")
    index = int(index)
    if not 0 <= index < NUM_ARCHS:
        raise ArchitectureError(f"The architecture index {index} is out of range; accepted are 0 to 15624.")
    return index


def config_to_ops(config: Mapping[str, str]) -> tuple[str, ...]:
    """The six ops of a config dict holding x0..x5 (other keys, e.g. `epochs`, are ignored)."""
    if not isinstance(config, Mapping):
        raise ArchitectureError(f"The config {config!r} is not a dict; expected keys {', '.join(HP_NAMES)}.")
    missing = [name for name in HP_NAMES if name not in config]
    if missing:
        raise ArchitectureError(
            f"The config {dict(config)!r} lacks {', '.join(missing)}; it needs keys {', '.join(HP_NAMES)}.")
    ops = tuple(config[name] for name in HP_NAMES)
    for name, op in zip(HP_NAMES, ops):
        if not isinstance(op, str) or op not in _OP_INDEX:
            raise ArchitectureError(
                f"Unknown operation {op!r} for {name}; accepted operations are {', '.join(OPS)}.")
    return ops


def ops_to_config(ops: Sequence[str]) -> dict[str, str]:
    """The config dict {x0: op, ..., x5: op} of six ops."""
    return dict(zip(HP_NAMES, _check_ops(ops)))


# ---------------------------------------------------------------- public conversions

@lru_cache(maxsize=1)
def _string_to_index_table() -> dict[str, int]:
    return {index_to_string(i): i for i in range(NUM_ARCHS)}


@lru_cache(maxsize=None, typed=True)  # typed: True and 1.0 must not hit the cached entry of 1
def index_to_string(index: int) -> str:
    """The official architecture string of our index."""
    return ops_to_string(index_to_ops(index))


def string_to_index(arch_str: str) -> int:
    """Our index of an official architecture string."""
    index = _string_to_index_table().get(arch_str) if isinstance(arch_str, str) else None
    if index is None:
        return ops_to_index(string_to_ops(arch_str))  # raises the clear error (a valid string is always found)
    return index


def string_to_config(arch_str: str) -> dict[str, str]:
    """The config dict (x0..x5) of an official architecture string."""
    return ops_to_config(string_to_ops(arch_str))


def config_to_string(config: Mapping[str, str]) -> str:
    """The official architecture string of a config dict."""
    return ops_to_string(config_to_ops(config))


def config_to_index(config: Mapping[str, str]) -> int:
    """Our index of a config dict (checked only when it is not a valid one: the simulator asks for every trial)."""
    try:
        return sum(_OP_INDEX[config[name]] * place for name, place in zip(HP_NAMES, _PLACES))
    except (KeyError, TypeError):  # a missing key or op, an unhashable op, not a dict: the checks below say which
        return ops_to_index(config_to_ops(config))


def index_to_config(index: int) -> dict[str, str]:
    """The config dict (x0..x5) of our index."""
    return ops_to_config(index_to_ops(index))


def to_ops(arch: Arch) -> tuple[str, ...]:
    """The six ops (x0..x5 order) of an architecture given as string, index, config dict or op list."""
    if isinstance(arch, str):
        return string_to_ops(arch)
    if isinstance(arch, Mapping):
        return config_to_ops(arch)
    if isinstance(arch, Integral) and not isinstance(arch, bool):
        return index_to_ops(arch)
    if isinstance(arch, (tuple, list)):
        return _check_ops(arch)
    raise ArchitectureError(
        f"The architecture {arch!r} is of type {type(arch).__name__}; give an architecture string, "
        f"an index in [0, 15625), a config dict with x0..x5 or a list of six op names.")


def to_index(arch: Arch) -> int:
    """Our index of an architecture given as string, index, config dict or op list."""
    if type(arch) is int and 0 <= arch < NUM_ARCHS:  # fast path for table lookups
        return arch
    if isinstance(arch, str):
        return string_to_index(arch)
    if isinstance(arch, Integral) and not isinstance(arch, bool):
        return _check_index(arch)
    return ops_to_index(to_ops(arch))


def to_string(arch: Arch) -> str:
    """The official architecture string of an architecture given as string, index, config dict or op list."""
    if isinstance(arch, Integral) and not isinstance(arch, bool):
        return index_to_string(_check_index(arch))
    return ops_to_string(to_ops(arch))


def to_config(arch: Arch) -> dict[str, str]:
    """The config dict (x0..x5) of an architecture given as string, index, config dict or op list."""
    return ops_to_config(to_ops(arch))


def all_strings() -> list[str]:
    """The 15,625 architecture strings, in index order."""
    return [index_to_string(i) for i in range(NUM_ARCHS)]


# ---------------------------------------------------------------- the official equivalence rule (the table's unit)

_ZERO = "#"


def equivalence_key(arch: Arch) -> str:
    """The official NAS-Bench-201 key of a cell's function (its `to_unique_str(consider_zero=True)` rule).

    Node strings are built in topological order: an edge contributes `#` (zero) when its op is `none` or its source
    node is exactly `#`, its source's string unchanged for `skip_connect`, else `(source)@op`; a node's string is
    its contributions sorted and joined with `+`. The output node's string is the key: 6,466 distinct keys.
    """
    ops = to_ops(arch)
    nodes = {INPUT_NODE: str(INPUT_NODE)}
    for v in range(INPUT_NODE + 1, NUM_NODES):
        terms = []
        for (u, target), op in zip(EDGES, ops):
            if target != v:
                continue
            if op == "none" or nodes[u] == _ZERO:
                terms.append(_ZERO)
            elif op == "skip_connect":
                terms.append(nodes[u])
            else:
                terms.append(f"({nodes[u]})@{op}")
        nodes[v] = "+".join(sorted(terms))
    return nodes[OUTPUT_NODE]


def is_working(arch: Arch) -> bool:
    """Whether some path of non-`none` edges joins the input to the output (else the cell's output carries no
    information about its input)."""
    return str(INPUT_NODE) in equivalence_key(arch)


def working_mask(indices: Sequence[int]) -> np.ndarray:
    """`is_working` of many of our indices at once: a path of non-`none` edges 0->3, 0->1->3, 0->2->3 or
    0->1->2->3 (a table's rows, where one call per row would cost a launch a noticeable fraction of a second)."""
    import numpy as np

    idx = np.asarray(indices, dtype=np.int64)
    on = [(idx // place) % len(OPS) != OPS.index("none") for place in _PLACES]  # edge k carries something
    e = dict(zip(EDGES, on))
    return (e[0, 3] | (e[0, 1] & e[1, 3]) | (e[0, 2] & e[2, 3]) | (e[0, 1] & e[1, 2] & e[2, 3]))


@lru_cache(maxsize=1)
def _official() -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    by_key: dict[str, list[int]] = {}
    for index in range(NUM_ARCHS):
        by_key.setdefault(equivalence_key(index), []).append(index)
    rep_of = [0] * NUM_ARCHS
    classes: dict[int, tuple[int, ...]] = {}
    for members in by_key.values():
        classes[members[0]] = tuple(members)
        for m in members:
            rep_of[m] = members[0]
    return tuple(rep_of), classes


def class_of(arch: Arch) -> int:
    """The representative (smallest index) of the official equivalence class of `arch`."""
    return _official()[0][to_index(arch)]


def class_representatives() -> list[int]:
    """Our indices of the 6,466 class representatives, ascending."""
    return sorted(_official()[1])


def class_members(rep: int) -> tuple[int, ...]:
    """The cells of the class whose representative is `rep`, ascending."""
    return _official()[1][rep]
