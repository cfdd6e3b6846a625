"""LFW verification of the built-in embedders (acceptance check 4 of issue 2); writes JSON per configuration.

Run it under the shared CPU lock on the 2-core development machine:

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/eval_lfw.py --out /work/cache/eval/lfw \
        --benchmark ../shared/data/lfw/lfw.bin --embedder dlib-torch --embedder dlib

Each configuration is one `synthfr eval` command (printed, so the figures can be reproduced one by one) and
produces `<out>/<embedder>[-flip].json`; a markdown table of the results is printed at the end.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="../shared/data/lfw/lfw.bin")
    p.add_argument("--embedder", action="append", help="repeatable; default dlib-torch and dlib")
    p.add_argument("--out", default="/work/cache/eval/lfw")
    p.add_argument("--no-flip", action="store_true", help="skip the --flip runs")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for emb in args.embedder or ["dlib-torch", "dlib"]:
        for flip in ([False] if args.no_flip else [False, True]):
            js = out / f"{emb}{'-flip' if flip else ''}.json"
            cmd = ["synthfr", "eval", "--embedder", emb, "--benchmark", args.benchmark, "--json", str(js),
                   "--quiet"] + (["--flip"] if flip else [])
            print("$", shlex.join(cmd), flush=True)
            t0 = time.perf_counter()
            env_cmd = [sys.executable, "-c",
                       f"import torch; torch.set_num_threads({args.threads}); from synthfr.cli import main; "
                       f"raise SystemExit(main({cmd[1:]!r}))"]
            subprocess.run(env_cmd, check=True)
            secs = time.perf_counter() - t0
            r = json.loads(js.read_text())
            name, res = next(iter(r["benchmarks"].items()))
            rows.append((emb, flip, name, res, secs))
    print("\n| embedder | flip | benchmark | accuracy ± std | threshold | EER | TPR@1e-3 | TPR@1e-4 (negatives) | "
          "wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for emb, flip, name, r, secs in rows:
        t = r["tpr_at_fpr"]
        print(f"| {emb} | {'yes' if flip else 'no'} | {name} | {r['accuracy']:.4f} ± {r['std']:.4f} | "
              f"{r['threshold']:.4f} | {r['eer']:.4f} | {t['1e-3']:.4f} | {t['1e-4']:.4f} ({r['negatives']}) | "
              f"{secs:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
