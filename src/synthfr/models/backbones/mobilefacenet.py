"""MobileFaceNet (Chen et al. 2018) as in insightface ``arcface_torch`` (``mbf``): depthwise bottlenecks + GDC.

``mobilefacenet`` is insightface's ``mbf`` (channel scale 2, ~2.0 M parameters); ``mobilefacenet_s1`` is the
paper's width (scale 1, ~1.2 M); ``mobilefacenet_large`` is insightface's ``mbf_large``. Same input and output
convention as the iResNets (normalised ``N×3×112×112`` -> ``N×D``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthfr.models.backbones import REGISTRY

__all__ = ["MobileFaceNet"]


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.PReLU(cout))

    def forward(self, x):
        return self.layers(x)


class LinearBlock(nn.Module):
    def __init__(self, cin, cout, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout))

    def forward(self, x):
        return self.layers(x)


class DepthWise(nn.Module):
    """1×1 expand (to ``groups`` channels) - depthwise k×k - 1×1 linear projection [+ residual]."""

    def __init__(self, cin, cout, residual=False, kernel=3, stride=2, padding=1, groups=1):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(cin, groups, 1), ConvBlock(groups, groups, kernel, stride, padding, groups=groups),
            LinearBlock(groups, cout, 1))

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class Residual(nn.Module):
    def __init__(self, c, num_block, groups, kernel=3, stride=1, padding=1):
        super().__init__()
        self.layers = nn.Sequential(*[DepthWise(c, c, True, kernel, stride, padding, groups)
                                      for _ in range(num_block)])

    def forward(self, x):
        return self.layers(x)


class GDC(nn.Module):
    """Global depthwise convolution (7×7) - FC - BN1d."""

    def __init__(self, embedding_size: int, side: int = 7):
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, kernel=side, groups=512), nn.Flatten(),
            nn.Linear(512, embedding_size, bias=False), nn.BatchNorm1d(embedding_size))

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet; ``blocks`` per stage and channel ``scale`` as in insightface."""

    def __init__(self, embedding_size: int = 512, blocks: Sequence[int] = (1, 4, 6, 2), scale: int = 2,
                 input_size: int = 112):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"MobileFaceNet needs an input side divisible by 16, got {input_size}")
        self.embedding_size = embedding_size
        c1, c2 = 64 * scale, 128 * scale
        layers: list[nn.Module] = [ConvBlock(3, c1, 3, 2, 1)]
        if blocks[0] == 1:
            layers.append(ConvBlock(c1, c1, 3, 1, 1, groups=64))
        else:
            layers.append(Residual(c1, blocks[0], groups=128))
        layers += [
            DepthWise(c1, c1, kernel=3, stride=2, padding=1, groups=128),
            Residual(c1, blocks[1], groups=128),
            DepthWise(c1, c2, kernel=3, stride=2, padding=1, groups=256),
            Residual(c2, blocks[2], groups=256),
            DepthWise(c2, c2, kernel=3, stride=2, padding=1, groups=512),
            Residual(c2, blocks[3], groups=256),
        ]
        self.layers = nn.Sequential(*layers)
        self.conv_sep = ConvBlock(c2, 512, 1)
        self.features = GDC(embedding_size, side=input_size // 16)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.conv_sep(self.layers(x)))


@REGISTRY.register("mobilefacenet", aliases=["mbf"])
def mobilefacenet(embedding_size: int = 512, input_size: int = 112) -> MobileFaceNet:
    """MobileFaceNet as insightface's ``mbf`` (scale 2, blocks 1-4-6-2, ~2.0 M parameters)."""
    return MobileFaceNet(embedding_size, (1, 4, 6, 2), 2, input_size)


@REGISTRY.register("mobilefacenet_s1")
def mobilefacenet_s1(embedding_size: int = 512, input_size: int = 112) -> MobileFaceNet:
    """MobileFaceNet at the paper's width (scale 1, blocks 1-4-6-2, ~1.2 M parameters)."""
    return MobileFaceNet(embedding_size, (1, 4, 6, 2), 1, input_size)


@REGISTRY.register("mobilefacenet_s1_deep")
def mobilefacenet_s1_deep(embedding_size: int = 512, input_size: int = 112) -> MobileFaceNet:
    """MobileFaceNet at the paper's width with twice the blocks (scale 1, blocks 2-8-12-4): the "deeper" arm of
    width-vs-depth comparisons against ``mobilefacenet`` (twice the width)."""
    return MobileFaceNet(embedding_size, (2, 8, 12, 4), 1, input_size)


@REGISTRY.register("mobilefacenet_large", aliases=["mbf_large"])
def mobilefacenet_large(embedding_size: int = 512, input_size: int = 112) -> MobileFaceNet:
    """MobileFaceNet-large as insightface's ``mbf_large`` (scale 4, blocks 2-8-12-4)."""
    return MobileFaceNet(embedding_size, (2, 8, 12, 4), 4, input_size)
