"""The generator contract, the test_* generators, and a sweep over every registered generator."""
from __future__ import annotations

import numpy as np
import pytest

from synthfr.generators import REGISTRY, create_generator
from synthfr.generators.base import Generator, hash_folder, per_sample_randn, require_weights
from synthfr.face.embedders.testing import PatternDecoder
from synthfr.generators.testing import is_planted_bad

# generators that need weights (tested in their own files with tiny builds)
NEEDS_WEIGHTS = {"arc2face", "vec2face"}


def _unit(n, d, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("name", [n for n in REGISTRY.list() if n not in NEEDS_WEIGHTS])
def test_registered_generator_contract(name):
    try:
        g = create_generator(name, device="cpu")
    except FileNotFoundError as e:  # a generator whose weights are not installed must say where to get them
        assert "weights" in str(e)
        pytest.skip(f"{name}: weights not available here")
    assert isinstance(g, Generator) and g.image_size == 112
    d = g.dim or 128
    v, seeds = _unit(5, d), np.arange(100, 105, dtype=np.int64)
    imgs = g.generate(v, seeds)
    assert imgs.shape == (5, 112, 112, 3) and imgs.dtype == np.uint8
    # the same (condition, seed) gives the same pixels in any batch
    again = g.generate(v[[3, 1]], seeds[[3, 1]])
    tol = 0 if getattr(g, "batch_invariant", False) else 1
    assert np.abs(again.astype(int) - imgs[[3, 1]].astype(int)).max() <= tol
    assert g.weights_sha256 is None or len(g.weights_sha256) == 64
    assert REGISTRY.describe(name)


def test_pattern_encodes_its_vector_and_is_differentiable():
    import torch

    g = create_generator("test_pattern")
    v = _unit(8, 256, seed=3)
    imgs = g.generate(v, np.arange(8))
    e = PatternDecoder(256).embed(imgs)
    sims = e @ v.T
    assert np.all(np.diag(sims) > 0.97) and np.all(np.abs(sims - np.diag(np.diag(sims))) < 0.5)
    # the seed only adds faint noise: same vector, other seed -> almost the same picture
    other = g.generate(v[:1], [12345])
    diff = np.abs(other.astype(int) - imgs[:1].astype(int))
    assert 0 < diff.max() <= 12
    c = torch.from_numpy(v[:2]).requires_grad_(True)
    out = g.generate_tensor(c, [0, 1])
    assert out.shape == (2, 3, 112, 112) and 0 <= float(out.min()) and float(out.max()) <= 1
    out.sum().backward()
    assert float(c.grad.abs().sum()) > 0
    # generate() is generate_tensor() rounded to uint8
    assert np.array_equal(g.generate(v[:2], [0, 1]),
                          (out.detach().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))


def test_flaky_plants_bad_images_for_a_fixed_fraction_of_seeds():
    g = create_generator("test_flaky", bad_fraction=0.3)
    seeds = np.arange(400)
    bad = np.array([is_planted_bad(int(s), 0.3) for s in seeds])
    assert 0.2 < bad.mean() < 0.4
    v = np.repeat(_unit(1, 64), 400, axis=0)
    sims = PatternDecoder(64).embed(g.generate(v, seeds)) @ v[0]
    assert np.all(sims[~bad] > 0.95) and np.all(sims[bad] < 0.6)


def test_per_sample_noise_is_batch_independent():
    a = per_sample_randn([5, 6, 7], (4, 3))
    b = per_sample_randn([7], (4, 3))
    assert a.shape == (3, 4, 3) and bool((a[2] == b[0]).all()) and not bool((a[0] == a[1]).all())


def test_weights_errors_and_hash(tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights"):
        require_weights(None, ["x"], generator="g", help="Get them at X.")
    with pytest.raises(FileNotFoundError, match="Get them at X"):
        require_weights(tmp_path / "missing", ["x"], generator="g", help="Get them at X.")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.bin").write_bytes(b"abc")
    with pytest.raises(FileNotFoundError, match="b.json or c.json"):
        require_weights(tmp_path / "w", ["a.bin", "b.json|c.json"], generator="g", help="")
    h1 = hash_folder(tmp_path / "w")
    (tmp_path / "w" / "a.bin").write_bytes(b"abd")
    h2 = hash_folder(tmp_path / "w")
    assert h2 != h1 and len(h1) == 64
    (tmp_path / "w" / "MODEL_CARD.md").write_text("# card\n")  # documents are not weights
    assert hash_folder(tmp_path / "w") == h2
    with pytest.raises(ValueError, match="no option"):
        create_generator("test_pattern", steps=3)
