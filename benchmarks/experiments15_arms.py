"""Issue 15's arms: the seven questions, every arm's data and training, the paired comparisons, and where each
arm's results lie. Read by the runner (benchmarks/experiments15.py) and the tables
(benchmarks/experiments15_summary.py); imports neither."""
from __future__ import annotations

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
V2_ALL = "pose+expression+illumination+quality"  # every attribute group varies: synthfr-v2's default


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
    a.append(Arm("v2-dm-real50", "q2", "synthfr-v2 300x20 (the v2-all set) + domain mixup with real 50x10",
                 sets={"generate.generator": V2 + V2_ALL, "train.config.domain_mixup": "{O}/data/celeba-50x10"},
                 needs=("celeba-50x10",), same_data="v2-all"))
    a.append(Arm("real-rest", "q2", "real CelebA, every identity not held out (the real reference)", kind="train",
                 data="{O}/data/celeba-rest", images=4866, needs=("celeba-rest",)))
    for k in LT_COUNTS:
        a.append(Arm(k, "q3", f"same 300 identities, 6,000 images, long tail {int(LT_RATIOS[k])}:1 "
                     f"({max(LT_COUNTS[k])} to {min(LT_COUNTS[k])} images)", kind="train", data=f"{{O}}/data/syn300-{k}",
                     needs=("lt-pool", k)))
    for v in ("none", "pose", "illumination", "expression", V2_ALL):
        a.append(Arm(f"v2-{v if v != V2_ALL else 'all'}", "q4", f"synthfr-v2, varying: {v}",
                     sets={"generate.generator": V2 + v}, shared=("q2",) if v == V2_ALL else ()))
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
                ("dm-real50", "cat-real50"), ("dm-real100", "cat-real100"), ("dm-real100", "real100x10"),
                ("v2-all", "real-rest"), ("v2-dm-real50", "v2-all"), ("v2-dm-real50", "dm-real50"),
                ("v2-dm-real50", "real-rest")],
         "q3": [("lt-mild", "w300x20"), ("lt-steep", "w300x20"), ("lt-steep", "lt-mild")],
         "q4": [("v2-pose", "v2-none"), ("v2-illumination", "v2-none"), ("v2-expression", "v2-none"),
                ("v2-all", "v2-none"), ("v2-all", "w300x20"), ("v2-all", "real-rest")],
         "q5": [("w3000x2", "uniform-3000x2"), ("w3000x2", "vec2face-3000x2"), ("vec2face-3000x2", "uniform-3000x2")],
         "q6": [("im-low", "w300x20"), ("im-mid", "w300x20"), ("im-full", "w300x20"), ("im-full", "im-low")],
         "q7": []}


def category(arm: Arm) -> tuple[str, str | None]:
    """What an arm trains on — ``synthetic``, ``real``, ``mixed`` (synthetic + a few real) or ``pretrained`` —
    and the generator of its synthetic part (``synthfr-small``, the cpu-experiment default, unless it sets one)."""
    if arm.kind == "embedder":
        return "pretrained", None
    if arm.kind == "train" and "celeba" in arm.data:
        return "real", None
    gen = str(arm.sets.get("generate.generator", "synthfr-small")).split(":")[0]
    mixed = "train.config.domain_mixup" in arm.sets or "train.extra_data" in arm.sets
    return ("mixed" if mixed else "synthetic"), gen


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
