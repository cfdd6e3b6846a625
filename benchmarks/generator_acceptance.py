"""Acceptance figures of the built-in generator (synthfr-small), issue 6.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/generator_acceptance.py \
        --lfw ../shared/data/lfw/lfw.bin --gallery /work/cache/genrun/data/emb.npy \
        --json /work/cache/genrun/acceptance.json --grid docs/generator_grid.png

Figures (LFW is used only as a source of unseen condition vectors and for the threshold, never for training):

1. fidelity: 1,000 distinct LFW faces -> dlib-torch embeddings -> 4 seeds each -> generate -> embed; share of
   images whose cosine to their condition is ≥ the LFW-calibrated threshold (10-fold best-accuracy threshold
   of dlib-torch on LFW View 2, computed here unless --threshold is given).
2. separation: identities sampled with vec2face (τ = 0.3, standardised space fitted on the training gallery),
   one image each; share of cross-identity pairs rejected (cosine < threshold).
3. realism proxy: dlib HOG detector (upsampling 1) finds a face in the generated images.
4. speed: images/s of batch generation (batch 256, torch threads as given).
5. attrop: target yaw 30° for LFW identities; |yaw − 30| by the pose estimator and by the independent landmark
   labels (68 points + solvePnP); identity verification; max steps taken vs the bound.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def lfw_embeddings(path: str, emb, pairs: int | None = None) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    from synthfr.data.benchmarks import decode_image, load_bin_raw

    raw, issame = load_bin_raw(path)
    if pairs:
        raw, issame = raw[:2 * pairs], issame[:pairs]
    imgs = np.stack([decode_image(b) for b in raw])
    return emb.embed(imgs), issame, raw


def tenfold_threshold(e: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """Mean best-accuracy threshold over the 10 LFW folds (chosen on the 9 others) and the 10-fold accuracy."""
    from synthfr.data.benchmarks import kfold_assignment

    cos = (e[0::2] * e[1::2]).sum(1)
    fold = kfold_assignment(len(cos), 10)
    cands = np.arange(0.5, 1.0, 0.0025)
    ths, accs = [], []
    for f in range(10):
        tr, te = fold != f, fold == f
        acc_tr = [((cos[tr] >= t) == issame[tr]).mean() for t in cands]
        t = cands[int(np.argmax(acc_tr))]
        ths.append(t)
        accs.append(((cos[te] >= t) == issame[te]).mean())
    return float(np.mean(ths)), float(np.mean(accs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="generator weights folder (default: the package's)")
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--gallery", required=True, help="training-gallery embeddings (.npy, N×128 or N×2×128)")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--pairs", type=int, default=None, help="only the first N LFW pairs (dry runs)")
    ap.add_argument("--n-ids", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--n-sep", type=int, default=300)
    ap.add_argument("--n-hog", type=int, default=1000)
    ap.add_argument("--n-attrop", type=int, default=48)
    ap.add_argument("--attrop-steps", type=int, default=40)
    ap.add_argument("--attrop-eot", type=int, default=None, help="AttrOP pose_eot (default: AttrOP's)")
    ap.add_argument("--z-scale", type=float, default=1.0)
    ap.add_argument("--id-gain", type=float, default=None,
                    help="identity gain of synthfr-small (default: the value recorded with the weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: fidelity separation hog speed attrop grid")
    ap.add_argument("--grid", default=None, help="write a 16 identities × 8 seeds PNG here")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from synthfr.face.embedders import create_embedder
    from synthfr.generators import create_generator
    from synthfr.utils.seeds import derive_seed

    torch.set_num_threads(args.threads)
    res: dict = {"threads": args.threads, "z_scale": args.z_scale}
    kw = {"weights": args.weights} if args.weights else {}
    gen = create_generator("synthfr-small", z_scale=args.z_scale, id_gain=args.id_gain, **kw)
    res["trained_steps"] = gen.meta.get("trained_steps")
    res["id_gain"] = gen.id_gain
    emb = create_embedder("dlib-torch", device="cpu")
    t0 = time.time()
    e_lfw, issame, raw = lfw_embeddings(args.lfw, emb, args.pairs)
    thr, acc = tenfold_threshold(e_lfw, issame) if len(issame) >= 20 else (float("nan"), float("nan"))
    res["lfw_threshold_10fold"] = thr
    res["lfw_accuracy_10fold"] = acc
    thr = args.threshold if args.threshold is not None else thr
    res["threshold"] = thr
    print(f"LFW: threshold {thr:.4f} (10-fold acc {acc:.4f}) in {time.time() - t0:.0f}s", flush=True)
    # 1,000 distinct LFW faces (dedupe identical encoded images)
    seen, pick = set(), []
    for i, b in enumerate(raw):
        if b not in seen:
            seen.add(b)
            pick.append(i)
        if len(pick) == args.n_ids:
            break
    cond = e_lfw[pick]

    gen_imgs = None
    if "fidelity" not in args.skip:
        t0 = time.time()
        c = np.repeat(cond, args.seeds, 0)
        seeds = np.array([derive_seed(0, "fid", i, k) for i in range(len(cond)) for k in range(args.seeds)], np.int64)
        gen_imgs = np.concatenate([gen.generate(c[i:i + 256], seeds[i:i + 256]) for i in range(0, len(c), 256)])
        e = emb.embed(gen_imgs)
        cos = (e * c).sum(1)
        res["fidelity_verified"] = float((cos >= thr).mean())
        res["fidelity_mean_cos"] = float(cos.mean())
        res["fidelity_n"] = int(len(cos))
        # the same seeds, other identities: how close is an image to a random other LFW identity?
        perm = np.roll(np.arange(len(c)), args.seeds * 7)
        res["fidelity_cos_to_other_identity"] = float((e * c[perm]).sum(1).mean())
        print(f"fidelity: {res['fidelity_verified']:.4f} verified, mean cos {cos.mean():.4f} "
              f"({time.time() - t0:.0f}s)", flush=True)

    gal = np.load(args.gallery)
    gal = gal.reshape(-1, gal.shape[-1])
    if "separation" not in args.skip or "grid" not in args.skip:
        from synthfr.samplers._api import sample_identities

        ids, _ = sample_identities("vec2face", max(args.n_sep, 16), gallery=gal, seed=1, tau=0.3)
    if "separation" not in args.skip:
        t0 = time.time()
        imgs = gen.generate(ids[:args.n_sep], np.array([derive_seed(0, "sep", i) for i in range(args.n_sep)], np.int64))
        e = emb.embed(imgs)
        s = e @ e.T
        iu = np.triu_indices(len(e), 1)
        res["separation_rejected"] = float((s[iu] < thr).mean())
        res["separation_mean_cos"] = float(s[iu].mean())
        res["separation_pairs"] = int(len(iu[0]))
        res["separation_condition_mean_cos"] = float((ids[:args.n_sep] @ ids[:args.n_sep].T)[iu].mean())
        # fidelity on *invented* identities (sampled points, no real face behind them): what the image-less
        # training conditions are meant to help
        own = (e * ids[:args.n_sep]).sum(1)
        res["sampled_fidelity_verified"] = float((own >= thr).mean())
        res["sampled_fidelity_mean_cos"] = float(own.mean())
        print(f"separation: {res['separation_rejected']:.4f} of {len(iu[0])} pairs rejected ({time.time() - t0:.0f}s)",
              flush=True)

    if "hog" not in args.skip:
        from synthfr.face.detect import FaceDetector

        t0 = time.time()
        det = FaceDetector("hog", upsample=1)
        src = gen_imgs if gen_imgs is not None else gen.generate(cond[:args.n_hog], np.arange(args.n_hog))
        n = min(args.n_hog, len(src))
        hits = sum(1 for im in src[:n] if len(det.detect(im)) > 0)
        res["hog_detection_rate"] = hits / n
        res["hog_n"] = n
        print(f"HOG: {hits}/{n} ({time.time() - t0:.0f}s)", flush=True)

    if "speed" not in args.skip:
        c = np.repeat(cond[:64], 4, 0)
        gen.generate(c[:32], np.arange(32))
        best = 0.0
        for rep in range(3):
            t0 = time.perf_counter()
            gen.generate(c, np.arange(len(c)) + rep)
            best = max(best, len(c) / (time.perf_counter() - t0))
        res["speed_images_per_s"] = best
        print(f"speed: {best:.1f} images/s (batch {len(c)}, {args.threads} threads)", flush=True)

    if "grid" not in args.skip and args.grid:
        from PIL import Image

        c = np.repeat(ids[:16], 8, 0)
        imgs = gen.generate(c, np.array([derive_seed(0, "grid", i // 8, i % 8) for i in range(len(c))], np.int64))
        g = imgs.reshape(16, 8, 112, 112, 3).transpose(0, 2, 1, 3, 4).reshape(16 * 112, 8 * 112, 3)
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(g).save(args.grid)
        print(f"grid: {args.grid}")

    if "attrop" not in args.skip:
        from synthfr.face.pose import label_faces
        from synthfr.variations.attrop import AttrOP

        t0 = time.time()
        n = args.n_attrop
        from synthfr.face.pose import load_pose_estimator

        eot = {} if args.attrop_eot is None else {"pose_eot": args.attrop_eot}
        a = AttrOP.with_components(gen, load_pose_estimator(), emb, targets="1:yaw=30", mirror_yaw=False,
                                   steps=args.attrop_steps, id_bound=1 - thr, **eot)
        out = a.apply_to(cond[:n], np.arange(n), 1, seed=3)
        seeds = np.array([p["image_seed"] for p in out.params], np.int64)
        imgs = gen.generate(out.conditions, seeds)
        with torch.no_grad():
            x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
            yaw_net = a._components[1](x)[:, 0].numpy()
        yaw_lm = label_faces(imgs)[:, 0]
        e = emb.embed(imgs)
        cosv = (e * cond[:n]).sum(1)
        base = gen.generate(cond[:n], seeds)
        with torch.no_grad():
            yaw0 = a._components[1](torch.from_numpy(base).permute(0, 3, 1, 2).float() / 255)[:, 0].numpy()
        res.update({
            "attrop_n": n, "attrop_step_bound": args.attrop_steps,
            "attrop_max_steps_taken": int(max(p["steps_taken"] for p in out.params)),
            "attrop_met_fraction": float(np.mean([p["met"] for p in out.params])),
            "attrop_median_abs_err_posenet": float(np.median(np.abs(yaw_net - 30))),
            "attrop_median_abs_err_landmarks": float(np.nanmedian(np.abs(yaw_lm - 30))),
            "attrop_identity_verified": float((cosv >= thr).mean()),
            "attrop_yaw_before_median_posenet": float(np.median(yaw0)),
            "attrop_yaw_after_median_landmarks": float(np.nanmedian(yaw_lm)),
            "attrop_yaw_before_median_landmarks": float(np.nanmedian(label_faces(base)[:, 0])),
            "attrop_pose_eot": int(a.config.pose_eot),
        })
        print(f"attrop: {json.dumps({k: v for k, v in res.items() if k.startswith('attrop')})} "
              f"({time.time() - t0:.0f}s)", flush=True)

    print(json.dumps(res, indent=2))
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
