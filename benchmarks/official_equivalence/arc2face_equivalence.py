"""One-off (not part of synthfr, never imported by it): the official Arc2Face code (arc2face/models.py
CLIPTextModelWrapper + utils.project_face_embs + diffusers' StableDiffusionPipeline, as in its README) vs
synthfr's generators/arc2face.py, with the same tiny random weights.

Three stages in two environments (docs/benchmarks.md, "Official-code equivalence"); WORK = env EQUIV_DIR
(default .) holds the official repository as WORK/arc2face (git archive of foivospar/Arc2Face).
  build, official: transformers 4.36.0 + diffusers 0.29.2 (the repository's pins; the release was saved by 4.x)
  compare:         synthfr's environment
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

OUT = Path(os.environ.get("EQUIV_DIR", ".")).resolve()
# FULL=1: the released sizes (SD-1.5 UNet, CLIP ViT-L/14 text encoder, 64x64 latents), one face, one step
FULL = os.environ.get("FULL", "0") == "1"
W = OUT / ("a2f_weights_full" if FULL else "a2f_weights")
TAG = "_full" if FULL else ""
B, STEPS = (1, (1,)) if FULL else (3, (1, 3))
LAT = 64 if FULL else 16
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
                  "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False}
torch.set_num_threads(1)


def tokenizer(folder: Path) -> None:
    """A CLIP BPE vocabulary that knows the words of Arc2Face's prompt (SD-1.5's tokenizer/ layout)."""
    words = ["photo", "of", "a", "id", "person"]
    vocab, merges = {}, []

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


def build():
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from synthfr.generators.base import per_sample_randn

    shutil.rmtree(W, ignore_errors=True)
    torch.manual_seed(0)
    tokenizer(W / "tokenizer")
    vs = len(json.loads((W / "tokenizer" / "vocab.json").read_text()))
    # CLIP width 768 as the real encoder (the 512-D face vector is zero-padded), two layers instead of 12
    layers, inter = (12, 3072) if FULL else (2, 256)
    enc = CLIPTextModel(CLIPTextConfig(vocab_size=vs, hidden_size=768, intermediate_size=inter,
                                       num_hidden_layers=layers, num_attention_heads=12, max_position_embeddings=77,
                                       bos_token_id=vs - 2, eos_token_id=vs - 1, pad_token_id=vs - 1))
    with torch.no_grad():  # random LayerNorms too
        for n, p in enc.named_parameters():
            if "layer_norm" in n:
                p.add_(0.1 * torch.randn_like(p))
    enc.save_pretrained(W / "encoder")
    if FULL:  # Arc2Face's UNet = SD-1.5's (tests/data/arc2face_release_keys.json)
        cfg = json.loads((Path(__file__).resolve().parents[2] / "tests" / "data" / "arc2face_release_keys.json"
                          ).read_text())["unet_config"]
        unet = UNet2DConditionModel(**cfg)
    else:
        unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                    block_out_channels=(32, 64), norm_num_groups=8, cross_attention_dim=768,
                                    attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    with torch.no_grad():  # diffusers zero-initialises conv_out and some projections: make every weight random
        for n, p in unet.named_parameters():
            p.add_((0.01 if FULL else 0.05) * torch.randn_like(p))
    unet.save_pretrained(W / "arc2face")
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8, layers_per_block=1, sample_size=32)
    vae.save_pretrained(W / "vae")
    (W / "scheduler").mkdir()
    (W / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER))
    rng = np.random.default_rng(0)
    cond = rng.standard_normal((B, 512)).astype(np.float32)
    cond /= np.linalg.norm(cond, axis=1, keepdims=True)
    seeds = np.array([11, 12, 13])[:B]
    lat = per_sample_randn(seeds, (4, LAT, LAT), device=torch.device("cpu"), dtype=torch.float32)
    torch.save({"cond": torch.from_numpy(cond), "seeds": torch.from_numpy(seeds), "latents": lat},
               OUT / f"a2f_inputs{TAG}.pt")


def official():
    import diffusers
    import transformers
    from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTokenizer

    from arc2face import CLIPTextModelWrapper, project_face_embs

    inp = torch.load(OUT / f"a2f_inputs{TAG}.pt")
    encoder = CLIPTextModelWrapper.from_pretrained(W / "encoder", torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(W / "arc2face", torch_dtype=torch.float32)
    sched = DPMSolverMultistepScheduler.from_config(json.loads((W / "scheduler" / "scheduler_config.json").read_text()))
    pipe = StableDiffusionPipeline(vae=AutoencoderKL.from_pretrained(W / "vae"), text_encoder=encoder,
                                   tokenizer=CLIPTokenizer.from_pretrained(W / "tokenizer"), unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    # project_face_embs indexes with a 1×77 mask: it takes one face at a time (the README passes one)
    id_emb = torch.cat([project_face_embs(pipe, inp["cond"][i:i + 1]) for i in range(len(inp["cond"]))])
    res = {"id_emb": id_emb, "versions": {"transformers": transformers.__version__, "diffusers": diffusers.__version__}}
    for steps in STEPS:
        eps = []
        h = unet.register_forward_hook(lambda m, i, o: eps.append((o[0] if isinstance(o, tuple) else o.sample).detach().clone()))
        img = pipe(prompt_embeds=id_emb, num_inference_steps=steps, guidance_scale=3.0,
                   latents=inp["latents"].clone(), output_type="pt").images
        h.remove()
        res[f"img_{steps}"], res[f"eps0_{steps}"] = img, eps[0]
    torch.save(res, OUT / f"a2f_official{TAG}.pt")
    print("official done", res["versions"])


def compare():
    import diffusers
    import transformers

    from synthfr.generators import create_generator

    inp = torch.load(OUT / f"a2f_inputs{TAG}.pt")
    ref = torch.load(OUT / f"a2f_official{TAG}.pt")
    out = {"versions": {"official": ref["versions"],
                        "synthfr": {"transformers": transformers.__version__, "diffusers": diffusers.__version__,
                                    "torch": torch.__version__}}}
    for steps in STEPS:
        gen = create_generator("arc2face", weights=str(W), device="cpu", steps=steps, guidance=3.0, scheduler="dpm",
                               dtype="float32", align="resize")
        with torch.no_grad():
            emb = gen.encode(inp["cond"])
        eps = []
        h = gen.unet.register_forward_hook(lambda m, i, o: eps.append((o[0] if isinstance(o, tuple) else o.sample).detach().clone()))
        img = gen.sample(inp["cond"], inp["seeds"].numpy())
        h.remove()
        out[f"steps={steps}"] = {
            "conditioning (77x768 prompt embeds)": float((emb - ref["id_emb"]).abs().max()),
            "first UNet output (CFG batch)": float((eps[0] - ref[f"eps0_{steps}"]).abs().max()),
            "image [0,1]": float((img - ref[f"img_{steps}"]).abs().max()),
            "conditioning scale (max abs)": float(ref["id_emb"].abs().max()),
        }
    print(json.dumps(out, indent=1))
    json.dump(out, open(OUT / f"a2f_equiv{TAG}.json", "w"), indent=1)


{"build": build, "official": official, "compare": compare}[sys.argv[1]]()
