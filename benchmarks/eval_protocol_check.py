"""Compare synthfr's exact-threshold 10-fold protocol with insightface's fixed-grid one on real embeddings.

Input: embeddings of a .bin in file order (``synthfr embed lfw.bin --embedder NAME --out emb.npy``).

    .venv/bin/python benchmarks/eval_protocol_check.py --bin ../shared/data/lfw/lfw.bin --emb emb.npy

insightface (recognition/eval/verification.py, ``calculate_roc``): squared L2 distance of the normalised
embeddings, thresholds ``np.arange(0, 4, 0.01)``, ``KFold(10, shuffle=False)``, "same" when distance < threshold,
first best threshold on the 9 training folds. On unit vectors distance = 2 − 2·cosine, so both protocols rank
pairs identically and differ only in where the threshold is placed.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def insightface_accuracy(emb1, emb2, issame, nrof_folds=10):
    thresholds = np.arange(0, 4, 0.01)
    e1 = emb1 / np.linalg.norm(emb1, axis=1, keepdims=True)
    e2 = emb2 / np.linalg.norm(emb2, axis=1, keepdims=True)
    dist = np.sum(np.square(e1 - e2), 1)
    idx = np.arange(len(issame))
    accs, thr = [], []
    for test in np.array_split(idx, nrof_folds):
        train = np.setdiff1d(idx, test)

        def acc(t, s):
            return np.mean(np.less(dist[s], t) == issame[s])

        best = int(np.argmax([acc(t, train) for t in thresholds]))
        accs.append(acc(thresholds[best], test))
        thr.append(thresholds[best])
    return np.array(accs), np.array(thr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--emb", required=True, help="embeddings of every image of the .bin, in file order")
    p.add_argument("--json")
    args = p.parse_args(argv)
    from synthfr.data.benchmarks import load_bin_raw
    from synthfr.evaluation.verification import evaluate_embeddings

    _, issame = load_bin_raw(args.bin)
    emb = np.load(args.emb).astype(np.float64)
    e1, e2 = emb[0::2], emb[1::2]
    ours = evaluate_embeddings(e1, e2, issame, folds=10)
    theirs, thr = insightface_accuracy(e1, e2, issame)
    out = {
        "synthfr": {"accuracy": ours["accuracy"], "std": ours["std"], "threshold_cos": ours["threshold"],
                    "fold_accuracies": ours["fold_accuracies"]},
        "insightface_grid": {"accuracy": float(theirs.mean()), "std": float(theirs.std()),
                             "threshold_cos": float(np.mean(1 - thr / 2)), "fold_accuracies": theirs.tolist()},
    }
    print(json.dumps(out, indent=2))
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
