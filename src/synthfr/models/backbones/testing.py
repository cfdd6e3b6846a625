"""Tiny ``test_*`` backbones for fast tests (112×112 input, configurable embedding size)."""
from __future__ import annotations

import torch
from torch import nn

from synthfr.models.backbones import REGISTRY
from synthfr.models.backbones.iresnet import IResNet

__all__ = ["TinyNet"]


class TinyNet(nn.Module):
    """Two strided convolutions, average pooling and a linear layer; ``norm=False`` drops every BatchNorm
    (so data-parallel runs equal single-process ones exactly: BN statistics are per rank)."""

    def __init__(self, embedding_size: int = 32, width: int = 8, norm: bool = True, input_size: int = 112):
        super().__init__()
        self.embedding_size = embedding_size
        bn = (lambda c: nn.BatchNorm2d(c)) if norm else (lambda c: nn.Identity())
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=4, padding=2, bias=not norm), bn(width), nn.PReLU(width),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=not norm), bn(2 * width), nn.PReLU(2 * width),
            nn.AdaptiveAvgPool2d(7), nn.Flatten())
        self.fc = nn.Linear(2 * width * 49, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(self.body(x)))


@REGISTRY.register("test_tiny")
def test_tiny(embedding_size: int = 32, input_size: int = 112) -> TinyNet:
    """Tiny conv net with BatchNorm (~10 k parameters) for tests."""
    return TinyNet(embedding_size, 8, True, input_size)


@REGISTRY.register("test_nonorm")
def test_nonorm(embedding_size: int = 32, input_size: int = 112) -> TinyNet:
    """Tiny conv net without normalisation layers (exact single- vs multi-process equivalence tests)."""
    return TinyNet(embedding_size, 8, False, input_size)


@REGISTRY.register("test_iresnet")
def test_iresnet(embedding_size: int = 32, input_size: int = 112) -> IResNet:
    """iResNet with one block per stage and narrow widths (8-16-16-32), for tests of the real architecture."""
    return IResNet((1, 1, 1, 1), embedding_size=embedding_size, widths=(8, 16, 16, 32), input_size=input_size)
