"""Diagnostic for issue 13 item 6: the generator's copy of a real training set.

Every aligned real photo is re-rendered by a generator from its **own** dlib-torch embedding and (for
``synthfr-v2``) its **own** measured attributes — the same identities and, as far as the network follows its
inputs, the same per-photo pose, expression and light. Training the real-data recipe on the copy and comparing
its LFW accuracy with the photos' own tells how much of the synthetic-vs-real gap is the *rendering* (the domain
gap: blur, artefacts, backgrounds) rather than the identities or how much they vary. The generator was trained
on these photos, so this is its best case, not a held-out one. SFace plays no part here (it judges elsewhere).

    python benchmarks/rerender_real.py /work/cache/aligned/celeba /work/cache/rerender/celeba --threads 1
    synthfr train --data /work/cache/rerender/celeba --out /work/cache/rerender/run --seed 0 \\
        --backbone mobilefacenet_s1 --input-size 64 --embedding-size 512 --head cosface --scale 32 --margin 0.35 \\
        --schedule cosine --warmup-epochs 1 --batch-size 64 --lr 0.1 --workers 1 --threads 2 --epochs 8
    synthfr eval --checkpoint /work/cache/rerender/run --benchmark ../shared/data/lfw/lfw.bin --json EVAL.json

Output: ``OUT/<identity>/<photo>.jpg`` (the input's class folders and file stems) and ``OUT/rerender.json``
(generator spec and options, counts, seconds, provenance). ``--measure`` (on an existing copy) adds
``OUT/measure.json``: how each copy compares with its photo under SFace (the judge) and dlib-torch (the generator's
network) — cosine and the share verified at each network's LFW threshold —, the Fréchet distance in SFace space
between the copies and the photos (beside the distance between two identity-disjoint halves of the photos: the
floor), and a linear probe's accuracy at telling a photo from a copy by its SFace embedding (5 identity-disjoint
folds; 50 % = indistinguishable).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", help="aligned real faces, one folder per identity (`synthfr align` output)")
    p.add_argument("out", help="where the re-rendered copy goes (one folder per identity, same file stems)")
    p.add_argument("--generator", default="synthfr-v2", help="generator spec NAME[:key=value,...]")
    p.add_argument("--embedder", default="dlib-torch",
                   help="the network whose embedding of each photo conditions its copy (the generator's own space)")
    p.add_argument("--batch", type=int, default=64, help="images per forward pass")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--measure", action="store_true", help="measure the copy against the photos (measure.json)")
    p.add_argument("--sface-threshold", type=float, default=0.3564, help="SFace's best LFW threshold")
    p.add_argument("--dlib-threshold", type=float, default=0.90775, help="dlib-torch's best LFW threshold")
    p.add_argument("--no-attributes", action="store_true",
                   help="let the generator draw the attributes (its own prior) instead of the photo's")
    a = p.parse_args(argv)

    import torch
    from tqdm import tqdm

    from synthfr.data.imagefolder import decode_rgb, scan_image_folder
    from synthfr.data.writers import write_image_file
    from synthfr.face.embedders import create_embedder
    from synthfr.generators import create_generator
    from synthfr.utils.images import to_uint8_images
    from synthfr.utils.provenance import provenance

    torch.set_num_threads(a.threads)
    t0 = time.time()
    root, out = Path(a.real), Path(a.out)
    if a.measure:
        return measure(root, out, a)
    if (out / "rerender.json").is_file():
        print(f"{out}: already re-rendered (rerender.json); delete the folder to redo it", file=sys.stderr)
        return 0
    paths, labels, names = scan_image_folder(root)
    images = np.stack([decode_rgb((root / q).read_bytes(), 112) for q in paths])
    print(f"{len(images)} photos of {len(names)} identities from {root}", flush=True)
    cond = create_embedder(a.embedder, device="cpu").embed(images)
    gen = create_generator(a.generator)
    attrs = None
    if not a.no_attributes and hasattr(gen, "prior"):
        from synthfr.face.attributes import measure_attributes
        from synthfr.genmodel.conditioning import ATTR_INPUTS

        got = measure_attributes(images, progress=True)
        # raw network inputs are the measured attributes themselves (that is what training fed the network);
        # NaN (not measurable, e.g. no landmarks) is "unknown", as in training's attribute dropout
        attrs = np.stack([got[n] for n in ATTR_INPUTS], axis=1).astype(np.float32)
    seeds = np.arange(len(images))
    for i in tqdm(range(0, len(images), a.batch), desc="re-render", unit="batch"):
        c, s = torch.from_numpy(cond[i:i + a.batch]).float(), seeds[i:i + a.batch]
        with torch.no_grad():
            if attrs is None:
                x = gen.generate_tensor(c, s)
            else:
                x = gen.generate_tensor(c, s, attrs=torch.from_numpy(attrs[i:i + a.batch]))
        for j, img in enumerate(to_uint8_images(x)):
            q = Path(paths[i + j])
            (out / names[labels[i + j]]).mkdir(parents=True, exist_ok=True)
            write_image_file(out / names[labels[i + j]] / (q.stem + ".jpg"), img)
    meta = {"real": str(root), "generator": a.generator, "options": gen.options(), "photos": len(images),
            "identities": len(names), "attributes": "own" if attrs is not None else "prior", "condition": "own",
            "embedder": a.embedder, "seconds": round(time.time() - t0, 1), "provenance": provenance()}
    (out / "rerender.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: v for k, v in meta.items() if k != "provenance"}))
    return 0


def _probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, ridge: float = 1.0) -> float:
    """Held-out accuracy of a ridge-regression linear classifier (y in {0, 1}), folds by ``groups``."""
    acc = []
    for f in range(folds):
        te = groups % folds == f
        xt = np.c_[x[~te], np.ones((~te).sum())]
        w = np.linalg.solve(xt.T @ xt + ridge * np.eye(xt.shape[1]), xt.T @ (2.0 * y[~te] - 1))
        acc.append(float(((np.c_[x[te], np.ones(te.sum())] @ w > 0) == (y[te] == 1)).mean()))
    return float(np.mean(acc))


def measure(root: Path, out: Path, a: argparse.Namespace) -> int:
    import torch

    from synthfr.data.imagefolder import decode_rgb, scan_image_folder
    from synthfr.face.embedders import create_embedder

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generator_judge import frechet

    torch.set_num_threads(a.threads)
    paths, labels, names = scan_image_folder(root)
    copies = [out / names[c] / (Path(q).stem + ".jpg") for q, c in zip(paths, labels)]  # the layout main() writes
    if not all(c.is_file() for c in copies):
        print(f"{out}: the copy is incomplete; re-render it first (without --measure)", file=sys.stderr)
        return 2
    real = np.stack([decode_rgb((root / q).read_bytes(), 112) for q in paths])
    copy = np.stack([decode_rgb(c.read_bytes(), 112) for c in copies])
    labels = np.asarray(labels)
    res: dict = {"photos": len(real), "identities": int(labels.max() + 1)}
    for net, thr in (("sface", a.sface_threshold), ("dlib-torch", a.dlib_threshold)):
        emb = create_embedder(net, device="cpu")
        er, ec = emb.embed(real), emb.embed(copy)
        cos = (er * ec).sum(1)
        r = {"threshold": thr, "mean cos photo-copy": float(cos.mean()), "copies verified": float((cos >= thr).mean())}
        if net == "sface":
            half = labels % 2 == 0
            r["fd copies-photos"] = frechet(ec, er)
            r["fd photos-photos (identity-disjoint halves, the floor)"] = frechet(er[half], er[~half])
            r["linear probe photo vs copy (50 % = indistinguishable)"] = _probe(
                np.r_[er, ec], np.r_[np.zeros(len(er)), np.ones(len(ec))], np.r_[labels, labels])
        res[net] = r
    (out / "measure.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
