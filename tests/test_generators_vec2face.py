"""vec2face: the official checkpoint layout, a tiny build saved and loaded from a folder, 112×112 on CPU."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthfr.generators import create_generator
from synthfr.generators.vec2face import build_vec2face_net

TINY = {"embed_dim": 32, "depth": 1, "num_heads": 2, "decoder_embed_dim": 32, "decoder_depth": 1,
        "decoder_num_heads": 2, "ddconfig": {"z_channels": 8, "ch": 8, "ch_mult": [1, 1, 2, 2, 4],
                                             "num_res_blocks": 1, "norm_groups": 4}}


def test_full_size_layout_matches_the_release():
    with torch.device("meta"):
        net = build_vec2face_net()
    sd = net.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    # names and shapes of the released vec2face_vit_base_patch16 + VQGAN decoder
    assert shapes["latent_prior_proj_f.weight"] == (768, 512)
    assert shapes["feature_token.weight"] == (49, 1) and shapes["center_token.weight"] == (49, 768)
    assert shapes["token_emb.position_embeddings.weight"] == (50, 768)
    assert shapes["token_emb.position_ids"] == (1, 50)
    assert shapes["patch_embed.proj.weight"] == (768, 3, 16, 16)
    assert shapes["blocks.11.attn.qkv.weight"] == (2304, 768) and "blocks.12.norm1.weight" not in shapes
    assert shapes["blocks.0.mlp.fc1.weight"] == (3072, 768)
    assert shapes["decoder_pos_embed_learned"] == (1, 50, 768)
    assert shapes["decoder_blocks.7.attn.proj.weight"] == (768, 768)
    assert shapes["im_decoder_proj.weight"] == (256, 768)
    assert shapes["im_decoder.conv_in.weight"] == (512, 256, 3, 3)
    assert shapes["im_decoder.up.4.block.0.conv1.weight"] == (512, 512, 3, 3)
    assert shapes["im_decoder.up.3.block.0.nin_shortcut.weight"] == (256, 256, 1, 1)
    assert shapes["im_decoder.up.1.upsample.conv.weight"] == (128, 128, 3, 3) and "im_decoder.up.0.upsample.conv.weight" not in shapes
    assert shapes["im_decoder.conv_out.weight"] == (3, 128, 3, 3)
    assert "im_decoder.up.0.block.0.conv1.bias" not in shapes  # bias-free convs, as released


@pytest.fixture(scope="module")
def vec2face_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vec2face")
    torch.manual_seed(0)
    net = build_vec2face_net(TINY)
    for p in net.parameters():  # random weights with some scale so images are not flat
        torch.nn.init.normal_(p, std=0.2)
    (root / "weights").mkdir()
    # the release's file: a torch.save'd dict with the state dict under "model_vec2face"
    torch.save({"model_vec2face": net.state_dict()}, root / "weights" / "vec2face_generator.pth")
    (root / "config.json").write_text(json.dumps(TINY))
    return root


def test_vec2face_tiny_generates_112(vec2face_dir, torch_threads):
    g = create_generator("vec2face", weights=str(vec2face_dir), device="cpu")
    assert g.dim == 512 and g.differentiable
    v = np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    seeds = np.array([1, 2, 3, 4])
    imgs = g.generate(v, seeds)
    assert imgs.shape == (4, 112, 112, 3) and imgs.dtype == np.uint8 and imgs.std() > 1
    one = g.generate(v[2:3], seeds[2:3])
    assert np.abs(one.astype(int) - imgs[2:3].astype(int)).max() <= 1  # per-image seeds, not batch position
    other = g.generate(v[2:3], [99])  # another seed: another mask draw
    drop_a, mask_a = g.masks([3])
    drop_b, mask_b = g.masks([99])
    assert int(drop_a.sum()) == int(drop_b.sum()) == 5  # ceil(49 * 0.1) tokens dropped
    assert not torch.equal(mask_a, mask_b) and bool((mask_a | ~drop_a).all())  # dropped ⊆ masked
    assert not np.array_equal(other, one)
    # differentiable for AttrOP-style optimisation
    c = torch.from_numpy(v[:2]).requires_grad_(True)
    g.generate_tensor(c, seeds[:2]).mean().backward()
    assert c.grad is not None and float(c.grad.abs().sum()) > 0


def test_vec2face_rejects_a_wrong_checkpoint(tmp_path, vec2face_dir):
    with pytest.raises(FileNotFoundError, match="BooBooWu/Vec2Face"):
        create_generator("vec2face", weights=str(tmp_path))
    (tmp_path / "vec2face_generator.pth").write_bytes((vec2face_dir / "weights" / "vec2face_generator.pth").read_bytes())
    with pytest.raises(ValueError, match="does not match"):  # tiny weights without their config.json
        create_generator("vec2face", weights=str(tmp_path), device="cpu")


def test_vec2face_in_the_pipeline_resumes_exactly(vec2face_dir, tmp_path, torch_threads):
    from synthfr.generation import GenerateConfig, generate_dataset

    v = np.random.default_rng(1).standard_normal((5, 512)).astype(np.float32)
    np.save(tmp_path / "ids.npy", v / np.linalg.norm(v, axis=1, keepdims=True))

    def cfg(out, **kw):
        return GenerateConfig(identities=str(tmp_path / "ids.npy"), out=str(out), images_per_id=3,
                              generator="vec2face", weights=str(vec2face_dir), device="cpu", fsync=False,
                              batch_size=2, **kw)

    generate_dataset(cfg(tmp_path / "a"), progress=False)
    generate_dataset(cfg(tmp_path / "b"), progress=False, stop_after=2)  # an interrupted run...
    s = generate_dataset(cfg(tmp_path / "b", resume=True), progress=False)  # ...resumed
    assert s["identities_skipped"] == 2 and s["complete"]
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file() and "logs" not in p.parts)
    assert len(files) == 15 + 4  # images + config.yaml, identities.npy, manifest.jsonl, README.md (card)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


@pytest.fixture(scope="module")
def vec2face_with_arcface(vec2face_dir, tmp_path_factory):
    """The tiny Vec2Face folder plus a tiny insightface-style iResNet saved as weights/arcface-r100-glint360k.pth
    (a plain torch.save'd state dict, as released)."""
    import shutil

    from synthfr.models.backbones.iresnet import IResNet

    root = tmp_path_factory.mktemp("v2f-arc") / "w"
    shutil.copytree(vec2face_dir, root)
    torch.manual_seed(2)
    net = IResNet((1, 2, 1, 1), embedding_size=512, widths=(8, 8, 16, 16)).eval()
    torch.save(net.state_dict(), root / "weights" / "arcface-r100-glint360k.pth")
    return root, net


def test_arcface_r100_embedder_loads_the_released_layout(vec2face_with_arcface, torch_threads):
    from synthfr.face.embedders import create_embedder

    root, net = vec2face_with_arcface
    emb = create_embedder("arcface-r100-glint360k", weights=str(root), device="cpu")
    assert emb.differentiable and emb.dim == 512
    imgs = np.random.default_rng(0).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ref = torch.nn.functional.normalize(net((x - 0.5) / 0.5), dim=1).numpy()  # insightface's preprocessing
    np.testing.assert_allclose(emb.embed(imgs), ref, atol=1e-5)
    assert emb.fmt == torch.channels_last  # "auto" on CPU; NCHW gives the same embeddings
    nchw = create_embedder("arcface-r100-glint360k", weights=str(root), device="cpu", memory_format="contiguous")
    assert nchw.fmt == torch.contiguous_format and not any(p.requires_grad for p in nchw.parameters())
    np.testing.assert_allclose(nchw.embed(imgs), ref, atol=1e-5)
    with pytest.raises(ValueError, match="weights=DIR"):
        create_embedder("arcface-r100-glint360k")


def test_attrop_with_the_vec2face_generator_in_generate(vec2face_with_arcface, tmp_path, torch_threads):
    """The route configs/vec2face-hsface10k.yaml recommends: AttrOP steering Vec2Face, identity term in its ArcFace
    space (issue 14: it crashed with KeyError: unknown embedder 'arcface-r100-glint360k'); the pose-set layout —
    images 1-2 of 3 steered from σ-mixture starts, image 0 left as its σ-mixture vector."""
    from synthfr.data.manifest import read_manifest
    from synthfr.generation import GenerateConfig, generate_dataset

    root, _ = vec2face_with_arcface
    v = np.random.default_rng(4).standard_normal((2, 512)).astype(np.float32)
    np.save(tmp_path / "ids.npy", v / np.linalg.norm(v, axis=1, keepdims=True))
    spec = (f"attrop:generator=vec2face,weights={root},targets=2:yaw=30,images=1-2,start=vec2face-sigma,"
            "steps=1,batch_size=2")
    cfg = GenerateConfig(identities=str(tmp_path / "ids.npy"), out=str(tmp_path / "ds"), images_per_id=3,
                         generator="vec2face", weights=str(root), variation=spec, seed=2, device="cpu",
                         fsync=False, batch_size=3)
    generate_dataset(cfg, progress=False)
    recs = sorted(read_manifest(tmp_path / "ds" / "manifest.jsonl"), key=lambda r: (r["identity"], r["index"]))
    assert len(recs) == 6
    for r in recs:
        p = r["params"]
        assert p["image_seed"] == r["seed"] and p["start"] == "vec2face-sigma" and p["start_sigma"] in (0.3, 0.5, 0.7)
        if r["index"] == 0:
            assert "met" not in p  # not steered: its σ-mixture vector
        else:
            assert p["steps_taken"] <= 1 and isinstance(p["met"], bool) and abs(p["target"]["yaw"]) == 30
