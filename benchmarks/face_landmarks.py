"""Five-point landmark error of synthfr's detector + 68->5 mapping against reference points.

Run:
    .venv/bin/python benchmarks/face_landmarks.py --raw ../shared/data/lfw/raw_sample \
        --ref ../shared/data/lfw/raw_sample_landmarks.txt --json /work/cache/face/landmarks.json
(evaluation only: nothing is fitted on these reference points.)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--ref", required=True, help="tab-separated 'path x1 y1 ... x5 y5'")
    ap.add_argument("--json")
    ap.add_argument("--detector", default="hog")
    args = ap.parse_args(argv)

    from synthfr.face.align import load_image
    from synthfr.face.landmarks import FIVE_POINT_NAMES, FaceLandmarker, five_from_68

    lines = [l.split("\t") for l in Path(args.ref).read_text().strip().splitlines()]
    out: dict = {"images": len(lines)}
    for pick in ("largest", "central"):
        fl = FaceLandmarker(detector=args.detector, pick=pick)
        errs, missed = [], 0
        for line in lines:
            ref = np.array(line[1:], float).reshape(5, 2)
            five, _ = fl.five_points(load_image(Path(args.raw) / line[0]))
            if five is None:
                missed += 1
                continue
            errs.append(np.linalg.norm(five - ref, axis=1))
        e = np.array(errs)
        out[pick] = {
            "missed": missed, "median_px": float(np.median(e)), "mean_px": float(e.mean()),
            "per_point_median_px": {n: float(v) for n, v in zip(FIVE_POINT_NAMES, np.median(e, 0))},
            "images_mean_error_over_5px": int((e.mean(1) > 5).sum()),
        }
    import json

    print(json.dumps(out, indent=2))
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
