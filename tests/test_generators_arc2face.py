"""arc2face built from a folder of tiny random weights in the official layout (diffusers + transformers)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

SD15_SCHEDULER = {  # stable-diffusion-v1-5/scheduler/scheduler_config.json
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None, "clip_sample": False,
}


def _tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE vocabulary that knows just the words of Arc2Face's prompt (SD-1.5's tokenizer/ layout)."""
    words = ["photo", "of", "a", "id", "person"]
    vocab: dict[str, int] = {}
    merges: list[str] = []

    def add(t):
        vocab.setdefault(t, len(vocab))

    for c in "abcdefghijklmnopqrstuvwxyz":
        add(c)
        add(c + "</w>")
    for w in words:
        syms = list(w[:-1]) + [w[-1] + "</w>"]
        cur = syms[0]
        for s in syms[1:]:
            if f"{cur} {s}" not in merges:
                merges.append(f"{cur} {s}")
            cur += s
            add(cur)
    add("<|startoftext|>")
    add("<|endoftext|>")
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>",
         "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer"}))


@pytest.fixture(scope="module")
def arc2face_dir(tmp_path_factory) -> Path:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("arc2face")
    torch.manual_seed(0)
    hidden = 512  # >= the 512-D ArcFace vector (768 in the real encoder)
    _tiny_tokenizer(root / "tokenizer")
    vocab_size = len(json.loads((root / "tokenizer" / "vocab.json").read_text()))
    enc = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=64,
                                       num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=77,
                                       bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                                       pad_token_id=vocab_size - 1))
    enc.save_pretrained(root / "encoder")
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 32), norm_num_groups=8, cross_attention_dim=hidden,
                                attention_head_dim=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    unet.save_pretrained(root / "arc2face")
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        norm_num_groups=8, layers_per_block=1, sample_size=64)
    vae.save_pretrained(root / "vae")
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER))
    return root


def _vecs(n, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_arc2face_tiny_generates_112(arc2face_dir, torch_threads):
    from synthfr.generators import create_generator

    g = create_generator("arc2face", weights=str(arc2face_dir), device="cpu", steps=3, align="resize")
    assert g.dim == 512 and len(g.weights_sha256) == 64
    v, seeds = _vecs(3), np.array([11, 22, 33])
    imgs = g.generate(v, seeds)
    assert imgs.shape == (3, 112, 112, 3) and imgs.dtype == np.uint8
    assert imgs.std() > 0
    # per-image determinism: image 1 alone equals image 1 of the batch; another seed differs
    one = g.generate(v[1:2], seeds[1:2])
    assert np.abs(one.astype(int) - imgs[1:2].astype(int)).max() <= 1
    assert not np.array_equal(g.generate(v[1:2], [23]), one)
    # the identity vector reaches the UNet: the prompt embedding differs between vectors at the id token only
    import torch

    e = g.encode(torch.from_numpy(v[:2]))
    diff = (e[0] - e[1]).abs().sum(-1)
    pos = int((g._prompt_ids[0] == g._id_token_id).nonzero()[0, 0])
    assert float(diff[:pos].max()) == 0.0 and float(diff[pos]) > 0  # causal: tokens before "id" unchanged


def test_arc2face_detect_align_falls_back_on_random_weights(arc2face_dir, torch_threads):
    from synthfr.generators import create_generator

    g = create_generator("arc2face", weights=str(arc2face_dir), device="cpu", steps=2, guidance=1.0,
                         scheduler="ddim")
    imgs = g.generate(_vecs(1), [5])
    assert imgs.shape == (1, 112, 112, 3)
    assert g.align_fallbacks == 1  # random weights draw no face: resized instead


def test_arc2face_missing_weights_say_where_to_get_them(tmp_path, arc2face_dir):
    from synthfr.generators import create_generator

    with pytest.raises(FileNotFoundError, match="docs/generators.md"):
        create_generator("arc2face", weights=str(tmp_path / "nope"))
    (tmp_path / "partial" / "arc2face").mkdir(parents=True)
    (tmp_path / "partial" / "arc2face" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model"):
        create_generator("arc2face", weights=str(tmp_path / "partial"))


def test_arc2face_in_the_pipeline(arc2face_dir, tmp_path, torch_threads):
    from synthfr.data.manifest import read_manifest
    from synthfr.generation import GenerateConfig, generate_dataset

    np.save(tmp_path / "ids.npy", _vecs(2))
    cfg = GenerateConfig(identities=str(tmp_path / "ids.npy"), out=str(tmp_path / "ds"), images_per_id=2,
                         generator="arc2face:steps=2,align=resize", weights=str(arc2face_dir), device="cpu",
                         fsync=False, seed=1)
    s = generate_dataset(cfg, progress=False)
    assert s["images"] == 4 and s["complete"]
    recs = read_manifest(tmp_path / "ds" / "manifest.jsonl")
    assert recs[0]["generator"] == "arc2face" and len(recs[0]["weights_sha256"]) == 64
    from PIL import Image

    assert Image.open(tmp_path / "ds" / recs[3]["path"]).size == (112, 112)
