"""AttrOP: bounded attribute steering of condition vectors (tiny generator, pose net and embedder)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthfr.genmodel.model import FaceGenerator, GenModelConfig

TINY = GenModelConfig(width=32, depth=1, heads=2, z_dim=8, dec_channels=(16, 8, 8), dec_residual=(False, True, False),
                      enc_channels=(8, 8, 16, 16), chunk=4)


@pytest.fixture(scope="module")
def tiny_gen_dir(tmp_path_factory):
    """A weights folder of a tiny random ``synthfr-small`` (loads through the registry like the real one)."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("w") / "gen"
    folder.mkdir()
    torch.manual_seed(0)
    g = FaceGenerator(TINY, with_encoder=False)
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"dim": 128, "model": TINY.to_json()}))
    return folder


@pytest.fixture(scope="module")
def parts(tiny_gen_dir):
    from synthfr.face.pose import PoseConfig, PoseNet
    from synthfr.generators import create_generator
    from synthfr.face.embedders.testing import TinyEmbedder

    gen = create_generator("synthfr-small", weights=tiny_gen_dir)
    torch.manual_seed(1)
    pose = PoseNet(PoseConfig(channels=(8, 8, 16, 16))).eval()
    for p in pose.parameters():
        p.requires_grad_(False)
    return gen, pose, TinyEmbedder()


def _ids(n=2, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_parse_targets_and_signs():
    from synthfr.variations.attrop import AttrOP, parse_targets

    assert parse_targets("20:yaw=60, 10:yaw=85:pitch=5") == [(20, {"yaw": 60.0}), (10, {"yaw": 85.0, "pitch": 5.0})]
    with pytest.raises(ValueError, match="N:key=value"):
        parse_targets("20:roll=3")
    a = AttrOP(targets="2:yaw=30,1:quality=1.5")
    assert [a.target_of(k) for k in range(4)] == [{"yaw": 30}, {"yaw": -30}, {"quality": 1.5}, None]


def test_attrop_respects_step_bound_and_records_flags(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(2)
    # unreachable target: every optimised image takes exactly the bound and is flagged as not met
    a = AttrOP.with_components(gen, pose, emb, targets="2:yaw=1000", steps=3, step_size=0.05, id_bound=2.0)
    res = a(x, 3, seed=7)
    assert res.conditions.shape == (6, 128)
    for r, p in enumerate(res.params):
        if r % 3 < 2:
            assert p["steps_taken"] == 3 and p["step_bound"] == 3 and p["met"] is False
            assert p["target"]["yaw"] == (1000 if r % 3 == 0 else -1000)
            # every step has length step_size on the sphere: the vector moved, but at most steps·step_size
            d = float(np.linalg.norm(res.conditions[r] - x[r // 3]))
            assert 0 < d <= 3 * 0.05 + 1e-5
        else:  # images beyond the target groups keep the identity vector
            np.testing.assert_allclose(res.conditions[r], x[r // 3], atol=1e-6)
            assert "met" not in p and "image_seed" in p
    # same inputs, same outputs (optimisation is deterministic)
    np.testing.assert_array_equal(a(x, 3, seed=7).conditions, res.conditions)


def test_attrop_stops_as_soon_as_target_is_met(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(1)
    a = AttrOP.with_components(gen, pose, emb, targets="2:yaw=0", steps=5, tol_deg=1e6, id_bound=2.0)
    res = a(x, 2, seed=1)
    assert all(p["met"] and p["steps_taken"] == 0 for p in res.params)
    np.testing.assert_allclose(res.conditions, np.repeat(x, 2, 0), atol=1e-6)


def test_attrop_uses_given_image_seeds(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(1)
    a = AttrOP.with_components(gen, pose, emb, targets="1:yaw=50", steps=2)
    res = a.apply_to(x, [0], 1, seed=0, image_seeds=np.array([[1234]]))
    assert res.params[0]["image_seed"] == 1234 and res.params[0]["steps_taken"] <= 2


def test_attrop_apply_rows_matches_full_run(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(3, seed=4)
    a = AttrOP.with_components(gen, pose, emb, targets="1:yaw=40", steps=2)
    full = a(x, 2, seed=9)
    sub = a.apply(x, 2, 9, rows=[2])
    np.testing.assert_array_equal(sub.conditions, full.conditions[4:6])
    assert sub.params == full.params[4:6]


def test_attrop_pose_eot_is_per_image_deterministic_and_changes_the_pose_term(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(3, seed=5)
    kw = dict(targets="1:yaw=40", steps=2, id_bound=2.0)
    plain = AttrOP.with_components(gen, pose, emb, **kw)(x, 1, seed=2)
    eot = AttrOP.with_components(gen, pose, emb, pose_eot=3, **kw)
    full = eot(x, 1, seed=2)
    assert full.params[0]["yaw"] != plain.params[0]["yaw"]  # averaged over transformed copies
    assert all(p["steps_taken"] <= 2 for p in full.params)
    # an image's transforms come from its own seed: the same result alone and in a batch
    np.testing.assert_array_equal(eot.apply(x, 1, 2, rows=[1]).conditions, full.conditions[1:2])
    np.testing.assert_array_equal(eot(x, 1, seed=2).conditions, full.conditions)


def test_generate_with_attrop_writes_the_optimised_image(tiny_gen_dir, tmp_path, torch_threads):
    """`synthfr generate --variation attrop`: every written image is the one AttrOP optimised (same seed, same
    condition), so its params (yaw, met, ...) describe the file on disk."""
    from PIL import Image

    from synthfr.data.manifest import read_manifest
    from synthfr.generation import GenerateConfig, generate_dataset
    from synthfr.generators import create_generator
    from synthfr.variations import create_variation

    from synthfr.spaces import EmbeddingSpace

    np.save(tmp_path / "ids.npy", _ids(2, seed=3))
    # identities from `synthfr sample` carry a (here: centred) standardisation; AttrOP must still steer the
    # generator's own input, not the standardised vectors
    cap = _ids(50, seed=8) * 0.3 + np.eye(128, dtype=np.float32)[0]
    EmbeddingSpace.fit(cap).save(tmp_path / "ids.npy")
    spec = f"attrop:generator=synthfr-small,weights={tiny_gen_dir},targets=2:yaw=30,steps=2,batch_size=2"
    cfg = GenerateConfig(identities=str(tmp_path / "ids.npy"), out=str(tmp_path / "ds"), images_per_id=3,
                         generator="synthfr-small", weights=str(tiny_gen_dir), variation=spec, seed=5,
                         image_format="png", device="cpu", fsync=False)
    generate_dataset(cfg, progress=False)
    recs = sorted(read_manifest(tmp_path / "ds" / "manifest.jsonl"), key=lambda r: (r["identity"], r["index"]))
    assert len(recs) == 6
    for r in recs:
        assert r["params"]["image_seed"] == r["seed"]  # optimised for the seed the image was rendered with
    steered = [r for r in recs if r["index"] < 2]
    assert all("met" in r["params"] and r["params"]["steps_taken"] <= 2 for r in steered)
    # re-run AttrOP for those seeds and render: the pixels on disk are exactly that image
    seeds = np.array([[r["seed"] for r in recs if r["identity"] == i] for i in (0, 1)], dtype=np.int64)
    var = create_variation("attrop", generator="synthfr-small", weights=str(tiny_gen_dir), targets="2:yaw=30",
                           steps=2, batch_size=2)
    res = var.apply_to(np.load(tmp_path / "ids.npy"), [0, 1], 3, 0, image_seeds=seeds)
    gen = create_generator("synthfr-small", weights=str(tiny_gen_dir), device="cpu")
    imgs = gen.generate(res.conditions, seeds.reshape(-1))
    for j, r in enumerate(recs):
        disk = np.asarray(Image.open(tmp_path / "ds" / r["path"]).convert("RGB"))
        assert np.array_equal(disk, imgs[j]), r["path"]
        for key in ("yaw", "met", "id_cos"):
            assert r["params"].get(key) == res.params[j].get(key)


def test_attrop_images_choose_the_steered_indices():
    """Vec2Face's pose set replaces 30 of 50 images per identity: `images` picks which indices are steered."""
    from synthfr.variations.attrop import AttrOP, parse_indices

    assert parse_indices("20-22+40") == [20, 21, 22, 40] and parse_indices(None) is None
    a = AttrOP(targets="1:yaw=30;1:yaw=60", images="2-3")
    assert [a.target_of(k) for k in range(5)] == [None, None, {"yaw": 30}, {"yaw": -60}, None]
    paper = AttrOP(targets="30:yaw=60", images="20-49")
    steered = [k for k in range(50) if paper.target_of(k) is not None]
    assert steered == list(range(20, 50))
    with pytest.raises(ValueError, match="make them agree"):
        AttrOP(targets="30:yaw=60", images="0-9")
    with pytest.raises(ValueError, match="ranges A-B"):
        AttrOP(images="x-y")


def test_attrop_start_variation_and_unknown_embedder(parts):
    from synthfr.variations.attrop import AttrOP

    gen, pose, emb = parts
    x = _ids(2, seed=6)
    a = AttrOP.with_components(gen, pose, emb, targets="1:yaw=20", images="1", start="vec2face-sigma", steps=1)
    res = a(x, 3, seed=4)
    cos = (res.conditions * x[res.identity]).sum(1)
    assert all(p["start"] == "vec2face-sigma" for p in res.params)
    assert (cos[[0, 2, 3, 5]] < 0.999).all()  # unsteered images keep their σ-mixture vectors, not the identity
    assert all("met" in res.params[r] for r in (1, 4)) and "met" not in res.params[0]

    class NoEmb:
        embedder = "no-such-embedder"
    with pytest.raises(ValueError, match="not registered"):
        AttrOP()._embedder(NoEmb(), None)


def test_attrop_steers_the_generator_that_renders_even_with_options():
    """A bare generator name (the default) shares the dataset's generator built with options; explicit other
    options, another name or other weights do not."""
    import torch

    from synthfr.variations.attrop import AttrOP

    class Gen:
        differentiable = True
        device = torch.device("cpu")

    g, a = Gen(), AttrOP()
    assert a.share_generator(g, "synthfr-v2:z_scale=1", None) and a._shared_generator is g
    assert AttrOP(generator="synthfr-v2").share_generator(g, "synthfr-v2", None)
    assert not AttrOP(generator="synthfr-v2:z_scale=2").share_generator(g, "synthfr-v2:z_scale=1", None)
    assert not AttrOP(generator="synthfr-v2").share_generator(g, "synthfr-small:z_scale=1", None)
    assert not AttrOP(generator="synthfr-v2").share_generator(g, "synthfr-v2", "/some/weights")
