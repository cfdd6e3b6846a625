"""One-off: the official Vec2Face code vs synthfr's generators/vec2face.py with the same random weights.

Not part of synthfr and never imported by it. Setup and command: docs/benchmarks.md, "Official-code equivalence".
WORK (env EQUIV_DIR, default .) holds the official repository as WORK/vec2face (git archive of HaiyuWu/Vec2Face).
"""
import importlib.abc
import importlib.machinery
import json
from pathlib import Path
import math
import os
import sys
import time
import types

import numpy as np
import torch


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty modules for torchvision.* (timm imports it; the wheel on PyPI for torch 2.13 is CUDA-only here) and
    sixdrepnet (pose loss of the official AttrOP, not used to render)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torchvision", "sixdrepnet"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []

        def ga(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            class _Meta(type):
                def __getattr__(cls, a):
                    if a.startswith("__"):
                        raise AttributeError(a)
                    return f"{attr}.{a}"
            return _Meta(attr, (torch.nn.Module,), {})
        m.__getattr__ = ga
        return m

    def exec_module(self, module):
        pass


WORK = Path(os.environ.get("EQUIV_DIR", ".")).resolve()
sys.meta_path.insert(0, _Stub())
sys.path.insert(0, str(WORK / "vec2face"))
os.chdir(WORK / "vec2face")  # the official constructor reads configs/vec2face/vqgan.yaml relative to the repo
import timm  # noqa: E402
import pixel_generator.vec2face.model_vec2face as official  # noqa: E402

from synthfr.generators import create_generator  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
t0 = time.time()
ref = official.vec2face_vit_base_patch16(mask_ratio_mu=0.15, mask_ratio_std=0.25, mask_ratio_min=0.1,
                                         mask_ratio_max=1.0, use_rep=True, rep_dim=512)
sd = ref.state_dict()
# random weights everywhere (the official init leaves biases 0 and norms 1, which would hide mistakes)
g = torch.Generator().manual_seed(1)
new = {}
for k, v in sd.items():
    if k.endswith("position_ids"):
        new[k] = v
    elif v.ndim >= 2:
        fan_in = int(np.prod(v.shape[1:]))
        new[k] = torch.randn(v.shape, generator=g) / math.sqrt(fan_in)
    elif k.endswith("weight"):
        new[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
    else:
        new[k] = 0.1 * torch.randn(v.shape, generator=g)
new["decoder_pos_embed_learned"] = 0.02 * torch.randn(sd["decoder_pos_embed_learned"].shape, generator=g)
ref.load_state_dict(new)
ref.eval()
keys = {k: list(v.shape) for k, v in new.items()}
wdir = str(WORK / "v2f_weights")
os.makedirs(wdir, exist_ok=True)
torch.save({"model_vec2face": new}, f"{wdir}/vec2face_generator.pth")
json.dump(keys, open(WORK / "vec2face_official_keys.json", "w"))

ours = create_generator("vec2face", weights=wdir, device="cpu")
B, n_tok = 4, 49
rng = np.random.default_rng(0)
cond = rng.standard_normal((B, 512)).astype(np.float32)
cond /= np.linalg.norm(cond, axis=1, keepdims=True)
rep = torch.from_numpy(cond) * math.sqrt(512)  # what synthfr feeds (input_norm = sqrt(512)); official: raw feature
results = {}
for rate in (0.1, 0.37, 0.85):
    noise = torch.rand(B, n_tok, generator=g)
    # official: one mask ratio per batch from scipy (global RNG) and torch.rand noise -> force both
    ref.mask_ratio_generator = types.SimpleNamespace(rvs=lambda n, r=rate: np.array([r]))
    real_rand = torch.rand
    torch.rand = lambda *a, **kw: noise.clone()
    try:
        with torch.no_grad():
            _, _, img_ref, _, _ = ref(rep)
    finally:
        torch.rand = real_rand
    # synthfr: the same masks (rank of each token in the noise order), through the whole generate path
    rank = noise.argsort(dim=1).argsort(dim=1)
    n_drop, n_mask = int(math.ceil(n_tok * 0.1)), int(math.ceil(n_tok * rate))
    masks = (rank < n_drop, rank < n_mask)
    ours.masks = lambda seeds, m=masks: m
    with torch.no_grad():
        img_ours = ours.generate_tensor(cond, np.arange(B))  # [0, 1]
    img_ref01 = ((img_ref + 1) / 2).clamp(0, 1)
    d = float((img_ours - img_ref01).abs().max())
    raw = float((ours.net(rep, *masks) - img_ref).abs().max())
    results[f"mask_rate={rate}"] = {"max_abs_diff_image01": d, "max_abs_diff_raw": raw,
                                    "ref_range": [float(img_ref.min()), float(img_ref.max())]}
    print(rate, d, raw, float(img_ref.std()))
out = {"torch": torch.__version__, "timm": timm.__version__, "official_commit": "9d9fa8c",
       "seconds": time.time() - t0, "results": results}
print(json.dumps(out, indent=1))
json.dump(out, open(WORK / "v2f_equiv.json", "w"), indent=1)
