"""Tables of benchmarks/experiments15.py: per question, each arm's figures over its training seeds and the paired
comparisons; and the estimated CPU cost of every arm (`cost`). Reads only files the runner's commands write:

    OUT/<arm>/s<seed>/evaluate/eval.json (pipelines) or OUT/<arm>/s<seed>/eval.json (train + eval)
    OUT/<arm>/eval.json (pretrained embedders)          OUT/<arm>/s<seed>/wall.json (the runner's clock)
    OUT/<arm>/quality/quality.json (`synthfr quality --judges sface`: dlib-torch and SFace side by side)
    OUT/<arm>/s<seed>/[train/]run/config.json (the training run's resolved config: its backbone's layout)
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import experiments15_arms as E  # noqa: E402
from experiments import paired_t  # noqa: E402

from synthfr.utils.device import use_channels_last  # noqa: E402

LFW, HELD = "lfw", "heldout"
# estimated minutes on a quiet 2-core CPU, measured in sessions 13-14 on the AMD EPYC without AVX-512 (the
# session-6 machine with AVX-512 was ~1.6x faster: training 9.6 min, generation 0.9 min)
MIN_TRAIN_6000 = 12.7  # training, 6,000 images x 8 epochs: 15.5 min NCHW; channels_last (the CPU default since
                       # session 16) 12.7 min (v2-all-nhwc seed 0, 801 s with its evaluation)
MIN_DATA = 1.6         # sampling + generation of 6,000 images, once per dataset (seeds and sharers link it)
MIN_EVAL = 0.6         # LFW + held-out evaluation
MIN_JUDGE = 3.5        # `synthfr quality --judges sface` of one training set (dlib-torch + SFace)
BASE_IMAGES_SYN = 6000


def _read(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _ms(xs: list[float]) -> str:
    if not xs:
        return "—"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.4f}"
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return f"{m:.4f} ± {sd:.4f}"


def _mean(xs: list[float], fmt: str = ".3f") -> str:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return format(sum(xs) / len(xs), fmt) if xs else "—"


def layout(run_config: dict | None) -> str | None:
    """``NHWC`` or ``NCHW``: the layout a recorded training run trained its backbone in (runs from before
    ``memory_format`` existed trained NCHW); ``None`` when the run left no config."""
    if run_config is None:
        return None
    c = run_config.get("config", {})
    device = c.get("device", "auto")
    if device == "auto":  # the loop's rule: CUDA when there is one
        device = "cuda" if (run_config.get("provenance") or {}).get("cuda_available") else "cpu"
    return "NHWC" if use_channels_last(c.get("memory_format", "contiguous"), device) else "NCHW"


def load_arm(out: Path, arm: E.Arm) -> dict:
    """``{"seeds": {seed: {bench: result}}, "wall": [s], "quality": {network: headline}, "layouts": {layout}}`` of
    one arm."""
    res: dict = {"seeds": {}, "wall": [], "quality": {}, "layouts": set()}
    seeds = [None] if arm.kind == "embedder" else range(10)
    for s in seeds:
        ev = _read(Path(E.eval_json(str(out), arm, s)))
        if ev is None:
            continue
        res["seeds"][s] = ev.get("benchmarks", {})
        if s is not None and (lay := layout(_read(Path(E.run_config(str(out), arm, s))))):
            res["layouts"].add(lay)
        d = Path(E.arm_dir(str(out), arm.name, s))
        w = _read(d / "wall.json") or {"seconds": (_read(d / "pipeline.json") or {}).get("seconds")}
        if w.get("seconds") is not None:
            res["wall"].append(float(w["seconds"]))
    q = _read(out / (arm.same_data or arm.name) / "quality" / "quality.json")
    if q is None and arm.kind == "pipeline" and not arm.same_data:  # the pipeline's own report (dlib only unless it gains judges)
        q = _read(Path(E.arm_dir(str(out), arm.name, 0)) / "quality" / "quality.json")
    if q:
        nets = q.get("networks") or {}
        res["quality"] = {n: v.get("dataset", {}) for n, v in nets.items()}
        if not nets and "consistency" in q:
            res["quality"] = {"dlib-torch": {"mean cos to own centre": q["consistency"].get("mean_cos_to_centre"),
                                             "EER": (q.get("verification") or {}).get("eer")}}
    return res


def _q(res: dict, net: str) -> str:
    h = res["quality"].get(net)
    if not h:
        return "—"
    c, e = h.get("mean cos to own centre"), h.get("EER")
    return f"{c:.3f} / {e:.3f}" if c is not None and e is not None else "—"


def _fig(res: dict, bench: str, key: str) -> list[float]:
    out = []
    for b in res["seeds"].values():
        r = b.get(bench)
        if r is None:
            continue
        v = r.get(key) if key != "tpr" else (r.get("tpr_at_fpr") or {}).get("1e-3")
        if v is not None:
            out.append(float(v))
    return out


def compare(ra: dict, rb: dict, bench: str) -> tuple[str, str, str]:
    """Δ accuracy mean ± sd over the shared seeds, and paired t over the 10 folds (fold accuracies averaged over
    those seeds: evaluation noise) and over the seeds (training noise)."""
    seeds = sorted(set(ra["seeds"]) & set(rb["seeds"]), key=lambda s: (s is None, s))
    fa = [ra["seeds"][s][bench]["fold_accuracies"] for s in seeds if bench in ra["seeds"][s] and bench in rb["seeds"][s]]
    fb = [rb["seeds"][s][bench]["fold_accuracies"] for s in seeds if bench in ra["seeds"][s] and bench in rb["seeds"][s]]
    if not fa:
        return "—", "—", "—"
    avg = lambda fs: [sum(col) / len(col) for col in zip(*fs)]  # noqa: E731
    _, t_fold = paired_t(avg(fa), avg(fb))
    da = [sum(f) / len(f) for f in fa]
    db = [sum(f) / len(f) for f in fb]
    d = [x - y for x, y in zip(da, db)]
    m, t_seed = paired_t(da, db)
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1)) if len(d) > 1 else float("nan")
    delta = f"{m:+.4f}" + (f" ± {sd:.4f} ({len(d)} seeds)" if len(d) > 1 else " (1 seed)")
    return delta, f"{t_fold:+.2f}", ("—" if math.isnan(t_seed) else f"{t_seed:+.2f}")


def same_layout(a: str, b: str, load) -> tuple[str, str]:
    """A and B, one of them swapped for its same-layout twin (``E.LAYOUT_TWINS``) when they trained in different
    layouts and the twin trained in the other's: a paired comparison should differ only in what the arms are
    about. A pair of twins (the layout control itself) stays as it is."""
    la, lb = load(a)["layouts"], load(b)["layouts"]
    if len(la) != 1 or len(lb) != 1 or la == lb or E.LAYOUT_TWINS.get(a) == b or E.LAYOUT_TWINS.get(b) == a:
        return a, b
    if (tb := E.LAYOUT_TWINS.get(b)) and load(tb)["layouts"] == la:
        return a, tb
    if (ta := E.LAYOUT_TWINS.get(a)) and load(ta)["layouts"] == lb:
        return ta, b
    return a, b


def summary(out: str | Path, questions: list[str]) -> int:
    out = Path(out)
    cache: dict[str, dict] = {}

    def load(name: str) -> dict:
        return cache.setdefault(name, load_arm(out, E.ARMS[name]))

    for q in questions:
        pairs = [same_layout(a, b, load) for a, b in E.PAIRS.get(q, [])]
        arms = E.question_arms(q)
        arms += [E.ARMS[n] for n in dict.fromkeys(n for p in pairs for n in p) if E.ARMS[n] not in arms]  # twins
        print(f"\n### {q}: {E.QUESTIONS[q]}\n")
        print("| arm | what | seeds | LFW accuracy (mean ± sd over seeds) | LFW EER | LFW TPR@FPR=1e-3 | held-out "
              "accuracy | held-out EER | dataset dlib: cos to own centre / EER | dataset SFace: cos to own centre / "
              "EER | wall time per seed |\n|---|---|---|---|---|---|---|---|---|---|---|")
        for arm in arms:
            r = load(arm.name)
            n = len(r["seeds"])
            wall = f"{sum(r['wall']) / len(r['wall']) / 60:.1f} min" if r["wall"] else "—"
            print(f"| {arm.name} | {arm.what} | {n if arm.kind != 'embedder' else '—'} | {_ms(_fig(r, LFW, 'accuracy'))}"
                  f" | {_mean(_fig(r, LFW, 'eer'))} | {_mean(_fig(r, LFW, 'tpr'))} | {_ms(_fig(r, HELD, 'accuracy'))}"
                  f" | {_mean(_fig(r, HELD, 'eer'))} | {_q(r, 'dlib-torch')} | {_q(r, 'sface')} | {wall} |")
        if pairs:
            print("\n| comparison (A − B) | Δ LFW accuracy | paired t, 10 folds | paired t, seeds | Δ held-out "
                  "accuracy | paired t, 10 folds | paired t, seeds |\n|---|---|---|---|---|---|---|")
            for a, b in pairs:
                print(f"| {a} − {b} | " + " | ".join(compare(load(a), load(b), LFW)) + " | "
                      + " | ".join(compare(load(a), load(b), HELD)) + " |")
    return 0


def headline(out: str | Path) -> int:
    """Issue 15's acceptance 3 from whatever has run: the real reference, the best synthetic-only arm of each
    generator and the best synthetic + few-real arm, by mean LFW accuracy over seeds, with the gap to real."""
    out = Path(out)
    res = {a.name: load_arm(out, a) for a in E.ARMS.values() if E.category(a)[0] != "pretrained"}

    def mean(name: str, bench: str = LFW) -> float | None:
        xs = _fig(res[name], bench, "accuracy")
        return sum(xs) / len(xs) if xs else None

    def best(kind: str, gen: str | None = None) -> str | None:
        names = [a.name for a in E.ARMS.values() if E.category(a)[0] == kind and mean(a.name) is not None
                 and (gen is None or E.category(a)[1] == gen)]
        return max(names, key=mean) if names else None

    real = "real-rest" if mean("real-rest") is not None else best("real")
    gens = sorted({E.category(a)[1] for a in E.ARMS.values() if E.category(a)[0] == "synthetic"})
    rows = [("real reference" if real == "real-rest" else "best real-only (no real-rest yet)", real)]
    rows += [(f"best synthetic-only, {g}", best("synthetic", g)) for g in gens]
    rows += [(f"best synthetic + few real, {g}", best("mixed", g)) for g in gens]
    print("\n### Headline: real vs synthetic (best arm of each kind by mean LFW accuracy over its seeds)\n")
    print("| setting | arm | seeds | LFW accuracy | gap to the real reference (points) | held-out accuracy |\n"
          "|---|---|---|---|---|---|")
    for label, name in rows:
        if name is None:
            print(f"| {label} | — | — | — | — | — |")
            continue
        gap = "—" if real is None or name == real else f"{100 * (mean(name) - mean(real)):+.1f}"
        print(f"| {label} | {name} | {len(res[name]['seeds'])} | {_ms(_fig(res[name], LFW, 'accuracy'))} | {gap} | "
              f"{_ms(_fig(res[name], HELD, 'accuracy'))} |")
    return 0


def arm_minutes(arm: E.Arm, epochs: int, seeds: int) -> float:
    """Estimated CPU minutes of one arm over ``seeds`` training seeds (quiet 2-core machine)."""
    if arm.kind == "embedder":
        return 1.0
    train = MIN_TRAIN_6000 * arm.images / 6000 * epochs / E.EPOCHS
    judge = 0.0 if arm.same_data else MIN_JUDGE
    if arm.kind == "train":
        return seeds * (train + MIN_EVAL) + judge
    data = 0.0 if arm.same_data else MIN_DATA * min(arm.images, BASE_IMAGES_SYN) / 6000
    return data + seeds * (train + MIN_EVAL) + judge


def setup_minutes(name: str) -> float:
    return MIN_DATA * E.LT_IDS * E.LT_POOL_K / 6000 if name.startswith("lt-pool") else 0.2


def cost(questions: list[str], epochs: int = E.EPOCHS, seeds: int = 3) -> int:
    """Markdown table of estimated CPU minutes; every arm counted once (under its first question)."""
    seen: set[str] = set()
    total = 0.0
    print(f"| question | arms (new in this question) | runs | estimated CPU time ({seeds} seeds, {epochs} epochs) |"
          "\n|---|---|---|---|")
    for q in questions:
        arms = [a for a in E.question_arms(q) if a.name not in seen]
        setups = sorted({n for a in arms for n in a.needs} - seen)
        seen |= {a.name for a in arms} | set(setups)
        m = sum(arm_minutes(a, epochs, seeds) for a in arms) + sum(setup_minutes(s) for s in setups)
        runs = sum(seeds if a.kind != "embedder" else 1 for a in arms)
        total += m
        print(f"| {q} | {', '.join(a.name for a in arms) or '(all shared)'} | {runs} | {m:.0f} min ({m / 60:.1f} h) |")
    print(f"| **all** | | | **{total:.0f} min ({total / 60:.1f} CPU-hours)** |")
    return 0
