"""The NAS-Bench-201 cell: a torch module that is also the networkx DiGraph of its nodes and edges.

Nodes 0..3 (0 = input, 3 = output); the six edges (0,1), (0,2), (1,2), (0,3), (1,3), (2,3), in the order of the
hyperparameters x0..x5, each hold a `CategoricalOp` both as the edge attribute `op` and as a registered submodule
in `edge_ops` (keyed "u->v"). Each node sums its incoming edges; the output is node 3.
"""
from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from .encoding import EDGES, INPUT_NODE, NUM_NODES, OUTPUT_NODE, Arch, ops_to_config, ops_to_index, ops_to_string, \
    to_ops
from .ops import CategoricalOp


def edge_key(u: int, v: int) -> str:
    """The `edge_ops` key of edge u -> v."""
    return f"{u}->{v}"


class NB201Cell(nn.Module, nx.DiGraph):
    """A NAS-Bench-201 cell on `channels` channels; keeps the input shape (N, C, H, W).

    `NB201Cell()` without an architecture is an empty graph with no ops: networkx builds such instances when it
    copies or views a cell; use `to_networkx()` for a plain graph with op names.
    """

    def __init__(self, arch: Arch | None = None, channels: int = 16, groups: int = 1) -> None:
        nn.Module.__init__(self)
        nx.DiGraph.__init__(self)
        self.channels = int(channels)
        self.edge_ops = nn.ModuleDict()
        self._ops: tuple[str, ...] = ()
        self._plan: tuple[tuple[int, tuple[tuple[int, str], ...]], ...] = ()
        if arch is None:
            return
        self._ops = to_ops(arch)
        self.add_nodes_from(range(NUM_NODES))
        for (u, v), op_name in zip(EDGES, self._ops):
            module = CategoricalOp(op_name, self.channels, groups)
            self.edge_ops[edge_key(u, v)] = module
            self.add_edge(u, v, op=module)
        self._plan = self._forward_plan()

    def _forward_plan(self) -> tuple[tuple[int, tuple[tuple[int, str], ...]], ...]:
        """For each node that the output depends on, in order: its non-`none` inputs (source, edge key)."""
        needed = {OUTPUT_NODE}
        for v in range(OUTPUT_NODE, INPUT_NODE, -1):
            if v in needed:
                needed.update(u for u, _, op in self.in_edges(v, data="op") if not op.is_zero)
        plan = []
        for v in range(INPUT_NODE + 1, NUM_NODES):
            if v in needed:
                inputs = tuple((u, edge_key(u, v)) for u, _, op in sorted(self.in_edges(v, data="op"))
                               if not op.is_zero)
                plan.append((v, inputs))
        return tuple(plan)

    @property
    def ops(self) -> tuple[str, ...]:
        """The op names on the edges, x0..x5 order."""
        return self._ops

    @property
    def arch_string(self) -> str:
        """The official architecture string."""
        return ops_to_string(self._ops)

    @property
    def config(self) -> dict[str, str]:
        """The config dict x0..x5."""
        return ops_to_config(self._ops)

    @property
    def index(self) -> int:
        """Our base-5 architecture index (see `encoding`)."""
        return ops_to_index(self._ops)

    def to_networkx(self) -> nx.DiGraph:
        """A plain DiGraph with the same nodes and edges and the op name as edge attribute `op`."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from((u, v, {"op": op.op_name}) for u, v, op in self.edges(data="op"))
        return graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = {INPUT_NODE: x}
        for v, inputs in self._plan:
            out = None
            for u, key in inputs:
                y = self.edge_ops[key](nodes[u])
                out = y if out is None else out + y
            nodes[v] = torch.zeros_like(x) if out is None else out
        return nodes[OUTPUT_NODE] if OUTPUT_NODE in nodes else torch.zeros_like(x)

    def extra_repr(self) -> str:
        return f"{self.arch_string if self._ops else 'empty'}, C={self.channels}"

    __str__ = nn.Module.__repr__
