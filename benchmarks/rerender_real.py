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
(generator spec and options, counts, seconds, versions).
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
    p.add_argument("--batch", type=int, default=64, help="images per forward pass")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
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
    if (out / "rerender.json").is_file():
        print(f"{out}: already re-rendered (rerender.json); delete the folder to redo it", file=sys.stderr)
        return 0
    paths, labels, names = scan_image_folder(root)
    images = np.stack([decode_rgb((root / q).read_bytes(), 112) for q in paths])
    print(f"{len(images)} photos of {len(names)} identities from {root}", flush=True)
    cond = create_embedder("dlib-torch", device="cpu").embed(images)
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
            "embedder": "dlib-torch", "seconds": round(time.time() - t0, 1), "provenance": provenance()}
    (out / "rerender.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: v for k, v in meta.items() if k != "provenance"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
