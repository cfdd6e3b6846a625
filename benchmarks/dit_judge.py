"""Issue 19 acceptance 2: the VIGFace DiT (``vigface-dit``) judged by SFace beside the built-in ``synthfr-v2``.

    flock /work/cache/cpu.lock nice -n 5 taskset -c 1 .venv/bin/python benchmarks/dit_judge.py \
        --run /work/cache/vigdit/run-cpu --weights /work/cache/vigdit/export --celeba /work/cache/aligned/celeba \
        --work /work/cache/vigdit/judge --json /work/cache/vigdit/judge/out.json --grid docs/vigface_dit_grid.png

Both generators get the same condition vectors (dlib-torch space) and the same CLI call (``synthfr generate
--images-per-id K --seed 3``); SFace (the judge; it never trains or conditions anything) embeds every image:

1. fidelity to the prototype's real class: the stage-1 rows of ``--classes`` CelebA classes (≥ 20 faces each,
   all trained on), K images each; share of (generated image, real face of that class) pairs SFace verifies at
   its LFW threshold (0.3564), beside the same share against the other classes' faces (impostors) and real
   faces against their own class (the ceiling); rank-1: the class whose mean real SFace embedding is nearest.
2. separation of virtual identities: ``--virtual`` stage-1 virtual rows, first image each; share of the
   cross-identity pairs SFace rejects (dlib-torch at 0.90775 beside it).
3. variation within one identity: the K(K−1)/2 pairs per virtual identity: share verified, mean cosine, and
   the mean per-pixel standard deviation over the K images (0 = identical images).
4. speed: images/s in this process (``--threads``), 16 images after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generator_judge import DLIB_THRESHOLD, _cli, _embed, _read_dataset, _slug  # noqa: E402

SFACE_LFW_THRESHOLD = 0.3564  # SFace's best-accuracy threshold on LFW View 2 (docs/benchmarks.md, issue 12)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="train-dit run folder (its stage1/ prototypes)")
    ap.add_argument("--weights", required=True, help="exported vigface-dit weights")
    ap.add_argument("--celeba", required=True, help="aligned CelebA identity folders (the real classes)")
    ap.add_argument("--others", nargs="*", default=["synthfr-v2"], help="generators judged beside it")
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--virtual", type=int, default=100)
    ap.add_argument("--k", type=int, default=4, help="images per identity")
    ap.add_argument("--dit-options", default="", help="extra vigface-dit options, e.g. steps=25,guidance=3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", required=True)
    ap.add_argument("--grid", default=None, help="PNG sample grid to write")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)

    import torch
    from PIL import Image

    from synthfr.genmodel.dit.prototypes import load_prototypes

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    thr = SFACE_LFW_THRESHOLD
    pr = load_prototypes(Path(args.run) / "stage1")
    rng = np.random.default_rng(0)
    celeba = Path(args.celeba)
    cands = [c for c in pr.classes if c.startswith(celeba.name + "/")
             and len(list((celeba / c.split("/", 1)[1]).glob("*.jpg"))) >= 20]
    picked = sorted(rng.choice(len(cands), min(args.classes, len(cands)), replace=False))
    cls = [cands[i] for i in picked]
    rows = [pr.classes.index(c) for c in cls]
    np.save(work / "cond_real.npy", pr.space.from_standard(pr.real[rows]))
    np.save(work / "cond_virtual.npy", pr.space.from_standard(pr.virtual[:args.virtual]))
    real_imgs = [np.stack([np.asarray(Image.open(f).convert("RGB"))
                           for f in sorted((celeba / c.split("/", 1)[1]).glob("*.jpg"))]) for c in cls]
    real_sf = [_embed("sface", r) for r in real_imgs]
    owner = np.concatenate([np.full(len(e), i) for i, e in enumerate(real_sf)])
    all_real = np.concatenate(real_sf)
    centroids = np.stack([e.mean(0) / np.linalg.norm(e.mean(0)) for e in real_sf])
    res: dict = {"sface_threshold": thr, "classes": len(cls), "virtual": args.virtual, "k": args.k,
                 "real_faces": int(len(all_real))}
    # ceiling: real faces against their own class's other faces (genuine), and other classes (impostor)
    cos = all_real @ all_real.T
    same = owner[:, None] == owner[None]
    off = ~np.eye(len(owner), dtype=bool)
    res["real"] = {"genuine_verified": float((cos[same & off] >= thr).mean()),
                   "impostor_verified": float((cos[~same] >= thr).mean())}
    dit = "vigface-dit:weights=" + str(Path(args.weights).resolve()) + ("," + args.dit_options if args.dit_options else "")
    grids = {}
    for spec in [dit, *args.others]:
        r: dict = {}
        for part in ("real", "virtual"):
            cond = work / f"cond_{part}.npy"
            n = len(np.load(cond))
            out = work / f"ds_{part}_{_slug(spec)}"
            if not (out / "manifest.jsonl").is_file():
                t = time.perf_counter()
                _cli("generate", "--identities", str(cond), "--images-per-id", str(args.k), "--seed", "3",
                     "--generator", spec, "--out", str(out), "--no-progress")
                r[f"{part}_generate_wall_s"] = time.perf_counter() - t
            imgs = _read_dataset(out, n, args.k)
            grids[(spec, part)] = imgs
            sf = _embed("sface", imgs).reshape(n, args.k, -1)
            if part == "real":
                c = sf.reshape(-1, sf.shape[-1]) @ all_real.T          # (n·k) × real faces
                gen_owner = np.repeat(np.arange(n), args.k)
                mine = gen_owner[:, None] == owner[None]
                r["fidelity_verified"] = float((c[mine] >= thr).mean())
                r["fidelity_cos"] = float(c[mine].mean())
                r["impostor_verified"] = float((c[~mine] >= thr).mean())
                r["rank1_class"] = float((np.argmax(sf.reshape(-1, sf.shape[-1]) @ centroids.T, 1) == gen_owner).mean())
            else:
                dl = _embed("dlib-torch", imgs).reshape(n, args.k, -1)
                iu = np.triu_indices(n, 1)
                first = sf[:, 0]
                r["separation_sface"] = float(((first @ first.T)[iu] < thr).mean())
                r["separation_dlib"] = float(((dl[:, 0] @ dl[:, 0].T)[iu] < DLIB_THRESHOLD).mean())
                ii, jj = np.triu_indices(args.k, 1)
                w = (sf[:, ii] * sf[:, jj]).sum(-1)
                r["within_verified"], r["within_cos"] = float((w >= thr).mean()), float(w.mean())
                r["within_pixel_sd"] = float(imgs.astype(np.float32).std(axis=1).mean())
                r["fidelity_dlib_to_condition"] = float(((dl * np.load(cond)[:, None]).sum(-1) >= DLIB_THRESHOLD).mean())
                r["virtual_vs_real_classes_verified"] = float(((first @ all_real.T) >= thr).mean())
        from synthfr.generators import create_generator

        base, _, opts = spec.partition(":")
        gen = create_generator(base, **dict(o.split("=", 1) for o in opts.split(",") if o))
        c = np.resize(np.load(work / "cond_virtual.npy"), (16, 128))
        gen.generate(c[:2], np.arange(2))
        t = time.perf_counter()
        gen.generate(c, np.arange(16))
        r["images_per_s"] = 16 / (time.perf_counter() - t)
        r["options"] = gen.options()
        res[spec.split(":")[0]] = r
        print(json.dumps({spec: r}, indent=1), flush=True)
    if args.grid:
        _grid(args.grid, real_imgs, grids, dit, args.others[0] if args.others else None)
    Path(args.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


def _grid(path: str, real_imgs, grids, dit: str, other: str | None, rows: int = 6) -> None:
    """Rows: a real face of the class | 4 DiT images of its prototype | 4 of the other generator; then virtual rows."""
    from PIL import Image

    blank = np.full((112, 112, 3), 255, np.uint8)
    rows = min(rows, len(real_imgs), len(grids[(dit, "virtual")]))
    lines = []
    for i in range(rows):
        line = [real_imgs[i][0], blank, *grids[(dit, "real")][i]]
        if other:
            line += [blank, *grids[(other, "real")][i]]
        lines.append(np.concatenate(line, 1))
    for i in range(rows):
        line = [blank, blank, *grids[(dit, "virtual")][i]]
        if other:
            line += [blank, *grids[(other, "virtual")][i]]
        lines.append(np.concatenate(line, 1))
    img = np.concatenate(lines, 0)
    Image.fromarray(img).resize((img.shape[1] // 2, img.shape[0] // 2), Image.LANCZOS).save(path, optimize=True)


if __name__ == "__main__":
    raise SystemExit(main())
