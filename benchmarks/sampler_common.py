"""Shared helper of the sampler benchmarks: run one CLI command, record wall time, peak memory and its JSON.

Not a benchmark itself. Every benchmark prints the exact commands it ran; run them under the shared CPU lock:
``flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_X.py OUT_DIR``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNTHFR = str(REPO / ".venv" / "bin" / "synthfr") if (REPO / ".venv" / "bin" / "synthfr").exists() else "synthfr"


def run(args: list[str], json_path: Path, log: Path | None = None) -> dict:
    """Run ``synthfr ARGS --json JSON`` under /usr/bin/time; returns the JSON plus wall_s and peak_rss_gib."""
    cmd = [SYNTHFR, *args, "--json", str(json_path)]
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(timer + cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(p.stdout + "\n" + p.stderr)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"command failed ({p.returncode})")
    print(p.stdout.strip().splitlines()[0] if p.stdout.strip() else "", flush=True)
    out = json.loads(Path(json_path).read_text())
    out["wall_s"] = wall
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if m:
        out["peak_rss_gib"] = int(m.group(1)) / 2**20
    out["command"] = "synthfr " + " ".join(shlex.quote(c) for c in args)
    return out


def fmt(v, d=4):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{d}f}"
    return str(v)
