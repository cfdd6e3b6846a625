"""Issue 15's experiments at CPU scale: seven questions, every arm trained with 3 seeds, scored on LFW and a
held-out real benchmark; `summary` writes the markdown tables of docs/experiments.md ("Issue 15 plan").

Every arm is one `synthfr` command per training seed (a `pipeline` run of configs/cpu-experiment.yaml with
`--set` overrides; or `train` + `eval` for sets made by `synthfr combine --counts`), printed before it runs; a
question's shared inputs (real CelebA subsets, the long-tail pool) are made first by printed commands too.

    A=benchmarks/experiments15.py; O=/work/cache/exp; L=../shared/data/lfw/lfw.bin
    H=$O/heldout.bin; C=/work/cache/aligned/celeba
    python $A q7 --out $O --lfw $L --heldout $H --celeba $C              # the held-out benchmark first
    python $A q1 --out $O --lfw $L --heldout $H --celeba $C --dry-run    # print a question's commands
    flock /work/cache/cpu.lock nice -n 5 taskset -c 1 python $A q1 --out $O --lfw $L --heldout $H --celeba $C
    python $A q2 ... --arm real50x10 --seeds 0                           # one arm, one seed
    python $A cost                                                       # estimated CPU minutes per arm
    python $A summary --out $O                                           # the tables (benchmarks/experiments15_summary.py)

Re-running skips every arm-seed whose eval.json exists (pipelines also resume stage by stage).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "configs/cpu-experiment.yaml"
SEEDS = (0, 1, 2)
EPOCHS = 8
BASE_IMAGES = 6000  # 300 identities x 20: the cpu-experiment set
# train flags equal to configs/cpu-experiment.yaml's train.config (train/eval arms use the same recipe)
TRAIN_FLAGS = ["--backbone", "mobilefacenet_s1", "--input-size", "64", "--embedding-size", "512", "--head", "cosface",
               "--scale", "32", "--margin", "0.35", "--schedule", "cosine", "--warmup-epochs", "1", "--batch-size", "64",
               "--lr", "0.1", "--workers", "1", "--threads", "2", "--quiet"]
LT_IDS, LT_IMAGES = 300, 6000
LT_RATIOS = {"lt-mild": 10.0, "lt-steep": 100.0}  # head/tail image-count ratio of the two long tails
V2 = "synthfr-v2:vary="


def longtail_counts(n: int, total: int, ratio: float, minimum: int = 2) -> list[int]:
    """Images per identity, exponentially decaying from head to tail by ``ratio``, summing to ``total``; every
    identity keeps ``minimum`` images (a genuine pair). ``ratio`` 1 is the balanced set."""
    w = [ratio ** (-i / (n - 1)) for i in range(n)]
    raw = [total * x / sum(w) for x in w]
    c = [max(minimum, int(r)) for r in raw]
    order = sorted(range(n), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    k = 0
    while sum(c) < total:  # largest remainders first
        c[order[k % n]] += 1
        k += 1
    i = 0
    while sum(c) > total:  # the floor pushed the tail up: take from the head
        if c[i % n] > minimum:
            c[i % n] -= 1
        i += 1
    return sorted(c, reverse=True)


LT_COUNTS = {k: longtail_counts(LT_IDS, LT_IMAGES, r) for k, r in LT_RATIOS.items()}
LT_POOL_K = max(max(c) for c in LT_COUNTS.values())


@dataclass
class Arm:
    """One arm: how its data is made and trained. ``kind``: pipeline (the cpu-experiment pipeline with ``sets``),
    train (``synthfr train`` on ``data`` then ``synthfr eval``) or embedder (a pretrained network, evaluated)."""

    name: str
    question: str
    what: str
    kind: str = "pipeline"
    sets: dict = field(default_factory=dict)
    data: str = ""          # train arms: the dataset folder ({O} = --out)
    images: int = BASE_IMAGES
    needs: tuple = ()       # setup steps (names of SETUP) this arm reads
    shared: tuple = ()      # other questions this arm also answers
    same_data: str = ""     # the arm whose training set this one also uses (its quality is measured there)


def _arms() -> list[Arm]:
    a = [Arm("w100x60", "q1", "100 identities x 60 images", sets={"sample.n": 100, "generate.images_per_id": 60}),
         Arm("w300x20", "q1", "300 x 20 (the cpu-experiment set; q2/q3/q6 baseline)", shared=("q2", "q3", "q6")),
         Arm("w1000x6", "q1", "1,000 x 6", sets={"sample.n": 1000, "generate.images_per_id": 6}),
         Arm("w3000x2", "q1", "3,000 x 2 (HyperFace; the q5 hyperface arm)",
             sets={"sample.n": 3000, "generate.images_per_id": 2}, shared=("q5",))]
    for n in (50, 100):
        sub = f"{{O}}/data/celeba-{n}x10"
        a += [Arm(f"real{n}x10", "q2", f"real CelebA only: {n} identities x 10 (none held out)", kind="train",
                  data=sub, images=n * 10, needs=(f"celeba-{n}x10",)),
              Arm(f"dm-real{n}", "q2", f"synthetic 300x20 + domain mixup with real {n}x10 (psi per batch from "
                  "{0, 0.05, ..., 1}; real classes appended)", sets={"train.config.domain_mixup": sub},
                  needs=(f"celeba-{n}x10",), same_data="w300x20"),
              Arm(f"cat-real{n}", "q2", f"synthetic 300x20 + real {n}x10 concatenated, no mixup",
                  sets={"train.extra_data": f"[{sub}]"}, images=BASE_IMAGES + n * 10, needs=(f"celeba-{n}x10",),
                  same_data="w300x20")]
    a.append(Arm("real-rest", "q2", "real CelebA, every identity not held out (the real reference)", kind="train",
                 data="{O}/data/celeba-rest", images=4866, needs=("celeba-rest",)))
    for k in LT_COUNTS:
        a.append(Arm(k, "q3", f"same 300 identities, 6,000 images, long tail {int(LT_RATIOS[k])}:1 "
                     f"({max(LT_COUNTS[k])} to {min(LT_COUNTS[k])} images)", kind="train", data=f"{{O}}/data/syn300-{k}",
                     needs=("lt-pool", k)))
    for v in ("none", "pose", "illumination", "expression", "pose+expression+illumination+quality"):
        a.append(Arm(f"v2-{v.split('+')[0] if '+' not in v else 'all'}", "q4", f"synthfr-v2, varying: {v}",
                     sets={"generate.generator": V2 + v}))
    a += [Arm("uniform-3000x2", "q5", "uniform identities, 3,000 x 2",
              sets={"sample.n": 3000, "generate.images_per_id": 2, "sample.method": "uniform", "sample.options": "{}"}),
          Arm("vec2face-3000x2", "q5", "Vec2Face sampling (tau 0.3), 3,000 x 2",
              sets={"sample.n": 3000, "generate.images_per_id": 2, "sample.method": "vec2face",
                    "sample.options": "{tau: 0.3}"})]
    for name, phi, what in (("im-low", "mixup:phi_max=0.2", "phi in {0, 0.05, ..., 0.2}"),
                            ("im-mid", "mixup:phi_max=0.5", "phi in {0, 0.05, ..., 0.5}"),
                            ("im-full", "mixup", "phi in {0, 0.05, ..., 1} (SynFace's released generator)")):
        a.append(Arm(name, "q6", f"identity mixup, {what}", sets={"generate.variation": phi}))
    a += [Arm("judge-dlib", "q7", "pretrained dlib ResNet (the generator's space), no training", kind="embedder",
              data="dlib-torch"),
          Arm("judge-sface", "q7", "pretrained SFace (the judge), no training", kind="embedder", data="sface")]
    return a


ARMS = {a.name: a for a in _arms()}
QUESTIONS = {"q1": "dataset width vs depth at 6,000 images (SynFace 4.4)", "q2": "domain mixup with a few real "
             "faces (SynFace 3.4; Vec2Face Table 2)", "q3": "long tail (SynFace 4.3)", "q4": "attributes with "
             "synthfr-v2 (SynFace 4.5)", "q5": "samplers where packing matters", "q6": "identity mixup levels",
             "q7": "held-out real benchmark; pretrained references"}
# paired comparisons of each question (A - B)
PAIRS = {"q1": [("w100x60", "w300x20"), ("w1000x6", "w300x20"), ("w3000x2", "w300x20"), ("w100x60", "w3000x2")],
         "q2": [("w300x20", "real-rest"), ("real100x10", "real50x10"), ("dm-real50", "w300x20"),
                ("dm-real100", "w300x20"), ("cat-real50", "w300x20"), ("cat-real100", "w300x20"),
                ("dm-real50", "cat-real50"), ("dm-real100", "cat-real100"), ("dm-real100", "real100x10")],
         "q3": [("lt-mild", "w300x20"), ("lt-steep", "w300x20"), ("lt-steep", "lt-mild")],
         "q4": [("v2-pose", "v2-none"), ("v2-illumination", "v2-none"), ("v2-expression", "v2-none"),
                ("v2-all", "v2-none"), ("v2-all", "w300x20"), ("v2-all", "real-rest")],
         "q5": [("w3000x2", "uniform-3000x2"), ("w3000x2", "vec2face-3000x2"), ("vec2face-3000x2", "uniform-3000x2")],
         "q6": [("im-low", "w300x20"), ("im-mid", "w300x20"), ("im-full", "w300x20"), ("im-full", "im-low")],
         "q7": []}


def question_arms(q: str) -> list[Arm]:
    return [a for a in ARMS.values() if a.question == q or q in a.shared]


def arm_dir(out: str, arm: str, seed: int | None) -> str:
    return f"{out}/{arm}" if seed is None else f"{out}/{arm}/s{seed}"


def eval_json(out: str, arm: Arm, seed: int | None) -> str:
    d = arm_dir(out, arm.name, seed)
    return f"{d}/evaluate/eval.json" if arm.kind == "pipeline" else f"{d}/eval.json"


def dataset_of(out: str, arm: Arm) -> str | None:
    """The training set whose quality the summary reports (seed 0's for pipelines: datasets are seed-free)."""
    if arm.kind == "embedder":
        return None
    return f"{arm_dir(out, arm.name, 0)}/generate/dataset" if arm.kind == "pipeline" else arm.data.replace("{O}", out)


def arm_commands(arm: Arm, seed: int, a: argparse.Namespace) -> list[list[str]]:
    """The commands of one arm and training seed (the same for every question it belongs to)."""
    exe, out, d = a.exe, a.out, arm_dir(a.out, arm.name, seed)
    bench = [a.lfw, a.heldout]
    if arm.kind == "embedder":
        return [exe + ["eval", "--embedder", arm.data, *(x for b in bench for x in ("--benchmark", b)), "--json",
                       f"{arm_dir(out, arm.name, None)}/eval.json", "--device", "cpu", "--quiet"]]
    if arm.kind == "train":
        return [exe + ["train", "--data", arm.data.replace("{O}", out), "--out", f"{d}/run", *TRAIN_FLAGS, "--epochs",
                       str(a.epochs), "--seed", str(seed)],
                exe + ["eval", "--checkpoint", f"{d}/run", *(x for b in bench for x in ("--benchmark", b)), "--json",
                       f"{d}/eval.json", "--device", "cpu", "--quiet"]]
    sets = {"evaluate.benchmarks": f"[{', '.join(bench)}]", "train.config.seed": seed}
    if a.epochs != EPOCHS:
        sets["train.config.epochs"] = a.epochs
    if seed != 0:  # the dataset does not depend on the training seed: its quality is measured once (seed 0)
        sets["quality.enabled"] = "false"
    sets.update({k: str(v).replace("{O}", out) for k, v in arm.sets.items()})
    cmd = exe + ["pipeline", CONFIG, "--out", d, "--json", f"{d}/pipeline.json"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return [cmd]


def quality_command(arm: Arm, a: argparse.Namespace) -> list[str] | None:
    """dlib-torch and SFace (the judge) figures of an arm's training set, side by side (run once, after seed 0)."""
    ds = dataset_of(a.out, arm)
    if ds is None or arm.same_data:
        return None
    q = f"{arm_dir(a.out, arm.name, None)}/quality"
    return a.exe + ["quality", f"{ds}/images", "--embedder", "dlib-torch", "--judges", "sface", "--no-attributes", "--json",
                    f"{q}/quality.json", "--embeddings-out", f"{q}/embeddings.npy", "--device", "cpu", "--quiet"]


def setup_steps(names: list[str], a: argparse.Namespace) -> list[tuple[str, list[str] | None, str, object]]:
    """Shared inputs: ``(name, command, file that exists once it is done, counts to write first or None)``."""
    out, steps = a.out, []
    for n in names:
        if n.startswith("celeba-"):
            counts = f"{out}/data/{n}.counts.json"
            steps.append((n, a.exe + ["combine", a.celeba, "--counts", counts, "--out", f"{out}/data/{n}"],
                          f"{out}/data/{n}/config.yaml", ("celeba", n)))
        elif n == "lt-pool":  # the 300 identities of w300x20 with the largest count: every long tail is a subset
            d = f"{out}/lt-pool"
            steps.append((n, a.exe + ["pipeline", CONFIG, "--out", d, "--json", f"{d}/pipeline.json", "--set",
                                      f"generate.images_per_id={LT_POOL_K}", "--set", "quality.enabled=false",
                                      "--set", "train.enabled=false", "--set", "evaluate.enabled=false"],
                          f"{d}/generate/DONE.json", None))
        else:  # a long tail
            counts = f"{out}/data/{n}.counts.json"
            steps.append((n, a.exe + ["combine", f"{out}/lt-pool/generate/dataset", "--counts", counts, "--out",
                                      f"{out}/data/syn300-{n}"], f"{out}/data/syn300-{n}/config.yaml", ("longtail", n)))
    return steps


def write_counts(kind: tuple, path: str, a: argparse.Namespace) -> str:
    """Write a counts file; returns a one-line description. CelebA subsets leave out the held-out identities."""
    if kind[0] == "longtail":
        counts: object = LT_COUNTS[kind[1]]
        desc = f"{len(counts)} identities, {sum(counts)} images, {max(counts)} to {min(counts)} per identity"
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from make_heldout_pairs import list_identities

        h = Path(a.heldout)
        held = set(h.with_name(h.name[:-4] + ".identities.txt").read_text().split())
        ids = [(n, len(im)) for n, im in list_identities(Path(a.celeba)) if n not in held]
        if kind[1] == "celeba-rest":
            counts = {n: k for n, k in ids}
        else:  # nested subsets: the first n identities (generator hold-out order) with >= 10 images, 10 each
            n = int(kind[1].split("-")[1].split("x")[0])
            counts = {name: 10 for name, k in ids if k >= 10}
            counts = dict(list(counts.items())[:n])
        desc = f"{len(counts)} real identities (held-out ones excluded), {sum(counts.values())} images"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(counts) + "\n")
    return desc


def describe_counts(kind: tuple) -> str:
    if kind[0] == "longtail":
        c = LT_COUNTS[kind[1]]
        return f"{len(c)} identities, {sum(c)} images, {max(c)} to {min(c)} per identity"
    what = "every identity, all images" if kind[1] == "celeba-rest" else kind[1].split("-")[1].replace("x", " x ")
    return f"real CelebA, {what}, the held-out identities left out (made from --celeba at run time)"


def _show(cmd: list[str]) -> str:
    return "$ " + " ".join(shlex.quote(c) for c in cmd)


def _run(cmd: list[str], dry: bool) -> None:
    print(_show(cmd), flush=True)
    if not dry:
        subprocess.run(cmd, check=True, cwd=ROOT)


def run_question(q: str, a: argparse.Namespace) -> int:
    arms = [x for x in question_arms(q) if not a.arm or x.name in a.arm]
    if a.arm and len(arms) != len(a.arm):
        raise SystemExit(f"unknown arm for {q}: {sorted(set(a.arm) - {x.name for x in arms})}; arms of {q}: "
                         f"{', '.join(x.name for x in question_arms(q))}")
    print(f"# {q}: {QUESTIONS[q]} ({len(arms)} arms, seeds {' '.join(map(str, a.seeds))}, {a.epochs} epochs)")
    if q == "q7" and (a.dry_run or not Path(a.heldout).is_file()):
        _run([a.python, "benchmarks/make_heldout_pairs.py", "--celeba", a.celeba, "--out", a.heldout,
              "--identities", "50", "--json", a.heldout[:-4] + ".json"], a.dry_run)
    elif not a.dry_run and not Path(a.heldout).is_file():
        raise SystemExit(f"held-out benchmark {a.heldout} not found: run question q7 first (it makes it)")
    needs = list(dict.fromkeys(n for x in arms for n in x.needs))
    for name, cmd, made, counts in setup_steps(needs, a):
        if Path(made).is_file() and not a.dry_run:
            print(f"# {name}: done ({made})")
            continue
        if counts is not None:
            path = cmd[cmd.index("--counts") + 1]
            print(f"# write {path}: " + (describe_counts(counts) if a.dry_run else write_counts(counts, path, a)))
        _run(cmd, a.dry_run)
    for arm in arms:
        for seed in (a.seeds if arm.kind != "embedder" else [None]):
            done = Path(eval_json(a.out, arm, seed)).is_file()
            if done and not a.dry_run:
                print(f"# {arm.name} seed {seed}: done ({eval_json(a.out, arm, seed)})")
                continue
            t0 = time.time()
            for cmd in arm_commands(arm, seed if seed is not None else 0, a):
                _run(cmd, a.dry_run)
            if not a.dry_run:
                d = Path(arm_dir(a.out, arm.name, seed))
                (d / "wall.json").write_text(json.dumps({"seconds": time.time() - t0}) + "\n")
        qc = quality_command(arm, a)  # once the dataset exists (seed 0 made it)
        if qc and (a.dry_run or (not Path(qc[qc.index("--json") + 1]).is_file() and Path(dataset_of(a.out, arm)).is_dir())):
            _run(qc, a.dry_run)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=[*QUESTIONS, "all", "summary", "cost"])
    ap.add_argument("--out", default="/work/cache/exp", help="experiments folder (one sub-folder per arm)")
    ap.add_argument("--lfw", default="../shared/data/lfw/lfw.bin", help="lfw.bin (evaluation only)")
    ap.add_argument("--heldout", help="held-out .bin (default OUT/heldout.bin; made by q7)")
    ap.add_argument("--celeba", default="/work/cache/aligned/celeba", help="aligned CelebA identity tree")
    ap.add_argument("--arm", nargs="+", help="only these arms of the question")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds (default 0 1 2)")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs of every arm (default 8)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--exe", default=None, help="how to call synthfr (default: this python -m synthfr.cli)")
    ap.add_argument("--question", help="summary/cost: only this question")
    a = ap.parse_args(argv)
    a.heldout = a.heldout or f"{a.out}/heldout.bin"
    a.python = "python" if a.exe else sys.executable  # printed as given with --exe (docs), exact otherwise
    a.exe = shlex.split(a.exe) if a.exe else [sys.executable, "-m", "synthfr.cli"]
    if a.what in ("summary", "cost"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import experiments15_summary as s

        qs = [a.question] if a.question else list(QUESTIONS)
        return s.summary(a.out, qs) if a.what == "summary" else s.cost(qs, a.epochs, len(a.seeds))
    for q in (["q7", *(x for x in QUESTIONS if x != "q7")] if a.what == "all" else [a.what]):
        run_question(q, a)  # q7 first: it makes the held-out benchmark every other arm is scored on
    return 0


if __name__ == "__main__":
    sys.exit(main())
