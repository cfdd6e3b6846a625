"""Backbone sweep (forward/backward at 112×112) and Partial FC against brute force."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from synthfr.models.backbones import REGISTRY as BACKBONES, create_backbone
from synthfr.models.heads import create_head
from synthfr.models.partial_fc import PartialFC, shard_range

# Every registered backbone is swept; the deep variants (same blocks as a faster one, only more of them) are
# marked slow to keep the default suite short on 2 CPU cores: run them with `pytest -m slow`.
SLOW = {"iresnet100", "iresnet_se100", "iresnet50", "iresnet_se50", "iresnet34", "iresnet_se34", "mobilefacenet_large",
        "ir100", "ir_se100", "ir50"}


def _params(name):
    marks = [pytest.mark.slow] if name in SLOW else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_params(n) for n in BACKBONES.list()])
def test_backbone_forward_backward(name, torch_threads):
    torch.manual_seed(0)
    m = create_backbone(name)
    m.train()
    x = torch.randn(2, 3, 112, 112)
    y = m(x)
    dim = getattr(m, "embedding_size", None)
    assert y.shape == (2, dim) and torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    for pname, p in m.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: {pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


def test_backbone_embedding_size_is_configurable():
    m = create_backbone("test_iresnet", embedding_size=64)
    assert m(torch.randn(2, 3, 112, 112)).shape == (2, 64)


def test_registered_families():
    names = set(BACKBONES.list())
    for n in ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet_se50", "mobilefacenet"):
        assert n in names
    assert "ir_se50" in BACKBONES and "r50" in BACKBONES


def test_iresnet50_matches_insightface_size():
    # insightface's iresnet50 has 43.59 M parameters (fc 25088->512); the architecture is the same
    m = create_backbone("iresnet50")
    assert sum(p.numel() for p in m.parameters()) == 43_590_848


@pytest.mark.parametrize("head", ["arcface", "cosface", "adaface"])
def test_partial_fc_full_equals_brute_force(head):
    torch.manual_seed(0)
    pfc = PartialFC(create_head(head), 8, 10, sample_rate=1.0, seed=3)
    e = torch.randn(5, 8, requires_grad=True)
    y = torch.tensor([1, 2, 3, 9, 1])
    loss = pfc(e, y)
    ref_head = create_head(head)
    cos = F.normalize(e) @ F.normalize(pfc.weight).T
    ref = F.cross_entropy(ref_head(cos, y, e.norm(dim=1, keepdim=True)), y)
    torch.testing.assert_close(loss, ref)
    g1 = torch.autograd.grad(loss, e, retain_graph=True)[0]
    g2 = torch.autograd.grad(ref, e)[0]
    torch.testing.assert_close(g1, g2)


def test_partial_fc_sampling_keeps_positives_and_brute_force():
    torch.manual_seed(0)
    pfc = PartialFC(create_head("cosface"), 8, 1000, sample_rate=0.1, seed=1)
    e = torch.randn(6, 8)
    y = torch.tensor([5, 17, 999, 5, 400, 3])
    idx = pfc._sample(torch.unique(y))
    assert set(y.tolist()) <= set(idx.tolist())
    assert 50 < len(idx) < 160  # ~ 0.1 × 1000 + positives
    pfc.step.zero_()
    loss = pfc(e, y)
    cos = F.normalize(e) @ F.normalize(pfc.weight[idx]).T
    yl = torch.searchsorted(idx, y)
    ref = F.cross_entropy(create_head("cosface")(cos, yl), yl)
    torch.testing.assert_close(loss, ref)
    assert pfc.last_num_sampled == len(idx)
    # the next step samples a different set
    assert not torch.equal(pfc._sample(torch.unique(y)), idx)


def test_partial_fc_is_shard_invariant():
    """Init and sampled negatives depend on the global class index only: 1 rank == union of 3 ranks."""
    C, D = 140_000, 2  # spans three seeded chunks of 65536 classes
    full = PartialFC(create_head("arcface"), D, C, sample_rate=0.2, seed=7, rank=0, world=1)
    full.step.fill_(5)
    pos = torch.tensor([3, 4100, 70_000, 139_999])
    ref = full._sample(pos)
    parts, weights = [], []
    for r in range(3):
        p = PartialFC(create_head("arcface"), D, C, sample_rate=0.2, seed=7, rank=r, world=3)
        p.step.fill_(5)
        start, count = shard_range(C, r, 3)
        assert (p.class_start, p.num_local) == (start, count)
        loc = pos[(pos >= start) & (pos < start + count)] - start
        parts.append(p._sample(loc) + start)
        weights.append(p.weight.detach())
    assert torch.equal(torch.cat(parts), ref)
    assert torch.equal(torch.cat(weights), full.weight.detach())


def test_soft_labels_change_the_loss():
    """Identity mixup: the loss is w·CE(a) + (1 − w)·CE(b), not CE(a)."""
    torch.manual_seed(0)
    pfc = PartialFC(create_head("arcface", s=16.0, m=0.3), 8, 6, seed=0)
    e = torch.randn(4, 8)
    la = torch.tensor([0, 1, 2, 3])
    lb = torch.tensor([4, 5, 2, 1])
    w = torch.tensor([0.7, 0.5, 1.0, 0.6])
    soft = pfc(e, torch.stack([la, lb], 1), torch.stack([w, 1 - w], 1))
    hard = pfc(e, la)
    head = create_head("arcface", s=16.0, m=0.3)
    cos = F.normalize(e) @ F.normalize(pfc.weight).T
    ce = lambda y: F.cross_entropy(head(cos, y), y, reduction="none")  # noqa: E731
    ref = (w * ce(la) + (1 - w) * ce(lb)).mean()
    torch.testing.assert_close(soft, ref)
    assert abs(float(soft.detach()) - float(hard.detach())) > 1e-3


def test_mixed_soft_logits_follow_synface_code():
    """``soft_logits="mixed"`` is SynFace's released loss (lib/core/functions.py): margin logits mixed as
    ``ψ(w_a·f(a) + w_b·f(b)) + (1 − ψ)·f(real)``, then ``ψ(w_a·CE_a + w_b·CE_b) + (1 − ψ)·CE_real`` on that one
    matrix; it differs from per-target margins only where a label is soft and the head has a margin."""
    torch.manual_seed(0)
    e, C = torch.randn(5, 8), 9
    la, lb, lr = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6, 2, 1, 0]), torch.tensor([7, 8, 7, 8, 7])
    wa, psi = torch.tensor([0.7, 0.5, 1.0, 0.6, 0.05]), 0.65
    labels = torch.stack([la, lb, lr], 1)
    weights = torch.stack([psi * wa, psi * (1 - wa), torch.full_like(wa, 1 - psi)], 1)
    head = create_head("arcface", s=16.0, m=0.3)
    mixed = PartialFC(head, 8, C, seed=0, soft_logits="mixed")
    per_target = PartialFC(create_head("arcface", s=16.0, m=0.3), 8, C, seed=0)
    cos = F.normalize(e) @ F.normalize(mixed.weight).T
    f = lambda y: head(cos, y)  # noqa: E731
    out = psi * (wa[:, None] * f(la) + (1 - wa)[:, None] * f(lb)) + (1 - psi) * f(lr)
    ce = lambda y: F.cross_entropy(out, y, reduction="none")  # noqa: E731
    ref = (psi * (wa * ce(la) + (1 - wa) * ce(lb)) + (1 - psi) * ce(lr)).mean()
    torch.testing.assert_close(mixed(e, labels, weights), ref)
    assert abs(float(mixed(e, labels, weights).detach() - per_target(e, labels, weights).detach())) > 1e-3
    # hard labels, and a head without margin: the two are the same loss
    torch.testing.assert_close(mixed(e, la), per_target(e, la))
    plain = {m: PartialFC(create_head("arcface", s=16.0, m=0.0), 8, C, seed=0, soft_logits=m)
             for m in ("mixed", "per-target")}
    torch.testing.assert_close(plain["mixed"](e, labels, weights), plain["per-target"](e, labels, weights))
    with pytest.raises(ValueError, match="soft_label_logits must be one of per-target, mixed"):
        PartialFC(head, 8, C, soft_logits="synface")


def test_virtual_classes_enter_the_loss():
    """VIGFace: virtual rows get no samples but are negatives in every softmax and receive gradients."""
    torch.manual_seed(0)
    e = torch.randn(4, 8)
    y = torch.tensor([0, 1, 2, 3])
    plain = PartialFC(create_head("arcface"), 8, 4, seed=0)
    virt = PartialFC(create_head("arcface"), 8, 4 + 3, seed=0)
    assert torch.equal(virt.weight.detach()[:4], plain.weight.detach())  # same real rows
    lv = virt(e, y)
    assert float(lv.detach()) > float(plain(e, y).detach())  # extra negatives raise the loss
    lv.backward()
    assert (virt.weight.grad[4:].abs().sum(dim=1) > 0).all()
