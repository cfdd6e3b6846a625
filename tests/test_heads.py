"""Margin heads: every registered head against logits computed by hand on a 3-class example."""
from __future__ import annotations

import math

import pytest
import torch

from synthfr.models.heads import REGISTRY, create_head

COS = [[0.8, 0.3, -0.2],     # target 0, small angle
       [0.1, 0.5, -0.95],    # target 2, angle beyond π - m (ArcFace fallback, SphereFace k = 1)
       [0.25, -0.4, 0.6]]    # target -1: not among these columns (another rank's shard)
LABELS = [0, 2, -1]


def _expected(target_fn, s):
    out = []
    for i, (row, y) in enumerate(zip(COS, LABELS)):
        out.append([s * (target_fn(c, i) if j == y else c) for j, c in enumerate(row)])
    return torch.tensor(out, dtype=torch.float32)


def _check(head, fn, s, norms=None):
    got = head(torch.tensor(COS), torch.tensor(LABELS), norms)
    torch.testing.assert_close(got, _expected(fn, s), rtol=1e-5, atol=1e-4)


def test_arcface_by_hand():
    m, s = 0.5, 64.0

    def t(c, _):
        theta = math.acos(c)
        if theta + m <= math.pi - 1e-9 and c > math.cos(math.pi - m):
            return math.cos(theta + m)
        return c - math.sin(math.pi - m) * m
    _check(create_head("arcface", s=s, m=m), t, s)
    # the first target by hand: cos(acos(0.8) + 0.5) = 0.8 cos 0.5 - 0.6 sin 0.5
    got = create_head("arcface", s=1.0, m=0.5)(torch.tensor([[0.8]]), torch.tensor([0]))
    assert abs(float(got) - (0.8 * math.cos(0.5) - 0.6 * math.sin(0.5))) < 1e-6


def test_cosface_by_hand():
    _check(create_head("cosface", s=30.0, m=0.35), lambda c, _: c - 0.35, 30.0)


def test_normface_by_hand():
    _check(create_head("normface", s=10.0), lambda c, _: c, 10.0)


def _psi(phi):
    k = math.floor(phi / math.pi)
    return (-1) ** k * math.cos(phi) - 2 * k


def test_sphereface_by_hand():
    m = 1.35
    _check(create_head("sphereface", s=64.0, m=m), lambda c, _: _psi(m * math.acos(c)), 64.0)
    # θ = acos(-0.95) = 2.82, m θ = 3.81 > π: ψ = -cos(3.81) - 2
    assert _psi(m * math.acos(-0.95)) == pytest.approx(-math.cos(m * math.acos(-0.95)) - 2)


def test_combined_by_hand():
    m1, m2, m3 = 1.1, 0.3, 0.2
    _check(create_head("combined", s=64.0, m1=m1, m2=m2, m3=m3),
           lambda c, _: _psi(m1 * math.acos(c) + m2) - m3, 64.0)


def test_adaface_by_hand():
    m, h, s, eps = 0.4, 0.333, 64.0, 1e-3
    head = create_head("adaface", s=s, m=m, h=h)
    norms = torch.tensor([[50.0], [10.0], [30.0]])
    mean0, std0 = 20.0, 100.0
    # training mode: running statistics move first (momentum 0.01), then the margin uses them
    nm = [50.0, 10.0, 30.0]
    mu = sum(nm) / 3
    sd = math.sqrt(sum((x - mu) ** 2 for x in nm) / 2)
    mean, std = 0.99 * mean0 + 0.01 * mu, 0.99 * std0 + 0.01 * sd

    def t(c, i):
        z = max(-1.0, min(1.0, h * (nm[i] - mean) / (std + eps)))
        theta = min(max(math.acos(c) - m * z, eps), math.pi - eps)
        return math.cos(theta) - (m + m * z)
    head.train()
    _check(head, t, s, norms)
    assert float(head.batch_mean) == pytest.approx(mean) and float(head.batch_std) == pytest.approx(std)


@pytest.mark.parametrize("name", REGISTRY.list())
def test_every_head_forward_backward(name):
    torch.manual_seed(0)
    head = create_head(name)
    emb = torch.randn(6, 16, requires_grad=True)
    w = torch.randn(5, 16, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    cos = torch.nn.functional.normalize(emb) @ torch.nn.functional.normalize(w).T
    logits = head(cos, y, emb.norm(dim=1, keepdim=True))
    assert logits.shape == (6, 5) and torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    # a margin never raises the target logit above the plain scaled cosine
    plain = cos.detach() * head.s
    assert (logits.detach()[torch.arange(6), y] <= plain[torch.arange(6), y] + 1e-4).all() or name == "adaface"
