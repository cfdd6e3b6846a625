"""Issue 13 acceptance, judged by SFace (dlib-torch figures beside it): built-in generators side by side.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/generator_judge.py \
        --lfw ../shared/data/lfw/lfw.bin --real /work/cache/aligned/celeba /work/cache/aligned/utkface \
        --generators synthfr-small synthfr-v2 --work /work/cache/judge --json /work/cache/judge/out.json

LFW is used only as a source of unseen condition vectors and for SFace's threshold, never for training.
For each generator (every dataset is made by the real CLI, ``synthfr generate`` with its defaults):

1. fidelity: dlib-torch embeddings of 1,000 LFW images (every 12th of lfw.bin) → ``synthfr generate
   --identities COND --images-per-id 4 --seed 3``; share of images verified as their source LFW face by SFace
   at SFace's best-accuracy LFW threshold (and by dlib-torch at its own, 0.90775).
2. separation: the first image of each identity; share of the 499,500 cross-identity pairs rejected.
3. variation: the 6 within-identity pairs per identity: share verified and mean SFace cosine; the mean
   per-identity standard deviation of landmark yaw and of illumination (brightness, light_lr) against real
   CelebA identities (4 random images each, the same count).
4. control (generators with attributes): ``yaw=30`` → median |landmark yaw − 30| and SFace identity rate;
   ``vary=pose`` and ``vary=illumination`` datasets → their yaw and illumination spreads.
5. realism: Fréchet distance in SFace space between the 4,000 images and the real faces (``--real``).
6. speed: images/s, batch 256, ``--threads`` torch threads.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DLIB_THRESHOLD = 0.90775


def _cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "synthfr.cli", *args]
    print("+ synthfr " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def _slug(spec: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9.+-]+", "_", spec)[-80:]


def _read_dataset(folder: Path, n_ids: int, k: int) -> np.ndarray:
    from PIL import Image

    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    out = np.zeros((n_ids, k, 112, 112, 3), np.uint8)
    for r in rows:
        out[int(r["identity"]), int(r["index"])] = np.asarray(Image.open(folder / r["path"]).convert("RGB"))
    return out


def _embed(name: str, images: np.ndarray, batch: int = 256) -> np.ndarray:
    from synthfr.face.embedders import create_embedder

    emb = create_embedder(name, device="cpu")
    flat = images.reshape(-1, 112, 112, 3)
    return np.concatenate([emb.embed(flat[i:i + batch]) for i in range(0, len(flat), batch)])


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (float64, eigen square root)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    ra = (v * np.sqrt(w.clip(0))) @ v.T
    m = ra @ sb @ ra
    tr_sqrt = np.sqrt(np.linalg.eigvalsh((m + m.T) / 2).clip(0)).sum()
    return float(((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt)


def best_threshold(e: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """The single best-accuracy cosine threshold over all pairs (when --sface-threshold is not given)."""
    cos = (e[0::2] * e[1::2]).sum(1)
    order = np.argsort(cos)
    c, s = cos[order], np.asarray(issame, bool)[order]
    # accuracy at threshold c[i] (accept cos >= c[i]): negatives below + positives at/above
    neg_below = np.concatenate([[0], np.cumsum(~s)])[:-1]
    pos_above = s[::-1].cumsum()[::-1]
    acc = (neg_below + pos_above) / len(c)
    i = int(np.argmax(acc))
    return float(c[i]), float(acc[i])


def spreads(images: np.ndarray, names=("yaw", "brightness", "light_lr")) -> dict[str, float]:
    """Mean over identities of the per-identity standard deviation of each attribute (images: I×K×112×112×3)."""
    from synthfr.face.attributes import measure_attributes

    n, k = images.shape[:2]
    a = measure_attributes(images.reshape(-1, 112, 112, 3))
    return {f"{m}_sd": float(np.nanmean(np.nanstd(a[m].reshape(n, k), axis=1))) for m in names} | {
        f"{m}_mean": float(np.nanmean(a[m])) for m in ("yaw", "pitch", "sharpness")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--real", nargs="+", required=True, help="aligned real faces (CelebA identity folders first)")
    ap.add_argument("--generators", nargs="+", default=["synthfr-small", "synthfr-v2"])
    ap.add_argument("--work", required=True, help="scratch folder (datasets, cached embeddings)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sface-threshold", type=float, default=None,
                    help="SFace's best LFW threshold if known (skips embedding the 12,000 LFW images)")
    ap.add_argument("--real-max", type=int, default=6000, help="real faces in the Fréchet reference (random subset)")
    ap.add_argument("--skip", nargs="*", default=[], help="control speed realism")
    ap.add_argument("--generate-args", default="",
                    help="extra `synthfr generate` options for every dataset, e.g. '--filter-min-sim 0.97'")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)

    import torch

    from synthfr.data.benchmarks import decode_image, load_bin_raw

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"n": args.n}

    # SFace's threshold on LFW View 2 and the condition set (cached)
    raw, issame = load_bin_raw(args.lfw)
    pick = np.arange(0, len(raw), 12)[:args.n]
    src = np.stack([decode_image(raw[i]) for i in pick])
    if args.sface_threshold is None:
        lfw_sf = work / "lfw_sface.npy"
        if not lfw_sf.is_file():
            np.save(lfw_sf, _embed("sface", np.stack([decode_image(b) for b in raw])))
        e_lfw = np.load(lfw_sf)
        thr, acc = best_threshold(e_lfw, np.asarray(issame))
        res["sface_lfw_best_accuracy"] = acc
        src_sf = e_lfw[pick]
    else:
        thr = float(args.sface_threshold)
        src_sf = _embed("sface", src)
    res["sface_lfw_threshold"] = thr
    cond_path = work / f"cond_lfw{len(pick)}.npy"
    if not cond_path.is_file():
        np.save(cond_path, _embed("dlib-torch", src).astype(np.float32))
    src_dl = np.load(cond_path)
    iu = np.triu_indices(len(pick), 1)
    res["real_lfw_sources_rejected"] = float(((src_sf @ src_sf.T)[iu] < thr).mean())

    # real reference: CelebA identities (4 random images each) for spreads, all real faces for the FD
    from PIL import Image

    celeba = Path(args.real[0])
    rng = np.random.default_rng(0)
    groups = []
    for d in sorted(p for p in celeba.iterdir() if p.is_dir()):
        fs = sorted(d.iterdir())
        if len(fs) >= 4:
            groups.append([np.asarray(Image.open(f).convert("RGB")) for f in rng.choice(fs, 4, replace=False)])
    real_groups = np.asarray(groups, np.uint8)
    res["real_celeba"] = spreads(real_groups)
    e_rg = _embed("sface", real_groups).reshape(len(groups), 4, -1)
    ii, jj = np.triu_indices(4, 1)
    c = (e_rg[:, ii] * e_rg[:, jj]).sum(-1)
    res["real_celeba"].update(within_verified=float((c >= thr).mean()), within_cos=float(c.mean()))
    real_sf = work / f"real_sface{args.real_max}.npy"
    if not real_sf.is_file():
        files = [f for r in args.real for f in sorted(Path(r).rglob("*.jpg"))]
        files = [files[i] for i in sorted(rng.choice(len(files), min(args.real_max, len(files)), replace=False))]
        imgs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        np.save(real_sf, _embed("sface", np.stack(imgs)))
    e_real = np.load(real_sf)

    for spec in args.generators:
        key = spec + (" " + args.generate_args if args.generate_args else "")  # names the dataset and the result
        extra = shlex.split(args.generate_args)
        out = work / f"ds{len(pick)}_{_slug(key)}"
        if not (out / "manifest.jsonl").is_file():
            _cli("generate", "--identities", str(cond_path), "--images-per-id", "4", "--seed", "3", "--generator",
                 spec, "--out", str(out), "--no-progress", *extra)
        imgs = _read_dataset(out, len(pick), 4)
        sf = _embed("sface", imgs).reshape(len(pick), 4, -1)
        dl = _embed("dlib-torch", imgs).reshape(len(pick), 4, -1)
        r: dict = {}
        fid_sf = (sf * src_sf[:, None]).sum(-1)
        fid_dl = (dl * src_dl[:, None]).sum(-1)
        r["fidelity_sface"] = float((fid_sf >= thr).mean())
        r["fidelity_sface_cos"] = float(fid_sf.mean())
        r["fidelity_dlib"] = float((fid_dl >= DLIB_THRESHOLD).mean())
        first = sf[:, 0]
        r["separation_sface"] = float(((first @ first.T)[iu] < thr).mean())
        r["separation_dlib"] = float(((dl[:, 0] @ dl[:, 0].T)[iu] < DLIB_THRESHOLD).mean())
        w = (sf[:, ii] * sf[:, jj]).sum(-1)
        r["within_verified"], r["within_cos"] = float((w >= thr).mean()), float(w.mean())
        r.update(spreads(imgs))
        if "realism" not in args.skip:
            r["fd_sface"] = frechet(sf.reshape(-1, sf.shape[-1]), e_real)
        if "control" not in args.skip and spec.startswith("synthfr-v2"):
            r["control"] = control(spec, cond_path, work, src_sf, thr, n=min(200, len(pick)), extra=extra)
        if "speed" not in args.skip:
            from synthfr.generators import create_generator

            base, _, opts = spec.partition(":")
            gen = create_generator(base, **dict(o.split("=", 1) for o in opts.split(",") if o))
            c = np.load(cond_path)[:256]
            gen.generate(c[:16], np.arange(16))
            t = time.perf_counter()
            gen.generate(c, np.arange(256))
            r["images_per_s"] = 256 / (time.perf_counter() - t)
        res[key] = r
        print(json.dumps({key: r}, indent=1), flush=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


def control(spec: str, cond_path: Path, work: Path, src_sf: np.ndarray, thr: float, n: int,
            extra: list[str] | None = None) -> dict:
    """yaw=30 accuracy by landmarks with identity kept; pose-only vs illumination-only spreads (``extra``: more
    ``synthfr generate`` options)."""
    extra = list(extra or [])
    from synthfr.face.attributes import measure_attributes

    out: dict = {}
    c = np.load(cond_path)[:n]
    sub = work / f"cond_ctl{n}.npy"
    np.save(sub, c)
    sep = "," if ":" in spec else ":"
    for tag, opt, k in (("yaw30", "yaw=30", 1), ("pose_only", "vary=pose", 4), ("light_only", "vary=illumination", 4)):
        d = work / f"ctl{n}_{tag}_{_slug(' '.join([spec, *extra]))}"
        if not (d / "manifest.jsonl").is_file():
            _cli("generate", "--identities", str(sub), "--images-per-id", str(k), "--seed", "3", "--generator",
                 spec + sep + opt, "--out", str(d), "--no-progress", *extra)
        imgs = _read_dataset(d, n, k)
        if tag == "yaw30":
            a = measure_attributes(imgs[:, 0])
            e = _embed("sface", imgs[:, 0])
            out["yaw30_median_abs_err_landmarks"] = float(np.nanmedian(np.abs(a["yaw"] - 30)))
            out["yaw30_median_yaw_landmarks"] = float(np.nanmedian(a["yaw"]))
            out["yaw30_identity_sface"] = float(((e * src_sf[:n]).sum(1) >= thr).mean())
        else:
            out[tag] = spreads(imgs)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
