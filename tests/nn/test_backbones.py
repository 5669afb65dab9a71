"""Tests for bench/nn/backbones.py: sizes, shapes, the fc/features split and the spec's block details."""
from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import UsageError
from bench.nn.backbones import (
    BACKBONES,
    IRV2_MIN_IMAGE_SIZE,
    PRETRAINED_WEIGHTS,
    VGG19_STAGES,
    PreActBlockDM,
    ShortcutA,
    _torchvision_weights,
    build_backbone,
    check_pretrained,
    pretrained_cache_path,
)

NAMES = ["resnet32", "preact_resnet18", "wrn28_10", "small_cnn", "mlp", "vgg19_bn", "resnet10", "resnet18", "resnet50",
         "resnet152", "resnext50", "inception_resnet_v2"]
# backbones that work on any image size (vgg19_bn needs >= 32, inception_resnet_v2 >= 75: tested on their own below)
ANY_SIZE = [n for n in NAMES if n not in ("vgg19_bn", "inception_resnet_v2")]
# (in_channels, image_size) combinations every ANY_SIZE backbone must support.
SHAPES = [(1, 8), (1, 28), (3, 32)]
# The big ImageNet nets run the generic shape check at the first (grey 8 px) shape only, to keep the module fast;
# their RGB 64 px run is in test_torchvision_resnet_is_torchvisions_network.
HEAVY = ("resnet152", "resnext50")
SHAPE_CASES = [(name, c, size) for name in ANY_SIZE for c, size in (SHAPES[:1] if name in HEAVY else SHAPES)]
# torchvision's builder for each torchvision backbone (resnet10 has none: torchvision's ResNet, 1 BasicBlock per stage)
TV_ARCH = {"resnet18": "resnet18", "resnet50": "resnet50", "resnet152": "resnet152", "resnext50": "resnext50_32x4d"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", autouse=True)
def timm_never_loads_weights():
    """timm's pretrained-weight loader fails the test if anything in this module reaches it (no hub download,
    ever: tests/conftest.py guards torch.hub only, timm fetches from the Hugging Face hub)."""
    import timm.models._builder

    def refuse(*args, **kwargs):
        raise AssertionError("timm was asked to load pretrained weights")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timm.models._builder, "load_pretrained", refuse)
        yield


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_names_and_descriptions() -> None:
    assert sorted(BACKBONES.names()) == sorted(NAMES)
    for name in NAMES:
        desc = BACKBONES.describe(name)
        assert desc and "\n" not in desc


# Exact counts measured for C=10 (inception_resnet_v2: C=50, mini-WebVision); the approximate figures come from
# specs/methods.md §1. Counted on the meta device: no weights are allocated or initialised.
@pytest.mark.parametrize(
    "name,channels,size,exact,approx",
    [
        ("resnet32", 3, 32, 464_154, 464_000),
        ("preact_resnet18", 3, 32, 11_171_274, 11_170_000),
        ("wrn28_10", 3, 32, 36_479_194, 36_480_000),
        ("mlp", 1, 28, 269_322, 269_000),
        ("small_cnn", 1, 28, 421_642, None),
        ("vgg19_bn", 3, 64, 20_040_522, 20_040_000),  # CIFAR VGG-19 size; pooled, so any side
        ("resnet18", 3, 64, 11_181_642, 11_180_000),  # torchvision's, 10-way head
        ("resnet50", 3, 64, 23_528_522, 23_530_000),
        ("resnet10", 3, 64, 4_910_922, None),
        ("resnet152", 3, 64, 58_164_298, None),
        ("resnext50", 3, 64, 23_000_394, None),
        ("inception_resnet_v2", 3, 299, 54_383_314, None),
    ],
)
def test_parameter_counts(name: str, channels: int, size: int, exact: int, approx: int | None) -> None:
    classes = 50 if name == "inception_resnet_v2" else 10
    with torch.device("meta"):
        count = n_params(build_backbone(name, channels, classes, size))
    assert count == exact
    if approx is not None:
        assert abs(count - approx) / approx < 0.01


@pytest.mark.parametrize("name,channels,size", SHAPE_CASES)
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


# ----- torchvision ResNets ------------------------------------------------------------------


def torchvision_reference(name: str, **kwargs) -> nn.Module:
    """torchvision's own network for backbone `name`, built without bench code."""
    import torchvision
    from torchvision.models.resnet import BasicBlock, ResNet

    if name == "resnet10":
        return ResNet(BasicBlock, [1, 1, 1, 1], **kwargs)
    return getattr(torchvision.models, TV_ARCH[name])(weights=None, **kwargs)


@pytest.mark.parametrize("name,width,blocks", [
    ("resnet10", 512, [1, 1, 1, 1]),
    ("resnet18", 512, [2, 2, 2, 2]),
    ("resnet50", 2048, [3, 4, 6, 3]),
    ("resnet152", 2048, [3, 8, 36, 3]),
    ("resnext50", 2048, [3, 4, 6, 3]),
])
def test_torchvision_resnet_is_torchvisions_network(name: str, width: int, blocks: list[int]) -> None:
    """Same module names as torchvision (its checkpoints load strictly) and the same outputs."""
    reference = torchvision_reference(name, num_classes=7).eval()
    model = build_backbone(name, 3, 7, 64).eval()
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == blocks
    model.load_state_dict(reference.state_dict())  # strict: every name and shape matches
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.features(x)
        assert feats.shape == (2, width) and model.fc.in_features == width and model.fc.out_features == 7
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)
        torch.testing.assert_close(model.fc(feats), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet10", "resnet18", "resnet50"])
def test_torchvision_resnet_grey_stem_and_famus_last_stage(name: str) -> None:
    from methods.famus import last_stage_prefixes

    model = build_backbone(name, 1, 5, 64).eval()
    conv1 = model.conv1
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride) == (1, 64, (7, 7), (2, 2))
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    assert last_stage_prefixes(model) == ["layer4"]


# ImageNet (1000-way) sizes: ours, counted on the meta device, against figures computed without bench code.
def test_imagenet_param_counts_match_torchvision_and_timm() -> None:
    import timm
    import torchvision

    with torch.device("meta"):
        ours = {name: n_params(build_backbone(name, 3, 1000, 224)) for name in ("resnet152", "resnext50", "resnet10")}
        ours["inception_resnet_v2"] = n_params(build_backbone("inception_resnet_v2", 3, 1000, 299))
        tv = {name: n_params(torchvision_reference(name)) for name in ("resnet152", "resnext50")}
        resnet18 = torchvision.models.resnet18(weights=None)
        # ResNet-10 = ResNet-18 without the second BasicBlock of each stage
        tv["resnet10"] = n_params(resnet18) - sum(n_params(getattr(resnet18, f"layer{i}")[1]) for i in range(1, 5))
        irv2 = n_params(timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1000))
    assert ours["resnet152"] == tv["resnet152"] == 60_192_808  # torchvision's published figure
    assert ours["resnext50"] == tv["resnext50"] == 25_028_904
    assert ours["resnet10"] == tv["resnet10"] == 5_418_792
    assert ours["inception_resnet_v2"] == irv2 == 55_843_464  # timm's "55.8M"


# ----- timm Inception-ResNet-v2 (WebVision) ---------------------------------------------------


@pytest.fixture(scope="module")
def irv2() -> nn.Module:
    """One 50-class Inception-ResNet-v2 for the module (~54M parameters: build it once)."""
    torch.manual_seed(0)
    return build_backbone("inception_resnet_v2", 3, 50, IRV2_MIN_IMAGE_SIZE).eval()


def test_inception_resnet_v2_is_timms_network_with_the_fc_features_split(irv2: nn.Module) -> None:
    import timm

    assert isinstance(irv2.fc, nn.Linear) and (irv2.fc.in_features, irv2.fc.out_features) == (1536, 50)
    assert isinstance(irv2.body.classif, nn.Identity)  # the head lives once, as `fc`
    state = irv2.state_dict()
    assert not any("classif" in key for key in state) and n_params(irv2) == 54_383_314
    x = torch.randn(2, 3, IRV2_MIN_IMAGE_SIZE, IRV2_MIN_IMAGE_SIZE)
    with torch.no_grad():
        logits = irv2(x)
        feats = irv2.features(x)
        assert logits.shape == (2, 50) and feats.shape == (2, 1536)
        torch.testing.assert_close(irv2.fc(feats), logits, rtol=0, atol=0)
        # timm's own model with the same weights (head named `classif` there) gives the same logits; at 107 px
        # (the smallest side with a 2x2 last map, batch 1) so that the pooling before the head counts too
        reference = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=50).eval()
        timm_key = {k: "classif." + k[3:] if k.startswith("fc.") else k.removeprefix("body.") for k in state}
        reference.load_state_dict({timm_key[k]: v for k, v in state.items()})  # strict
        x = torch.randn(1, 3, 107, 107)
        assert reference.forward_features(x).shape == (1, 1536, 2, 2)
        torch.testing.assert_close(irv2(x), reference(x))


def test_inception_resnet_v2_minimum_image_size(irv2: nn.Module) -> None:
    assert IRV2_MIN_IMAGE_SIZE == 75
    assert "for 299 px (at least 75 px)" in BACKBONES.describe("inception_resnet_v2")
    with pytest.raises(UsageError, match=r"inception_resnet_v2 needs image_size >= 75 .*got 74"):
        build_backbone("inception_resnet_v2", 3, 50, 74)
    with torch.no_grad():
        # the network itself: 75 px leaves a 1x1 last map, 74 px is too small for Mixed_7a's kernels
        assert irv2.body.forward_features(torch.randn(1, 3, 75, 75)).shape == (1, 1536, 1, 1)
        with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
            irv2(torch.randn(1, 3, 74, 74))


def test_inception_resnet_v2_grey_input() -> None:
    with torch.device("meta"):
        model = build_backbone("inception_resnet_v2", 1, 5, 96)
        assert model.body.conv2d_1a.conv.in_channels == 1
        assert model(torch.empty(2, 1, 96, 96)).shape == (2, 5)


# ----- pretrained weights, never downloaded ---------------------------------------------------

RESNET18_FILE = "resnet18-f37072fd.pth"  # the name torchvision's ResNet18_Weights.IMAGENET1K_V1 is cached under


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torchvision cache in tmp_path; any download attempt fails like an offline machine."""
    from urllib.error import URLError

    def offline(url: str, *args, **kwargs) -> None:
        raise URLError("offline (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # TORCH_HOME decides, even after a torch.hub.set_dir
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


def imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """A random state dict shaped like torchvision's ImageNet checkpoint of `name` (1000-way head)."""
    import torchvision

    torch.manual_seed(123)
    return getattr(torchvision.models, name)(weights=None).state_dict()


def test_pretrained_resnet18_loads_torchvisions_cache_file_except_the_head(torch_home) -> None:
    state = imagenet_state("resnet18")
    torch.save(state, torch_home / RESNET18_FILE)
    model = build_backbone("resnet18", 3, 1000, 64, pretrained="imagenet1k_v1")  # 1000 classes: the head could fit
    loaded = model.state_dict()
    body = [k for k in state if not k.startswith("fc.")]
    assert len(body) == len(state) - 2 and set(loaded) == set(state)
    for key in body:
        assert torch.equal(loaded[key], state[key]), key
    assert not torch.equal(loaded["fc.weight"], state["fc.weight"])  # a fresh classifier, not ImageNet's


def test_pretrained_resnet50_uses_v1_by_default_and_v2_on_request(monkeypatch) -> None:
    from torchvision.models import ResNet50_Weights

    state = imagenet_state("resnet50")
    asked: list[str] = []

    def fake_get_state_dict(self, *args, **kwargs):
        asked.append(self.name)
        return state

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", fake_get_state_dict)
    model = build_backbone("resnet50", 3, 14, 64, pretrained="imagenet1k_v1")
    assert model.fc.weight.shape == (14, 2048)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))
    build_backbone("resnet50", 3, 14, 64, pretrained="imagenet1k_v2")
    assert asked == ["IMAGENET1K_V1", "IMAGENET1K_V2"]


def test_pretrained_weights_missing_offline_is_one_line_naming_the_cache_file(torch_home) -> None:
    with pytest.raises(UsageError) as err:
        build_backbone("resnet18", 3, 10, 64, pretrained="imagenet1k_v1")
    message = str(err.value)
    assert "\n" not in message and "URLError" in message
    assert f"download https://download.pytorch.org/models/{RESNET18_FILE} to {torch_home / RESNET18_FILE}" in message


def test_a_wrong_file_in_the_cache_is_named(torch_home) -> None:
    torch.save(imagenet_state("resnet50"), torch_home / RESNET18_FILE)
    with pytest.raises(UsageError, match=f"{RESNET18_FILE} is not torchvision's resnet18 imagenet1k_v1 checkpoint"):
        build_backbone("resnet18", 3, 10, 64, pretrained="imagenet1k_v1")


@pytest.mark.parametrize("name,channels,weights,message", [
    ("vgg19_bn", 3, "imagenet1k_v1", "backbone 'vgg19_bn' has no pretrained weights; use --backbone resnet18, "
                                     "resnet50, resnet152 or resnext50, or train from scratch (drop --pretrained)"),
    ("inception_resnet_v2", 3, "imagenet1k_v1", "backbone 'inception_resnet_v2' has no pretrained weights; use "
                                                "--backbone resnet18, resnet50, resnet152 or resnext50, or train "
                                                "from scratch (drop --pretrained)"),
    ("resnet10", 3, "imagenet1k_v1", "backbone 'resnet10' has no pretrained weights; use --backbone resnet18, "),
    ("resnext50", 3, "imagenet1k_v3", "unknown pretrained weights for resnext50 'imagenet1k_v3' (did you mean "),
    ("resnet18", 3, "imagenet1k_v2", "unknown pretrained weights for resnet18 'imagenet1k_v2' (did you mean "
                                     "'imagenet1k_v1'?)"),
    ("resnet50", 1, "imagenet1k_v1", "take RGB (3-channel) images, this data has 1 channel(s)"),
])
def test_pretrained_refusals(torch_home, name: str, channels: int, weights: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        build_backbone(name, channels, 10, 64, pretrained=weights)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match=re.escape(message)):  # the planning-time check alone says the same
        check_pretrained(name, weights, channels)


@pytest.mark.parametrize("backbone,weights", [(b, w) for b, ws in PRETRAINED_WEIGHTS.items() for w in ws])
def test_pretrained_weights_are_torchvisions_for_that_architecture(backbone: str, weights: str) -> None:
    """Each entry names the enum member of its key (v1/v2) for the same network: torchvision's published parameter
    count equals ours with a 1000-way head, and the checkpoint file is the architecture's."""
    member = _torchvision_weights(backbone, weights)
    assert member.name == weights.upper()
    with torch.device("meta"):
        assert n_params(build_backbone(backbone, 3, 1000, 224)) == member.meta["num_params"]
    assert pretrained_cache_path(backbone, weights).name.startswith(TV_ARCH[backbone] + "-")


# resnext50 only, to keep the module fast: resnet152 takes the same path, its enum mapping is checked above and
# its module names by the strict load in test_torchvision_resnet_is_torchvisions_network.
@pytest.mark.parametrize("name", ["resnext50"])
def test_pretrained_v2_loads_all_but_the_head(monkeypatch, name: str) -> None:
    state = imagenet_state(TV_ARCH[name])
    asked: list[str] = []

    def fake_get_state_dict(self, *args, **kwargs):
        asked.append(self.name)
        return state

    monkeypatch.setattr(type(_torchvision_weights(name, "imagenet1k_v2")), "get_state_dict", fake_get_state_dict)
    model = build_backbone(name, 3, 14, 64, pretrained="imagenet1k_v2")
    assert asked == ["IMAGENET1K_V2"] and model.fc.weight.shape == (14, 2048)
    loaded = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in loaded.items() if not k.startswith("fc."))
    assert set(loaded) == set(state)
