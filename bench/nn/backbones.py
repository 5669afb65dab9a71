"""Backbone networks (specs/methods.md §1), written from the spec, not copied from any repo.

Every model returns logits of shape N×num_classes and exposes

* ``model.fc`` — the final ``nn.Linear`` classifier, and
* ``model.features(x)`` — the penultimate features (the input of ``fc``),

so ``model.fc(model.features(x))`` equals ``model(x)``. Meta-learning methods rely on this
split to keep second-order paths to the classifier only.

The conv nets end with adaptive average pooling to 1×1 so that 28×28 (and 8×8) inputs work.
For 32×32 inputs this is exactly the fixed-size pooling of the official code (the last feature
map is 8×8 for ResNet-32 / WRN-28-10 and 4×4 for PreAct ResNet-18, pooled over all of it).

`resnet10` / `resnet18` / `resnet50` / `resnet152` / `resnext50` are torchvision's ImageNet ResNets
(ResNet-10 built from torchvision's parts); all but ResNet-10 may start from torchvision's ImageNet
weights (`build_backbone(..., pretrained="imagenet1k_v1")`, see `PRETRAINED_WEIGHTS`).
`inception_resnet_v2` is timm's Inception-ResNet-v2 (WebVision), random init only.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.errors import UsageError, unknown
from bench.core.registry import Registry

BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")

__all__ = [
    "BACKBONES",
    "build_backbone",
    "ResNet32",
    "PreActResNet18",
    "WideResNet",
    "SmallCNN",
    "MLP",
    "VGG19BN",
    "TorchvisionResNet",
    "InceptionResNetV2",
    "IRV2_MIN_IMAGE_SIZE",
    "PRETRAINED_WEIGHTS",
    "DEFAULT_PRETRAINED",
    "check_pretrained",
    "load_pretrained",
    "pretrained_cache_path",
]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class _Backbone(nn.Module):
    """Common shape: ``forward(x) = fc(features(x))``."""

    fc: nn.Linear

    def features(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


# ---------------------------------------------------------------------------------------------
# §1.1 CIFAR ResNet-32 with the parameter-free "option A" shortcut
# ---------------------------------------------------------------------------------------------


class ShortcutA(nn.Module):
    """Parameter-free shortcut: keep every other pixel, zero-pad channels on both sides."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"channel_pad={self.pad}"


class _BasicBlockA(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, add shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            # Option A assumes the width doubles exactly when the resolution halves.
            self.shortcut = ShortcutA(cout // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet32(_Backbone):
    """CIFAR ResNet-32 (3 stages × 5 basic blocks, widths 16/32/64, option-A shortcuts)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, blocks_per_stage: int = 5) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        stages: list[nn.Module] = []
        cin = 16
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(_BasicBlockA(cin, width, stride))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)  # == avg-pool over the 8×8 map for 32×32 inputs
        self.fc = nn.Linear(64, num_classes)
        # MW-Net / GDW / BALMS init: Kaiming-normal (fan_in, ReLU gain) for conv and linear
        # weights; BatchNorm weight 1, bias 0; linear bias keeps the PyTorch default.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return torch.flatten(self.pool(out), 1)


# ---------------------------------------------------------------------------------------------
# §1.2 PreAct ResNet-18, DivideMix variant
# ---------------------------------------------------------------------------------------------


class PreActBlockDM(nn.Module):
    """DivideMix pre-activation block: the skip path carries ``ReLU(BN1(x))``, even for identity."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            # 1×1 projection without BatchNorm.
            self.shortcut = nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.bn1(x))
        skip = self.shortcut(a)  # taken from the pre-activated tensor, not from x
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + skip


class PreActResNet18(_Backbone):
    """PreAct ResNet-18 as in DivideMix: post-activation stem, no final BN+ReLU, default init."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        stages: list[nn.Module] = []
        cin = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(PreActBlockDM(cin, width, stride), PreActBlockDM(width, width, 1)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)  # == avg_pool2d(4) on the 4×4 map for 32×32 inputs
        self.fc = nn.Linear(512, num_classes)

    def features(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(self.pool(out), 1)


# ---------------------------------------------------------------------------------------------
# §1.3 WRN-28-10, MW-Net (Zagoruyko-style) version
# ---------------------------------------------------------------------------------------------


class _WideBlock(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv3×3-BN-ReLU-(dropout)-conv3×3, plus shortcut.

    When the width or stride changes, the pre-activated input feeds both the main path and a
    1×1 projection shortcut; otherwise the raw input is added back (Zagoruyko/MW-Net layout).
    """

    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.dropout = dropout
        self.equal_in_out = cin == cout and stride == 1
        self.shortcut: nn.Module | None = (
            None if self.equal_in_out else nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(a)))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        out = self.conv2(out)
        skip = x if self.shortcut is None else self.shortcut(a)
        return out + skip


class WideResNet(_Backbone):
    """Wide ResNet (depth 6n+4, widen factor k), MW-Net PyTorch layout and init."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        depth: int = 28,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise UsageError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = _conv3x3(in_channels, widths[0])
        groups: list[nn.Module] = []
        cin = widths[0]
        for width, stride in zip(widths[1:], (1, 2, 2)):
            blocks = [_WideBlock(cin if i == 0 else width, width, stride if i == 0 else 1, dropout) for i in range(n)]
            groups.append(nn.Sequential(*blocks))
            cin = width
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(widths[3])
        self.pool = nn.AdaptiveAvgPool2d(1)  # == avg_pool2d(8) on the 8×8 map for 32×32 inputs
        self.fc = nn.Linear(widths[3], num_classes)
        # MW-Net init: conv ~ N(0, sqrt(2 / (k*k*out))), BN weight 1 / bias 0, linear bias 0
        # (linear weight keeps the PyTorch default).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        return torch.flatten(self.pool(out), 1)


# ---------------------------------------------------------------------------------------------
# VGG-19 with BatchNorm, CIFAR-style, for Animal-10N
# ---------------------------------------------------------------------------------------------

#: conv widths of the five VGG-19 stages; each stage ends with a 2×2 max-pool
VGG19_STAGES = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


class VGG19BN(_Backbone):
    """VGG-19 for small images: 16 conv3×3-BN-ReLU in five stages, each closed by a 2×2 max-pool,
    then global average pooling and one Linear (no 4096-wide head). PyTorch's default init.

    The stages are the children `stage1`..`stage5` (FaMUS takes `stage5` as the last stage).
    Input sides from 32 up: 32×32 ends on a 1×1 map, 64×64 (Animal-10N) on 2×2, pooled to 1×1.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 64) -> None:
        super().__init__()
        if image_size < 2 ** len(VGG19_STAGES):
            raise UsageError(f"vgg19_bn needs image_size >= 32 (five 2x2 max-pools), got {image_size}; "
                             "pick a smaller backbone such as small_cnn or mlp")
        cin = in_channels
        for i, widths in enumerate(VGG19_STAGES, start=1):
            layers: list[nn.Module] = []
            for width in widths:
                layers += [nn.Conv2d(cin, width, kernel_size=3, padding=1), nn.BatchNorm2d(width),
                           nn.ReLU(inplace=True)]
                cin = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            self.add_module(f"stage{i}", nn.Sequential(*layers))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: Tensor) -> Tensor:
        out = x
        for i in range(1, len(VGG19_STAGES) + 1):
            out = getattr(self, f"stage{i}")(out)
        return torch.flatten(self.pool(out), 1)


# ---------------------------------------------------------------------------------------------
# torchvision's ImageNet ResNets (real-world data, specs/realworld_data.md §2–§6)
# ---------------------------------------------------------------------------------------------


class TorchvisionResNet(_Backbone):
    """torchvision's ImageNet ResNet with the features/fc split.

    `arch` is a torchvision builder name ("resnet18", "resnet50", "resnet152", "resnext50_32x4d", ...)
    or "resnet10": the ResNet-10 of OLTR / BALMS (ImageNet-LT), torchvision's `ResNet` with one
    `BasicBlock` per stage, for which torchvision has no builder and no weights.

    The stem stays torchvision's (7×7 stride-2 conv, 3×3 max-pool) at every image size: these are
    the ImageNet architectures, meant for 64–224 px inputs; smaller images work but shrink to 1×1
    early. Modules keep torchvision's names, so its checkpoints load unchanged. With
    `in_channels` ≠ 3 the stem conv is replaced by a fresh one of the same shape and init.
    """

    def __init__(self, arch: str, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        import torchvision
        from torchvision.models.resnet import BasicBlock, ResNet

        net: ResNet
        if arch == "resnet10":
            net = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
        else:
            net = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        for name, child in net.named_children():  # conv1 bn1 relu maxpool layer1-4 avgpool fc
            self.add_module(name, child)
        if in_channels != 3:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor) -> Tensor:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(self.avgpool(out), 1)


# ---------------------------------------------------------------------------------------------
# timm's Inception-ResNet-v2 (WebVision: DL Table 4, FaMUS Table 6, DivideMix)
# ---------------------------------------------------------------------------------------------

#: the smallest input side Inception-ResNet-v2 takes. The stem's unpadded 3×3 convs (conv2d_1a
#: stride 2, conv2d_2a and conv2d_4a stride 1) and two stride-2 3×3 max-pools, then the unpadded
#: stride-2 3×3 reductions Mixed_6a and Mixed_7a need a side of 75 to leave a 1×1 map
#: (75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1; 74 leaves 2×2 before Mixed_7a's 3×3 kernels).
#: The network is made for 299 px (an 8×8 last map).
IRV2_MIN_IMAGE_SIZE = 75


class InceptionResNetV2(_Backbone):
    """timm's Inception-ResNet-v2 (random init) with the features/fc split.

    The timm network is the child `body`; its classifier Linear moves to `fc` (`body.classif`
    becomes an identity), so `features(x)` is timm's `forward_features` plus its pooled head
    before the logits (`forward_head(..., pre_logits=True)`, 1536 wide) and `forward(x)` equals
    timm's own output. Inside `body` the modules keep timm's names. Its last stage (what FaMUS
    samples layers from) is everything after the last reduction block `mixed_7a`.
    """

    #: the modules after the last reduction block (8×8 at 299 px), by parameter-name prefix
    last_stage = ("body.repeat_2", "body.block8", "body.conv2d_7b")

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 299) -> None:
        super().__init__()
        if image_size < IRV2_MIN_IMAGE_SIZE:
            raise UsageError(f"inception_resnet_v2 needs image_size >= {IRV2_MIN_IMAGE_SIZE} (unpadded stride-2 "
                             f"convs and pools), got {image_size}; it is made for 299 px")
        import timm

        body = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=num_classes,
                                 in_chans=in_channels)
        head = body.classif
        if not isinstance(head, nn.Linear):  # a timm release that changed the head layout
            raise TypeError(f"timm's inception_resnet_v2 classifier is a {type(head).__name__}, not a Linear")
        body.classif = nn.Identity()  # the Linear lives on as `fc` only, never twice in the state dict
        self.body = body
        self.fc = head

    def features(self, x: Tensor) -> Tensor:
        return self.body.forward_head(self.body.forward_features(x), pre_logits=True)


#: pretrained weights per backbone: the name a user types -> torchvision's weights enum member.
#: "imagenet1k_v1" (the default) is the checkpoint the papers used (`pretrained=True` before
#: torchvision 0.13); ResNet-50/152 and ResNeXt-50 also have torchvision's newer, stronger
#: "imagenet1k_v2". ResNet-10 and Inception-ResNet-v2 train from scratch only.
PRETRAINED_WEIGHTS: dict[str, dict[str, str]] = {
    "resnet18": {"imagenet1k_v1": "ResNet18_Weights.IMAGENET1K_V1"},
    "resnet50": {"imagenet1k_v1": "ResNet50_Weights.IMAGENET1K_V1",
                 "imagenet1k_v2": "ResNet50_Weights.IMAGENET1K_V2"},
    "resnet152": {"imagenet1k_v1": "ResNet152_Weights.IMAGENET1K_V1",
                  "imagenet1k_v2": "ResNet152_Weights.IMAGENET1K_V2"},
    "resnext50": {"imagenet1k_v1": "ResNeXt50_32X4D_Weights.IMAGENET1K_V1",
                  "imagenet1k_v2": "ResNeXt50_32X4D_Weights.IMAGENET1K_V2"},
}
#: the weights `--pretrained` without a value means
DEFAULT_PRETRAINED = "imagenet1k_v1"


def check_pretrained(backbone: str, weights: str, in_channels: int) -> None:
    """UsageError unless `backbone` has the pretrained `weights` and the data is RGB ("" = from scratch)."""
    if not weights:
        return
    if backbone not in PRETRAINED_WEIGHTS:
        *others, last = PRETRAINED_WEIGHTS
        choices = f"{', '.join(others)} or {last}" if others else last
        raise UsageError(f"backbone '{backbone}' has no pretrained weights; use --backbone {choices}, "
                         "or train from scratch (drop --pretrained)")
    if weights not in PRETRAINED_WEIGHTS[backbone]:
        raise unknown(f"pretrained weights for {backbone}", weights, PRETRAINED_WEIGHTS[backbone])
    if in_channels != 3:
        raise UsageError(f"pretrained {backbone} weights take RGB (3-channel) images, this data has {in_channels} "
                         "channel(s); train from scratch (drop --pretrained)")


def _torchvision_weights(backbone: str, weights: str) -> Any:
    import torchvision

    enum_name, member = PRETRAINED_WEIGHTS[backbone][weights].split(".")
    return getattr(torchvision.models, enum_name)[member]


def pretrained_cache_path(backbone: str, weights: str) -> Path:
    """Where torchvision keeps (and looks for) the checkpoint: `$TORCH_HOME/hub/checkpoints/<file>`."""
    url = _torchvision_weights(backbone, weights).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def load_pretrained(model: nn.Module, backbone: str, weights: str) -> None:
    """Load torchvision's `weights` into `model`, all but the classifier `fc`, which stays fresh.

    torchvision reads its cache, or downloads into it; when neither works, a one-line
    UsageError names the file to fetch and where to put it (never a silent start from scratch)."""
    tv_weights = _torchvision_weights(backbone, weights)
    cached = pretrained_cache_path(backbone, weights)
    try:
        state = tv_weights.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
    except Exception as exc:  # offline, blocked, or a damaged file in the cache
        reason = (str(exc).splitlines() or [""])[0][:200]
        raise UsageError(f"cannot get the {weights} weights of {backbone} ({type(exc).__name__}: {reason}); "
                         f"download {tv_weights.url} to {cached} (set TORCH_HOME to use another cache)") from exc
    state = {**state, "fc.weight": model.fc.weight, "fc.bias": model.fc.bias}  # keep the fresh head
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{cached} is not torchvision's {backbone} {weights} checkpoint; delete it and "
                         f"download {tv_weights.url} again") from exc


# ---------------------------------------------------------------------------------------------
# Small models for fast tests and MNIST-sized data
# ---------------------------------------------------------------------------------------------


class SmallCNN(_Backbone):
    """Two conv3×3+ReLU+maxpool2 stages (32, 64 channels), FC 128, then the classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        if image_size < 4:
            raise UsageError(f"small_cnn needs image_size >= 4, got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        side = image_size // 4  # two floor-halving max-pools
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc = nn.Linear(128, num_classes)

    def features(self, x: Tensor) -> Tensor:
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        # torch.flatten follows the logical NCHW order, so channels_last inputs give the same result.
        return F.relu(self.fc1(torch.flatten(out, 1)))


class MLP(_Backbone):
    """Flatten, two hidden layers of 256 units with ReLU, then the classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, hidden: int = 256) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(in_channels * image_size * image_size, hidden)
        self.hidden2 = nn.Linear(hidden, hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def features(self, x: Tensor) -> Tensor:
        out = F.relu(self.hidden1(torch.flatten(x, 1)))
        return F.relu(self.hidden2(out))


# ---------------------------------------------------------------------------------------------
# Registry and factory
# ---------------------------------------------------------------------------------------------


@BACKBONES.register("resnet32", "CIFAR ResNet-32, option-A shortcuts, 16/32/64 widths (~0.46M params)")
def _resnet32(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return ResNet32(in_channels, num_classes, **kwargs)


@BACKBONES.register("preact_resnet18", "PreAct ResNet-18, DivideMix variant (~11.17M params)")
def _preact_resnet18(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return PreActResNet18(in_channels, num_classes, **kwargs)


@BACKBONES.register("wrn28_10", "Wide ResNet-28-10, MW-Net layout, 1×1 projection shortcuts (~36.48M params)")
def _wrn28_10(in_channels: int, num_classes: int, image_size: int, dropout: float = 0.0, **kwargs: Any) -> nn.Module:
    return WideResNet(in_channels, num_classes, depth=28, widen_factor=10, dropout=dropout, **kwargs)


# DL §5.2 prints "VGG10-BN"; specs/realworld_data.md §2.2 reads it as "probably VGG-19-BN as in SELFIE", the
# prior work DL says it follows for a fair comparison (DL ships no code to check), so this is VGG-19-BN.
@BACKBONES.register("vgg19_bn", "CIFAR-style VGG-19 + BatchNorm, global pooling, one Linear; >= 32x32 (~20.04M params)")
def _vgg19_bn(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return VGG19BN(in_channels, num_classes, image_size, **kwargs)


@BACKBONES.register("resnet10", "ResNet-10 of OLTR/BALMS (ImageNet-LT): torchvision ResNet, one BasicBlock per "
                                "stage, for 64-224 px; no pretrained weights (~4.91M params)")
def _resnet10(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return TorchvisionResNet("resnet10", in_channels, num_classes, **kwargs)


@BACKBONES.register("resnet18", "torchvision ImageNet ResNet-18, for 64-224 px; --pretrained imagenet1k_v1 "
                                "(~11.18M params)")
def _resnet18(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return TorchvisionResNet("resnet18", in_channels, num_classes, **kwargs)


@BACKBONES.register("resnet50", "torchvision ImageNet ResNet-50, for 64-224 px; --pretrained imagenet1k_v1|v2 "
                                "(~23.53M params)")
def _resnet50(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return TorchvisionResNet("resnet50", in_channels, num_classes, **kwargs)


@BACKBONES.register("resnet152", "torchvision ImageNet ResNet-152, for 64-224 px; --pretrained imagenet1k_v1|v2 "
                                 "(~58.16M params)")
def _resnet152(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return TorchvisionResNet("resnet152", in_channels, num_classes, **kwargs)


@BACKBONES.register("resnext50", "torchvision ImageNet ResNeXt-50 (32x4d), for 64-224 px; --pretrained "
                                 "imagenet1k_v1|v2 (~23.00M params)")
def _resnext50(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return TorchvisionResNet("resnext50_32x4d", in_channels, num_classes, **kwargs)


@BACKBONES.register("inception_resnet_v2", f"timm Inception-ResNet-v2 (WebVision), for 299 px (at least "
                                           f"{IRV2_MIN_IMAGE_SIZE} px); random init only (~54.38M params at 50 "
                                           "classes)")
def _inception_resnet_v2(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return InceptionResNetV2(in_channels, num_classes, image_size, **kwargs)


@BACKBONES.register("small_cnn", "2-conv CNN (32/64 ch) + FC 128, sized for 28×28 inputs")
def _small_cnn(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return SmallCNN(in_channels, num_classes, image_size, **kwargs)


@BACKBONES.register("mlp", "MLP with two 256-unit hidden layers (~0.269M params at 28×28×1)")
def _mlp(in_channels: int, num_classes: int, image_size: int, **kwargs: Any) -> nn.Module:
    return MLP(in_channels, num_classes, image_size, **kwargs)


def build_backbone(name: str, in_channels: int, num_classes: int, image_size: int, pretrained: str = "",
                   **kwargs: Any) -> nn.Module:
    """Build the backbone called `name`; extra keyword arguments (e.g. ``dropout``) go to its constructor.
    `pretrained` names weights of `PRETRAINED_WEIGHTS` to start from ("": random init).

    Raises UsageError for an unknown name (with a "did you mean" hint), non-positive sizes, or
    pretrained weights the backbone or the data cannot take.
    """
    factory = BACKBONES.get(name)
    for label, value in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"backbone '{name}': {label} must be a positive integer, got {value!r}")
    check_pretrained(name, pretrained, in_channels)
    model = factory(in_channels, num_classes, image_size, **kwargs)
    if pretrained:
        load_pretrained(model, name, pretrained)
    return model
