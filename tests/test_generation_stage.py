"""The pieces of the generation stage (synthfr.generation): identities with their space, the per-image plan
(conditions + render seeds), the checks' verdicts. The whole loop is tested in test_generate.py and its
bytes in test_generate_digest.py."""
from __future__ import annotations

import numpy as np
import pytest

from synthfr.generation.checks import ImageChecks, Verdict
from synthfr.generation.identities import load_identities
from synthfr.generation.plan import ImagePlan, image_seed
from synthfr.spaces import EmbeddingSpace


def _unit(n, d, seed):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def ids_with_space(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, _unit(6, 16, 0) * 0.3 + _unit(1, 16, 1))
    EmbeddingSpace.fit(_unit(40, 16, 2) * 0.3 + _unit(1, 16, 1)).save(path)
    return path


def test_identities_carry_their_space(ids_with_space, tmp_path):
    ids = load_identities(str(ids_with_space), limit=4)
    assert ids.shape == (4, 16) and len(ids.space_files) == 2
    sp = EmbeddingSpace.load(ids_with_space)
    np.testing.assert_array_equal(ids.standard, sp.to_standard(np.load(ids_with_space)[:4]))
    assert ids.standard is ids.standard  # computed once
    np.testing.assert_allclose(ids.from_standard(ids.standard), ids.vectors / np.linalg.norm(ids.vectors, axis=1,
                                                                                              keepdims=True), atol=1e-5)
    assert set(ids.space_copies()) == {"identities.space.json", "identities.space.npz"}
    assert b'"arrays": "identities.space.npz"' in ids.space_copies()["identities.space.json"]
    np.save(tmp_path / "plain.npy", _unit(3, 16, 4))
    plain = load_identities(str(tmp_path / "plain.npy"))
    assert plain.space is None and plain.standard is plain.vectors and plain.space_record() is None


def test_plan_gives_conditions_and_render_seeds_independent_of_chunking(ids_with_space):
    ids = load_identities(str(ids_with_space))
    plan = ImagePlan("vec2face-sigma", ids, 3, seed=9)
    whole = plan.rows(np.arange(6))
    parts = plan.rows(np.array([4, 5])) + plan.rows(np.array([0, 1, 2, 3]))
    by_row = {p.row: p for p in parts}
    for p in whole:
        q = by_row[p.row]
        np.testing.assert_array_equal(p.conditions, q.conditions)
        assert p.seeds == q.seeds == [image_seed(9, p.row, k) for k in range(3)]
        assert p.labels == [p.row] * 3 and [x["sigma"] for x in p.params] == [x["sigma"] for x in q.params]
    # the σ-mixture is applied in the standardised space and handed back in the generator's space
    std = ids.standard
    back = EmbeddingSpace.load(ids_with_space).to_standard(whole[0].conditions)
    cos = back @ std[0]
    np.testing.assert_allclose(sorted(cos), sorted(x["cos"] for x in whole[0].params), atol=1e-4)
    none = ImagePlan(None, ids, 2, seed=9).rows(np.array([1]))[0]
    np.testing.assert_array_equal(none.conditions, np.repeat(ids.vectors[1:2], 2, axis=0))


def test_attrop_shares_only_the_generator_it_is_configured_for(ids_with_space):
    class Net:
        differentiable, device, name = True, "cpu", "synthfr-v2"

    ids = load_identities(str(ids_with_space))
    net = Net()
    shared = ImagePlan("attrop:steps=1", ids, 2, seed=0, generator=net, generator_spec="synthfr-v2").variation
    assert shared._shared_generator is net
    other = ImagePlan("attrop:steps=1", ids, 2, seed=0, generator=net, generator_spec="synthfr-small").variation
    assert other._shared_generator is None  # another network renders the images: AttrOP loads its own
    weights = ImagePlan("attrop:steps=1", ids, 2, seed=0, generator=net, generator_spec="synthfr-v2",
                        weights="/elsewhere").variation
    assert weights._shared_generator is None


def test_checks_give_a_verdict_per_image():
    class Embedder:
        dim = 2

        def embed(self, images):
            return np.asarray([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)

    class Aligner:
        def errors(self, images):
            return np.array([1.0, np.inf, 9.0])

    ident = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    v = ImageChecks(ident, min_sim=0.5, embedder=Embedder(), align_max=5.0, aligner=Aligner())(
        np.zeros((3, 4, 4, 3), np.uint8), [0, 1, 0])
    assert [x.passed for x in v] == [True, False, False]
    assert v[1].fail_sim and v[1].fail_align and v[1].align_error is None  # no face found
    assert v[2].fail_align and not v[2].fail_sim and v[2].similarity == pytest.approx(0.6)
    assert v[0].score > v[2].score > v[1].score  # the kept attempt, when all fail, is the best scored
    assert not ImageChecks(ident).active and Verdict().passed
