"""A held-out verification benchmark from real identities that no experiment trains on (issue 15, question 7).

Takes an aligned identity tree (``<identity>/<image>``, e.g. the CelebA subset aligned by ``synthfr align``), picks
``--identities`` people and writes an insightface-style ``.bin`` (pairs ``2k, 2k+1``, ``issame``) that ``synthfr
eval`` reads like ``lfw.bin``, with 10 identity-disjoint folds in file order (each fold: its genuine pairs, then
as many impostor pairs, all among that fold's identities, as LFW View 2 is laid out). Beside it,
``OUT.identities.txt`` lists the held-out identities, one per line: every real training subset of the
experiments must leave them out (``benchmarks/experiments15.py`` reads it).

Which identities. Folders are ordered the way the built-in generator's trainer holds identities out
(``derive_seed(seed, "val", "<root name>/<folder>")``, ``synthfr.genmodel.trainer``), so with seed 0 on the same
folder the first ones are the 16 CelebA identities ``synthfr-small`` itself never saw; the rest follow in that
order (only folders with at least ``--min-images`` images). The FR models never train on any of them; the
generator did see the others (a limit the docs state).

    python benchmarks/make_heldout_pairs.py --celeba /work/cache/aligned/celeba --out /work/cache/exp/heldout.bin \
        --identities 50 --json /work/cache/exp/heldout.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_identities(root: Path, seed: int = 0) -> list[tuple[str, list[Path]]]:
    """``(folder, sorted images)`` of every identity folder with >= 2 images, in the generator's hold-out order."""
    from synthfr.utils.seeds import derive_seed

    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXT)
        if len(imgs) >= 2:
            out.append((d.name, imgs))
    return sorted(out, key=lambda t: derive_seed(seed, "val", f"{root.name}/{t[0]}"))


def make_pairs(ids: list[tuple[str, list[Path]]], folds: int, per_fold: int, seed: int):
    """Identity-disjoint folds of equal size: per fold ``g`` genuine then ``g`` impostor pairs (paths)."""
    groups = [ids[f::folds] for f in range(folds)]
    genuine_avail = [sum(len(im) * (len(im) - 1) // 2 for _, im in g) for g in groups]
    g = min(per_fold, *genuine_avail)  # equal folds: insightface's KFold cuts the file into equal blocks
    rng = np.random.default_rng(seed)
    pairs, issame = [], []
    for group in groups:
        same = [(a, b) for _, im in group for a, b in itertools.combinations(im, 2)]
        diff = [(a, b) for (_, ia), (_, ib) in itertools.combinations(group, 2) for a in ia for b in ib]
        for lst, flag in ((same, True), (diff, False)):
            pick = rng.choice(len(lst), g, replace=False)
            pairs += [lst[i] for i in sorted(pick)]
            issame += [flag] * g
    return pairs, issame, g


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--celeba", required=True, help="aligned identity tree (112x112 faces, <identity>/<image>)")
    ap.add_argument("--out", required=True, help="the .bin to write (OUT.identities.txt goes beside it)")
    ap.add_argument("--identities", type=int, default=50, help="held-out identities (a multiple of --folds)")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--pairs-per-fold", type=int, default=300, help="genuine pairs per fold at most (as many impostor)")
    ap.add_argument("--min-images", type=int, default=10, help="only identities with at least this many images")
    ap.add_argument("--seed", type=int, default=0, help="identity order (the generator trainer's) and pair draw")
    ap.add_argument("--json", metavar="PATH", help="write the figures (identities, pairs, images) as JSON")
    args = ap.parse_args(argv)
    root = Path(args.celeba).expanduser()
    if not root.is_dir():
        raise SystemExit(f"--celeba {root} is not a folder: give an aligned identity tree (synthfr align)")
    if args.identities % args.folds:
        raise SystemExit(f"--identities {args.identities} must be a multiple of --folds {args.folds}")
    order = list_identities(root, args.seed)
    gen_heldout = {n for n, _ in order[:16]}  # the built-in generator's own held-out identities (seed 0)
    ids = [t for t in order if len(t[1]) >= args.min_images][: args.identities]
    if len(ids) < args.identities:
        raise SystemExit(f"{root} has only {len(ids)} identities with >= {args.min_images} images")
    pairs, issame, g = make_pairs(ids, args.folds, args.pairs_per_fold, args.seed)
    cache: dict[Path, bytes] = {}  # the same bytes object for a repeated image: pickle stores it once
    images = [cache.setdefault(p, p.read_bytes()) for pair in pairs for p in pair]
    from synthfr.data.benchmarks import load_bin, write_bin

    out = write_bin(Path(args.out).expanduser(), images, issame)
    names = [n for n, _ in ids]
    out.with_name(out.name[:-4] + ".identities.txt" if out.name.endswith(".bin") else out.name + ".identities.txt") \
        .write_text("".join(n + "\n" for n in names))
    b = load_bin(out)  # read back with synthfr's own reader: the folds must be the identity-disjoint blocks
    assert len(b.issame) == len(pairs) and int(b.folds.max()) == args.folds - 1
    stats = {"benchmark": str(out), "source": str(root), "identities": len(names), "folds": args.folds,
             "identities_per_fold": len(names) // args.folds, "pairs": len(pairs), "genuine": int(sum(issame)),
             "impostor": int(len(issame) - sum(issame)), "pairs_per_fold": 2 * g, "images": len(cache),
             "generator_heldout_included": len(gen_heldout & set(names)), "bytes": out.stat().st_size,
             "seed": args.seed, "identity_names": names}
    print(f"{out}: {stats['identities']} identities ({stats['identities_per_fold']} per fold, "
          f"{stats['generator_heldout_included']} of them never seen by synthfr-small either), {stats['pairs']} pairs "
          f"({stats['genuine']} genuine + {stats['impostor']} impostor, {args.folds} folds of {2 * g}), "
          f"{stats['images']} distinct images")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
