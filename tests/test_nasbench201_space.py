"""NAS-Bench-201 search space: operations, cell graph, macro model, encodings, equivalence classes, config space."""
from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import nn

from benchmarks.nasbench201 import encoding as enc
from benchmarks.nasbench201.cell import NB201Cell, edge_key
from benchmarks.nasbench201.encoding import OPS, ArchitectureError
from benchmarks.nasbench201.model import build_model
from benchmarks.training import count_parameters
from benchmarks.nasbench201.ops import CategoricalOp

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: one thread is faster, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def arch(**ops: str) -> str:
    """An architecture string with the given edges (x0=..., x5=...) and `none` elsewhere."""
    return enc.ops_to_string([ops.get(f"x{k}", "none") for k in range(6)])


# ---------------------------------------------------------------- operations, cell, model

@pytest.mark.parametrize("channels", [4, 16])
@pytest.mark.parametrize("op_name", OPS)
def test_every_op_keeps_shape(op_name, channels):
    torch.manual_seed(0)
    x = torch.randn(2, channels, 9, 9)
    op = CategoricalOp(op_name, channels)
    y = op(x)
    assert y.shape == x.shape
    if op_name == "none":
        assert torch.count_nonzero(y) == 0
    if op_name == "skip_connect":
        assert torch.equal(y, x)


def test_unknown_op_is_refused():
    with pytest.raises(ArchitectureError, match="max_pool_3x3"):
        CategoricalOp("max_pool_3x3", 4)


def test_cell_is_module_and_graph_with_official_nodes_and_edges():
    cell = NB201Cell(EXAMPLE, channels=4)
    assert isinstance(cell, nn.Module) and isinstance(cell, nx.DiGraph)
    assert sorted(cell.nodes) == [0, 1, 2, 3]
    assert set(cell.edges) == {(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)}
    for (u, v), op_name in zip(enc.EDGES, enc.string_to_ops(EXAMPLE)):
        op = cell.edges[u, v]["op"]
        assert isinstance(op, CategoricalOp) and op.op_name == op_name
        assert cell.edge_ops[edge_key(u, v)] is op  # registered as a submodule too
    assert cell.arch_string == EXAMPLE and cell.index == enc.to_index(EXAMPLE)
    assert nx.is_directed_acyclic_graph(cell)
    assert list(nx.topological_sort(cell)) == [0, 1, 2, 3]
    # three conv 3x3 on 4 channels: 3 * (4*4*9 + 2*4) parameters
    assert sum(p.numel() for p in cell.parameters()) == 3 * (4 * 4 * 9 + 8)
    plain = cell.to_networkx()
    assert type(plain) is nx.DiGraph and plain.edges[1, 2]["op"] == "avg_pool_3x3"
    assert nx.is_isomorphic(cell.copy(), plain)


@pytest.mark.parametrize("channels", [4, 16])
def test_cell_keeps_shape_and_sums_inputs(channels):
    x = torch.randn(2, channels, 8, 8)
    assert NB201Cell(EXAMPLE, channels)(x).shape == x.shape
    assert torch.equal(NB201Cell(arch(x3="skip_connect"), channels)(x), x)
    assert torch.equal(NB201Cell(arch(x0="skip_connect", x4="skip_connect"), channels)(x), x)
    two_paths = NB201Cell(arch(x3="skip_connect", x0="skip_connect", x4="skip_connect"), channels)
    assert torch.allclose(two_paths(x), 2 * x)
    zero = NB201Cell(arch(x0="nor_conv_3x3", x2="avg_pool_3x3"), channels)  # no path reaches node 3
    assert torch.count_nonzero(zero(x)) == 0


def test_cell_pools_without_counting_padding():
    x = torch.ones(1, 4, 5, 5)
    assert torch.allclose(NB201Cell(arch(x3="avg_pool_3x3"), 4)(x), x)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28), (2, 1, 16, 16)])
def test_model_outputs_logits(shape):
    torch.manual_seed(0)
    model = build_model(EXAMPLE, channels=4, cells_per_stage=1, num_classes=10, in_channels=shape[1])
    out = model(torch.randn(*shape))
    assert out.shape == (shape[0], 10)
    assert torch.isfinite(out).all()


def test_model_accepts_string_index_config_and_counts_official_parameters():
    # Official NAS-Bench-201 CIFAR-10 sizes (C=16, N=5): 0.073306 M without parametric ops, 1.531546 M all conv 3x3.
    assert count_parameters(build_model(0)) == 73306
    assert count_parameters(build_model(enc.to_config(["avg_pool_3x3"] * 6))) == 73306
    assert count_parameters(build_model(arch(**{f"x{k}": "nor_conv_3x3" for k in range(6)}))) == 1531546
    small = build_model(EXAMPLE, channels=4, cells_per_stage=1, num_classes=3, in_channels=1)
    assert small.classifier.out_features == 3 and len(small.cells) == 5  # 3 cells + 2 residual blocks


def test_grouped_model_is_independent_networks_side_by_side():
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(build_model(EXAMPLE, channels=4, cells_per_stage=1, in_channels=1))
    grouped = build_model(EXAMPLE, channels=4, cells_per_stage=1, in_channels=1, groups=3)
    grouped.load_members(members)
    inputs = [torch.randn(5, 1, 12, 12) for _ in members]
    out = grouped(torch.cat(inputs, dim=1))
    assert out.shape == (5, 3, 10)
    for k, (member, x) in enumerate(zip(members, inputs)):
        assert torch.allclose(out[:, k], member(x), atol=1e-5)
    # a loss on one group moves only that group's parameters
    out[:, 1].sum().backward()
    weight = grouped.stem[0].weight.grad.view(3, -1)
    assert weight[0].abs().sum() == 0 and weight[2].abs().sum() == 0 and weight[1].abs().sum() > 0


def test_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="channels=0"):
        build_model(EXAMPLE, channels=0)
    with pytest.raises(ArchitectureError):
        build_model("|bad|")


# ---------------------------------------------------------------- encodings

def test_all_architectures_round_trip_through_config_and_index():
    strings = enc.all_strings()
    assert len(strings) == len(set(strings)) == 15625
    for index, string in enumerate(strings):
        config = enc.string_to_config(string)
        assert list(config) == ["x0", "x1", "x2", "x3", "x4", "x5"]
        assert enc.config_to_string(config) == string
        assert enc.config_to_index(config) == index == enc.string_to_index(string)
        assert enc.index_to_config(index) == config
    assert enc.string_to_ops(strings[0]) == ("none",) * 6
    assert enc.string_to_ops(strings[-1]) == ("avg_pool_3x3",) * 6


def test_index_is_base5_with_x0_most_significant():
    # EXAMPLE ops: conv3 conv3 pool skip conv3 skip -> digits 3 3 4 1 3 1
    assert enc.to_index(EXAMPLE) == ((((3 * 5 + 3) * 5 + 4) * 5 + 1) * 5 + 3) * 5 + 1
    assert enc.to_index(arch(x5="skip_connect")) == 1
    assert enc.to_index(arch(x0="skip_connect")) == 5 ** 5
    assert enc.to_string({"x0": "none", "x1": "none", "x2": "none", "x3": "none", "x4": "none",
                          "x5": "skip_connect", "epochs": 3}) == arch(x5="skip_connect")


@pytest.mark.parametrize("bad", [
    "", "|none~0|", "|none~0|+|none~0|none~1|+|none~0|none~1|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2",
    "|none~0|+|none~0||none~1|+|none~0|none~1|none~2|",
    "|none|+|none~0|none~1|+|none~0|none~1|none~2|",
    " |none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
])
def test_malformed_strings_give_a_clear_error(bad):
    with pytest.raises(ArchitectureError) as info:
        enc.to_index(bad)
    message = str(info.value)
    assert message.startswith("Malformed architecture string") and repr(bad) in message
    assert message.count(".") <= 2 and "expected the form" in message
    assert isinstance(info.value, ValueError)


def test_unknown_op_index_and_config_errors_name_the_value():
    with pytest.raises(ArchitectureError, match="Unknown operation 'conv_5x5'.*accepted operations are none"):
        enc.to_index(EXAMPLE.replace("avg_pool_3x3", "conv_5x5"))
    for bad in (-1, 15625, 10 ** 9):
        with pytest.raises(ArchitectureError, match=f"index {bad} is out of range; accepted are 0 to 15624"):
            enc.to_string(bad)
    for bad in (1.5, True):
        with pytest.raises(ArchitectureError, match="not an integer|of type"):
            enc.to_string(bad)
    with pytest.raises(ArchitectureError, match="lacks x5"):
        enc.to_index({f"x{k}": "none" for k in range(5)})
    with pytest.raises(ArchitectureError, match="Unknown operation 'conv' for x2"):
        enc.to_index({**enc.index_to_config(0), "x2": "conv"})
    with pytest.raises(ArchitectureError, match="exactly 6"):
        enc.to_index(["none"] * 5)


# ---------------------------------------------------------------- the official equivalence rule

def test_official_rule_gives_6466_classes_that_partition_the_space():
    reps = enc.class_representatives()
    assert len(reps) == 6466
    members = [m for rep in reps for m in enc.class_members(rep)]
    assert sorted(members) == list(range(enc.NUM_ARCHS))
    assert all(enc.class_of(m) == rep == min(enc.class_members(rep)) for rep in reps[::50]
               for m in enc.class_members(rep))


def test_sums_in_any_order_and_skip_chains_are_one_class():
    # node 3 sums a conv and a pool of the input, whichever edge carries which
    a = arch(x0="nor_conv_3x3", x3="avg_pool_3x3", x4="skip_connect")
    b = arch(x0="avg_pool_3x3", x3="nor_conv_3x3", x4="skip_connect")
    assert a != b and enc.class_of(a) == enc.class_of(b) <= min(enc.to_index(a), enc.to_index(b))
    # skip_connect is the identity: a conv reached through a skip chain equals the direct conv
    assert enc.class_of(arch(x0="skip_connect", x4="nor_conv_3x3")) == enc.class_of(arch(x3="nor_conv_3x3"))
    # an op hanging off a node that reaches nowhere changes nothing; `none` edges add zeros
    assert enc.class_of(arch(x3="nor_conv_3x3", x0="avg_pool_3x3")) == enc.class_of(arch(x3="nor_conv_3x3"))


def test_different_functions_stay_apart():
    conv_then_pool = arch(x0="nor_conv_3x3", x2="avg_pool_3x3", x5="skip_connect")
    pool_then_conv = arch(x0="avg_pool_3x3", x2="nor_conv_3x3", x5="skip_connect")
    assert enc.class_of(conv_then_pool) != enc.class_of(pool_then_conv)
    assert enc.class_of(arch(x3="nor_conv_3x3")) != enc.class_of(arch(x3="nor_conv_1x1"))


def test_working_cells_are_those_with_a_path_and_never_share_a_class_with_degenerate_ones():
    working = []
    for index in range(enc.NUM_ARCHS):
        graph = nx.DiGraph([edge for edge, op in zip(enc.EDGES, enc.index_to_ops(index)) if op != "none"])
        has_path = graph.has_node(0) and graph.has_node(3) and nx.has_path(graph, 0, 3)
        assert enc.is_working(index) == has_path
        working.append(has_path)
    assert sum(working) == 15284
    assert enc.working_mask(range(enc.NUM_ARCHS)).tolist() == working  # the vectorised form
    for rep in enc.class_representatives():
        assert len({working[m] for m in enc.class_members(rep)}) == 1
    assert sum(not enc.is_working(rep) for rep in enc.class_representatives()) == 5
