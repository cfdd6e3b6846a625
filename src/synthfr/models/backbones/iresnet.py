"""iResNet-18/34/50/100 (insightface ``arcface_torch``) and their squeeze-excitation (IR-SE) variants.

The module and parameter names follow insightface's ``iresnet.py`` (``conv1, bn1, prelu, layer1..4, bn2, fc,
features``), so its released ``backbone.pth`` weights load with ``load_state_dict`` after conversion to
safetensors. Input: float ``N×3×112×112`` RGB normalised as ``(x / 255 - 0.5) / 0.5``; output ``N×D``
(un-normalised) embeddings. ``iresnet_se*`` add squeeze-excitation to insightface's iResNet blocks;
``ir_se50``/``ir_se100``/``ir50``/``ir100`` are the IR(-SE) nets of face.evoLve / InsightFace_Pytorch (the IR-SE-50
of VIGFace and Vec2Face), with those repositories' module names.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthfr.models.backbones import REGISTRY

__all__ = ["IResNet", "IBasicBlock", "SEModule", "IRNet", "BottleneckIR"]


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel gates from global average pooling (reduction 16), as in IR-SE."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * w


class IBasicBlock(nn.Module):
    """BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN [- SE] + shortcut (insightface's improved residual)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 se: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.se = SEModule(planes) if se else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.se is not None:
            out = self.se(out)
        identity = self.downsample(x) if self.downsample is not None else x
        return out + identity


class IResNet(nn.Module):
    """iResNet backbone: 3×3 stem, four stride-2 stages, BN - dropout - FC - BN1d embedding head.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 14, 3)`` for iResNet-50.
        embedding_size: output dimension (512 in the papers).
        widths: channels per stage (``(64, 128, 256, 512)``); tiny test models shrink them.
        se: add squeeze-excitation to every block (IR-SE).
        dropout: dropout before the FC layer (insightface uses 0 for iResNet).
        input_size: input side (112); the FC layer sees ``widths[-1] × (input_size / 16)²`` features.
    """

    def __init__(self, layers: Sequence[int], embedding_size: int = 512,
                 widths: Sequence[int] = (64, 128, 256, 512), se: bool = False, dropout: float = 0.0,
                 input_size: int = 112):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"iResNet needs an input side divisible by 16, got {input_size}")
        self.embedding_size = embedding_size
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=1e-05)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(widths[0], layers[0], 2, se)
        self.layer2 = self._make_layer(widths[1], layers[1], 2, se)
        self.layer3 = self._make_layer(widths[2], layers[2], 2, se)
        self.layer4 = self._make_layer(widths[3], layers[3], 2, se)
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-05)
        self.dropout = nn.Dropout(p=dropout)
        side = input_size // 16
        self.fc = nn.Linear(widths[3] * side * side, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False  # as insightface: a fixed-scale BN on the embedding
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int, se: bool) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes, eps=1e-05))
        mods = [IBasicBlock(self.inplanes, planes, stride, downsample, se=se)]
        self.inplanes = planes
        mods += [IBasicBlock(planes, planes, se=se) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


def _make(depth: int, se: bool):
    def factory(embedding_size: int = 512, dropout: float = 0.0, input_size: int = 112, **kw) -> IResNet:
        return IResNet(_DEPTHS[depth], embedding_size=embedding_size, se=se, dropout=dropout,
                       input_size=input_size, **kw)

    kind = "IR-SE" if se else "iResNet"
    factory.__doc__ = f"{kind}-{depth} (blocks {_DEPTHS[depth]}), 112×112 -> 512-D by default."
    factory.__name__ = f"iresnet{'_se' if se else ''}{depth}"
    return factory


for _d in _DEPTHS:
    REGISTRY.register(f"iresnet{_d}", aliases=[f"r{_d}"])(_make(_d, se=False))
    REGISTRY.register(f"iresnet_se{_d}")(_make(_d, se=True))


# -- IR / IR-SE of face.evoLve / InsightFace_Pytorch (the "IR-SE-50" of ArcFace-PyTorch, VIGFace, Vec2Face) --------
class BottleneckIR(nn.Module):
    """``BN - conv3x3 - PReLU - conv3x3(stride) - BN [- SE]`` + shortcut (1×1 max-pool or 1×1 conv + BN)."""

    def __init__(self, cin: int, depth: int, stride: int, se: bool):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRNet(nn.Module):
    """IR / IR-SE backbone with face.evoLve's module names (``input_layer, body, output_layer``), so weights of
    the IR-SE-50 released with ArcFace-PyTorch-style repositories load directly."""

    _UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}

    def __init__(self, depth: int = 50, se: bool = True, embedding_size: int = 512, dropout: float = 0.0,
                 input_size: int = 112):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"IR-SE needs an input side divisible by 16, got {input_size}")
        self.embedding_size = embedding_size
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        mods, cin = [], 64
        for depth_c, n in zip((64, 128, 256, 512), self._UNITS[depth]):
            for i in range(n):
                mods.append(BottleneckIR(cin, depth_c, 2 if i == 0 else 1, se))
                cin = depth_c
        self.body = nn.Sequential(*mods)
        side = input_size // 16
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(dropout), nn.Flatten(),
                                          nn.Linear(512 * side * side, embedding_size), nn.BatchNorm1d(embedding_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def _make_ir(depth: int, se: bool):
    def factory(embedding_size: int = 512, dropout: float = 0.0, input_size: int = 112) -> IRNet:
        return IRNet(depth, se, embedding_size, dropout, input_size)

    factory.__doc__ = (f"IR{'-SE' if se else ''}-{depth} as face.evoLve / InsightFace_Pytorch "
                       f"({'the VIGFace / Vec2Face default; ' if se and depth == 50 else ''}loads their weights).")
    factory.__name__ = f"ir{'_se' if se else ''}{depth}"
    return factory


for _d in (50, 100):
    REGISTRY.register(f"ir_se{_d}")(_make_ir(_d, se=True))
    REGISTRY.register(f"ir{_d}")(_make_ir(_d, se=False))
