"""The MNIST convnet's efficient blocks (depthwise-separable convolutions, squeeze-and-excitation), their space and
flags: shapes and parameter counts against hand-computed numbers, and today's convnet left unchanged."""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import conftest
from benchmarks.mnist import efficient_space, space
from benchmarks.mnist.blocks import ConvBlock, SeparableConv2d, SqueezeExcitation
from benchmarks.mnist.model import build_convnet
from benchmarks.training import count_parameters
from conftest import REPO_ROOT, reports

SCRIPT = REPO_ROOT / "training_scripts" / "mnist_convnet.py"


def _load_script_module():
    spec = importlib.util.spec_from_file_location("mnist_convnet_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_separable_conv_shape_and_parameters() -> None:
    conv = SeparableConv2d(6, 10)
    assert conv(torch.randn(2, 6, 14, 14)).shape == (2, 10, 14, 14)
    # depthwise 3x3, one filter per input channel, no bias; then pointwise 1x1 with bias
    assert count_parameters(conv) == 6 * 3 * 3 + (6 * 10 + 10)
    standard = nn.Conv2d(6, 10, kernel_size=3, padding=1)
    assert count_parameters(standard) == 6 * 10 * 3 * 3 + 10 > count_parameters(conv)


def test_separable_conv_is_a_standard_conv_of_rank_one_per_channel() -> None:
    conv = SeparableConv2d(3, 4)
    depthwise, pointwise = conv[0], conv[1]
    # the equivalent standard kernel: W[o, i] = pointwise[o, i] * depthwise[i]
    weight = pointwise.weight[:, :, 0, 0, None, None] * depthwise.weight[:, 0][None]
    x = torch.randn(2, 3, 9, 9)
    expected = nn.functional.conv2d(x, weight, pointwise.bias, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-5)


@pytest.mark.parametrize("channels, reduction, hidden", [(16, 4, 4), (32, 8, 4), (6, 4, 1), (4, 16, 1)])
def test_squeeze_excitation_shape_and_parameters(channels: int, reduction: int, hidden: int) -> None:
    se = SqueezeExcitation(channels, reduction)
    x = torch.randn(3, channels, 7, 7)
    out = se(x)
    assert out.shape == x.shape
    # squeeze: channels -> hidden (weights and biases); excite: hidden -> channels
    assert count_parameters(se) == (channels * hidden + hidden) + (hidden * channels + channels)
    # a gate in (0, 1) per example and channel, the same at every position
    gate = out / x
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)
    assert ((gate > 0) & (gate < 1)).all()


def test_squeeze_excitation_and_block_reject_bad_ratios() -> None:
    with pytest.raises(ValueError, match="reduction"):
        SqueezeExcitation(8, 0)
    with pytest.raises(ValueError, match="se_reduction"):
        ConvBlock(se_reduction=0)


@pytest.mark.parametrize("n_filters", [[4], [16, 32], [5, 7, 9]])
def test_default_blocks_build_todays_convnet(n_filters: list[int]) -> None:
    n = len(n_filters)
    torch.manual_seed(3)
    today = build_convnet(n, n_filters, 0.1)
    torch.manual_seed(3)
    explicit = build_convnet(n, n_filters, 0.1, [ConvBlock(separable=False, se_reduction=None)] * n)
    # Sequential of [Conv2d, ReLU, MaxPool2d] per layer, then Dropout, Flatten, Linear, LogSoftmax: the same keys
    # (so old checkpoints load) and, from the same seed, the same weights
    conv_keys = [f"{3 * i}.{p}" for i in range(n) for p in ("weight", "bias")]
    linear = 3 * n + 2
    assert list(today.state_dict()) == conv_keys + [f"{linear}.weight", f"{linear}.bias"]
    assert list(explicit.state_dict()) == list(today.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(today.state_dict().values(), explicit.state_dict().values()))


def test_todays_default_config_parameter_count() -> None:
    model = build_convnet(2, [16, 32], 0.1)
    # conv 1->16, conv 16->32 (3x3 with bias), 28 -> 14 -> 7 after two poolings, Linear(32*7*7 -> 10)
    assert count_parameters(model) == (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 7 * 7 * 10 + 10)


EFFICIENT_CASES = [
    # 3 layers 8, 16, 32: standard + SE(2), separable, separable + SE(8); 28 -> 14 -> 7 -> 3 after pooling
    (3, [8, 16, 32], [ConvBlock(False, 2), ConvBlock(True, None), ConvBlock(True, 8)],
     (1 * 8 * 9 + 8) + (8 * 4 + 4 + 4 * 8 + 8)          # conv 1->8; SE hidden 8 // 2 = 4
     + (8 * 9 + 8 * 16 + 16)                            # separable 8->16
     + (16 * 9 + 16 * 32 + 32) + (32 * 4 + 4 + 4 * 32 + 32)  # separable 16->32; SE hidden 32 // 8 = 4
     + (32 * 3 * 3 * 10 + 10)),                         # Linear
    # 1 separable layer of 6 filters with SE(16): hidden max(1, 6 // 16) = 1; 28 -> 14
    (1, [6], [ConvBlock(True, 16)],
     (1 * 9 + 1 * 6 + 6) + (6 * 1 + 1 + 1 * 6 + 6) + (6 * 14 * 14 * 10 + 10)),
    # 2 layers 12, 24: separable + SE(4), standard; 28 -> 14 -> 7
    (2, [12, 24], [ConvBlock(True, 4), ConvBlock(False, None)],
     (1 * 9 + 1 * 12 + 12) + (12 * 3 + 3 + 3 * 12 + 12) + (12 * 24 * 9 + 24) + (24 * 7 * 7 * 10 + 10)),
]


@pytest.mark.parametrize("n_layers, n_filters, blocks, expected", EFFICIENT_CASES)
def test_efficient_convnet_shapes_and_parameter_count(n_layers: int, n_filters: list[int], blocks: list[ConvBlock],
                                                      expected: int) -> None:
    model = build_convnet(n_layers, n_filters, 0.2, blocks).eval()
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(5), atol=1e-5)
    assert count_parameters(model) == expected
    assert sum(isinstance(m, SeparableConv2d) for m in model.modules()) == sum(b.separable for b in blocks)
    assert sum(isinstance(m, SqueezeExcitation) for m in model.modules()) == sum(
        b.se_reduction is not None for b in blocks)


def test_convnet_rejects_too_few_blocks() -> None:
    with pytest.raises(ValueError, match="blocks"):
        build_convnet(2, [4, 4], 0.0, [ConvBlock()])


def test_efficient_space_extends_todays_space_unchanged() -> None:
    base, efficient = space.config_space(), efficient_space.config_space()
    assert set(base) == set(space.DEFAULT_CONFIG)  # today's space: no block keys
    block_keys = set(efficient_space.CONV_TYPE_KEYS + efficient_space.SE_KEYS + efficient_space.SE_REDUCTION_KEYS)
    assert set(efficient) == set(base) | block_keys and len(block_keys) == 9
    for key in base:
        assert repr(efficient[key]) == repr(base[key])
    for key in efficient_space.CONV_TYPE_KEYS:
        assert efficient[key].categories == ["standard", "separable"]
    for key in efficient_space.SE_KEYS:
        assert efficient[key].categories == ["off", "on"]
    for key in efficient_space.SE_REDUCTION_KEYS:
        assert efficient[key].categories == [2, 4, 8, 16]
    assert set(efficient_space.DEFAULT_CONFIG) == set(efficient)
    assert {k: efficient_space.DEFAULT_CONFIG[k] for k in base} == space.DEFAULT_CONFIG


def test_efficient_configspace_conditions_and_defaults() -> None:
    cs = efficient_space.conditional_configspace(seed=2)
    inactive_by_default = {"n_filters_3", "conv_type_3", "se_3", "se_reduction_1", "se_reduction_2", "se_reduction_3"}
    assert dict(cs.get_default_configuration()) == {
        k: v for k, v in efficient_space.DEFAULT_CONFIG.items() if k not in inactive_by_default}
    seen = set()
    for config in cs.sample_configuration(300):
        config = dict(config)
        n = config["n_conv_layers"]
        for layer in (1, 2, 3):
            exists = layer <= n
            assert (f"conv_type_{layer}" in config) == exists and (f"se_{layer}" in config) == exists
            assert (f"se_reduction_{layer}" in config) == (exists and config[f"se_{layer}"] == "on")
            if exists:
                seen.add((config[f"conv_type_{layer}"], config[f"se_{layer}"]))
        blocks = efficient_space.active_blocks(config)
        assert len(blocks) == n
        for layer, (separable, reduction) in enumerate(blocks, start=1):
            assert separable == (config[f"conv_type_{layer}"] == "separable")
            assert reduction == config.get(f"se_reduction_{layer}")
    assert seen == {(c, s) for c in ("standard", "separable") for s in ("off", "on")}


def test_active_blocks_ignore_absent_layers_and_ratios_without_se() -> None:
    config = {"n_conv_layers": 2, "conv_type_1": "separable", "se_1": "off", "se_reduction_1": 8,
              "conv_type_2": "standard", "se_2": "on", "se_reduction_2": 2, "conv_type_3": "separable", "se_3": "on"}
    assert efficient_space.active_blocks(config) == [(True, None), (False, 2)]
    assert efficient_space.active_blocks({}) == [(False, None), (False, None)]  # the default: two plain layers


def test_block_flag_defaults_and_errors(capsys) -> None:
    script = _load_script_module()
    args = vars(script.parse_args([]))
    assert {k: args[k] for k in efficient_space.DEFAULT_CONFIG} == efficient_space.DEFAULT_CONFIG
    # the ratio of a layer without SE, or of an absent layer, is ignored even when out of range
    assert script.parse_args(["--se_1", "off", "--se_reduction_1", "0"]).se_reduction_1 == 0
    assert script.parse_args(["--n_conv_layers", "1", "--se_2", "on", "--se_reduction_2", "0"]).se_reduction_2 == 0
    for flags, bad in [(["--se_1", "on", "--se_reduction_1", "0"], "--se_reduction_1 0"),
                       (["--n_conv_layers", "3", "--se_3", "on", "--se_reduction_3", "-2"], "--se_reduction_3 -2"),
                       (["--conv_type_2", "dilated"], "'dilated'"),
                       (["--se_1", "yes"], "'yes'")]:
        with pytest.raises(SystemExit) as exit_info:
            script.parse_args(flags)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and bad in err and "Traceback" not in err, flags


@pytest.mark.slow
def test_script_reports_parameter_count_of_efficient_config(synthetic_mnist_root, tmp_path) -> None:
    flags = ["--n_conv_layers", "2", "--n_filters_1", "8", "--n_filters_2", "12", "--conv_type_2", "separable",
             "--se_1", "on", "--se_reduction_1", "2", "--se_2", "on", "--se_reduction_2", "4", "--batch_size", "32"]
    result = conftest.run_script(SCRIPT, "--dataset_path", str(synthetic_mnist_root), "--epochs", "2", *flags,
                                 cwd=tmp_path)
    metrics = reports(result)
    assert [m["epoch"] for m in metrics] == [1, 2]
    # conv 1->8 + SE(8, 2): hidden 4; separable 8->12 + SE(12, 4): hidden 3; 28 -> 14 -> 7; Linear(12*7*7 -> 10)
    expected = ((1 * 8 * 9 + 8) + (8 * 4 + 4 + 4 * 8 + 8) + (8 * 9 + 8 * 12 + 12) + (12 * 3 + 3 + 3 * 12 + 12)
                + (12 * 7 * 7 * 10 + 10))
    assert all(m["params"] == expected for m in metrics)
    assert metrics[-1]["valid_error"] < 0.9  # the synthetic data are learnable with these blocks too
