"""Tests for bench/nn/backbones.py: sizes, shapes, the fc/features split and the spec's block details."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import UsageError
from bench.nn.backbones import BACKBONES, VGG19_STAGES, PreActBlockDM, ShortcutA, build_backbone

NAMES = ["resnet32", "preact_resnet18", "wrn28_10", "small_cnn", "mlp", "vgg19_bn"]
# backbones that work on any image size (vgg19_bn needs >= 32, tested on its own below)
ANY_SIZE = [n for n in NAMES if n != "vgg19_bn"]
# (in_channels, image_size) combinations every ANY_SIZE backbone must support.
SHAPES = [(1, 8), (1, 28), (3, 32)]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_names_and_descriptions() -> None:
    assert sorted(BACKBONES.names()) == sorted(NAMES)
    for name in NAMES:
        desc = BACKBONES.describe(name)
        assert desc and "\n" not in desc


# Exact counts measured for C=10; the approximate figures come from specs/methods.md §1.
@pytest.mark.parametrize(
    "name,channels,size,exact,approx",
    [
        ("resnet32", 3, 32, 464_154, 464_000),
        ("preact_resnet18", 3, 32, 11_171_274, 11_170_000),
        ("wrn28_10", 3, 32, 36_479_194, 36_480_000),
        ("mlp", 1, 28, 269_322, 269_000),
        ("small_cnn", 1, 28, 421_642, None),
        ("vgg19_bn", 3, 64, 20_040_522, 20_040_000),  # CIFAR VGG-19 size; pooled, so any side
    ],
)
def test_parameter_counts(name: str, channels: int, size: int, exact: int, approx: int | None) -> None:
    count = n_params(build_backbone(name, channels, 10, size))
    assert count == exact
    if approx is not None:
        assert abs(count - approx) / approx < 0.01


@pytest.mark.parametrize("name", ANY_SIZE)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_shapes_and_fc_features_split(name: str, channels: int, size: int) -> None:
    model = build_backbone(name, channels, 7, size).eval()
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (2, 7)
        assert feats.shape == (2, model.fc.in_features)
        torch.testing.assert_close(model.fc(feats), logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet32", "preact_resnet18", "small_cnn", "mlp", "vgg19_bn"])
def test_channels_last_matches_contiguous(name: str) -> None:
    model = build_backbone(name, 3, 10, 32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_train_mode_backward_reaches_every_parameter() -> None:
    model = build_backbone("resnet32", 3, 10, 32).train()
    loss = F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_functional_call_with_replaced_fc() -> None:
    """Meta-learning methods swap the classifier weights via torch.func.functional_call."""
    model = build_backbone("resnet32", 3, 10, 32).eval()
    x = torch.randn(2, 3, 32, 32)
    new = {"fc.weight": torch.zeros_like(model.fc.weight), "fc.bias": torch.ones_like(model.fc.bias)}
    with torch.no_grad():
        out = torch.func.functional_call(model, new, (x,))
    torch.testing.assert_close(out, torch.ones(2, 10))


# ----- ResNet-32 details ---------------------------------------------------------------------


def test_resnet32_option_a_shortcut_is_parameter_free() -> None:
    model = build_backbone("resnet32", 3, 10, 32)
    shortcuts = [m for m in model.modules() if isinstance(m, ShortcutA)]
    assert len(shortcuts) == 2  # first block of stages 2 and 3
    assert all(n_params(s) == 0 and len(list(s.buffers())) == 0 for s in shortcuts)
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())
    # Behaviour: every other pixel, planes//4 zero channels on each side.
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(8)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, :8]) == 0 and torch.count_nonzero(out[:, 24:]) == 0
    # Odd sizes (28 -> 14 -> 7 -> 4) line up with the stride-2 conv output.
    assert ShortcutA(8)(torch.randn(1, 16, 7, 7)).shape == (1, 32, 4, 4)


def test_resnet32_kaiming_init() -> None:
    model = build_backbone("resnet32", 3, 10, 32)
    w = model.layer3[1].conv1.weight  # fan_in = 64 * 9
    assert abs(w.std().item() - math.sqrt(2.0 / (64 * 9))) < 0.05 * math.sqrt(2.0 / (64 * 9))
    bn = model.layer3[1].bn1
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


# ----- PreAct ResNet-18 (DivideMix) details ---------------------------------------------------


def test_preact_identity_skip_uses_preactivated_tensor() -> None:
    block = PreActBlockDM(8, 8, stride=1).eval()
    with torch.no_grad():
        block.bn1.running_mean.fill_(0.5)
        block.bn1.running_var.fill_(4.0)
        block.bn1.weight.fill_(2.0)
        block.bn1.bias.fill_(-0.3)
        block.conv2.weight.zero_()  # main path contributes nothing: output == skip path
        x = torch.randn(2, 8, 6, 6)
        out = block(x)
    expected = F.relu(block.bn1(x))
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, x)  # canonical pre-act would add the raw x


def test_preact_projection_and_layout() -> None:
    model = build_backbone("preact_resnet18", 3, 10, 32)
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    for layer in (model.layer2, model.layer3, model.layer4):
        proj = layer[0].shortcut
        assert isinstance(proj, nn.Conv2d) and proj.kernel_size == (1, 1) and proj.bias is None
        assert isinstance(layer[1].shortcut, nn.Identity)
    # Post-activation stem BN + 8 blocks × 2 BNs; no final BN after layer4.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 1 + 16
    assert model.fc.in_features == 512


# ----- WRN-28-10 details ---------------------------------------------------------------------


def test_wrn_dropout_kwarg_and_init() -> None:
    model = build_backbone("wrn28_10", 3, 10, 32, dropout=0.3)
    blocks = [m for m in model.modules() if hasattr(m, "equal_in_out")]
    assert len(blocks) == 12 and all(b.dropout == 0.3 for b in blocks)
    assert sum(b.shortcut is not None for b in blocks) == 3  # 16->160, 160->320, 320->640
    assert build_backbone("wrn28_10", 1, 10, 8).block1[0].dropout == 0.0
    w = model.block3[1].conv1.weight
    target = math.sqrt(2.0 / (9 * 640))
    assert abs(w.std().item() - target) < 0.05 * target
    assert torch.all(model.fc.bias == 0)


# ----- VGG-19-BN (Animal-10N) details ----------------------------------------------------------


@pytest.mark.parametrize("channels,size,last_map", [(3, 64, 2), (3, 32, 1), (1, 48, 1)])
def test_vgg19_bn_shapes_and_fc_features_split(channels: int, size: int, last_map: int) -> None:
    model = build_backbone("vgg19_bn", channels, 7, size).eval()
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        maps = x
        for i in range(1, 6):
            maps = getattr(model, f"stage{i}")(maps)
        assert maps.shape == (2, 512, last_map, last_map)
        feats = model.features(x)
        assert feats.shape == (2, 512) and model.fc.in_features == 512 and model.fc.out_features == 7
        torch.testing.assert_close(model.fc(feats), model(x), rtol=0, atol=0)


def test_vgg19_bn_layout() -> None:
    model = build_backbone("vgg19_bn", 3, 10, 64)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [w for stage in VGG19_STAGES for w in stage]
    assert len(convs) == 16 and all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    for i in range(1, 6):  # every conv followed by BN and ReLU, every stage closed by a 2x2 max-pool
        layers = list(getattr(model, f"stage{i}"))
        assert isinstance(layers[-1], nn.MaxPool2d) and layers[-1].kernel_size == 2
        for j in range(0, len(layers) - 1, 3):
            assert [type(m) for m in layers[j:j + 3]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert [isinstance(m, nn.Linear) for m in model.modules()].count(True) == 1


def test_vgg19_bn_last_stage_for_famus() -> None:
    from methods.famus import last_stage_prefixes

    assert last_stage_prefixes(build_backbone("vgg19_bn", 3, 10, 64)) == ["stage5"]


@pytest.mark.parametrize("size", [8, 28, 31])
def test_vgg19_bn_refuses_images_below_32(size: int) -> None:
    with pytest.raises(UsageError, match="vgg19_bn needs image_size >= 32"):
        build_backbone("vgg19_bn", 3, 10, size)


# ----- errors --------------------------------------------------------------------------------


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UsageError, match="did you mean 'resnet32'"):
        build_backbone("resnet23", 3, 10, 32)


def test_bad_sizes_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        build_backbone("mlp", 0, 10, 28)
    with pytest.raises(UsageError):
        build_backbone("small_cnn", 1, 10, 2)
