"""NCHW against NHWC for the ``arcface-r100-glint360k`` embedder on CPU (docs/benchmarks.md, "arcface-r100").

The Vec2Face weights are not on this machine, so a random-weight iResNet-100 stands in (the same layers and
sizes, saved as the released ``.pth``); BatchNorm statistics come from one batch so eval-mode activations stay
finite. Both layouts embed the same images, interleaved round by round; the first round is a warm-up.

    PYTHONPATH=src python benchmarks/r100_layout.py --rounds 4
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from synthfr.models.backbones import create_backbone
from synthfr.models.embedders import ArcFaceR100

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--images", type=int, default=32)
args = ap.parse_args()

torch.manual_seed(0)
net = create_backbone("iresnet100")
for m in net.modules():
    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        m.momentum = None  # cumulative average: the statistics of the one calibration batch
        m.reset_running_stats()
net.train()
with torch.no_grad():
    net(torch.rand(16, 3, 112, 112) * 2 - 1)
net.eval()
pth = Path(tempfile.mkdtemp()) / "arcface-r100-glint360k.pth"
torch.save(net.state_dict(), pth)
imgs = np.random.default_rng(0).integers(0, 255, (args.images, 112, 112, 3), dtype=np.uint8)
embs = {f: ArcFaceR100(weights=pth, device="cpu", memory_format=f) for f in ("contiguous", "channels_last")}
t: dict[str, list[float]] = {f: [] for f in embs}
out = {}
for _ in range(args.rounds):
    for f, e in embs.items():
        t0 = time.perf_counter()
        out[f] = e.embed(imgs, batch_size=args.images)
        t[f].append(time.perf_counter() - t0)
med = {f: float(np.median(v[1:] if len(v) > 1 else v)) for f, v in t.items()}
for f, v in t.items():
    print(f"{f:14s} median {med[f]:.2f} s / {args.images} images   rounds {[round(x, 2) for x in v]}")
print(f"finite: {all(np.isfinite(o).all() for o in out.values())}  max |diff| "
      f"{float(np.abs(out['contiguous'] - out['channels_last']).max()):.1e}  "
      f"NHWC speed-up {med['contiguous'] / med['channels_last']:.2f}x")
