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
    python $A q2 ... --arm real50x10 --seeds 0 --memory-format contiguous  # as trained before session 16 (NCHW)
    python $A cost                                                       # estimated CPU minutes per arm
    python $A summary --out $O                                           # the tables (benchmarks/experiments15_summary.py)
    python $A archive --out $O --to benchmarks/results/issue15            # keep the figures (summary reads either)
    python $A commands                                                   # every arm's command, markdown (the docs)

Re-running skips every arm-seed whose eval.json exists (pipelines also resume stage by stage). A pipeline arm-seed
whose dataset a finished run made already starts from hard links to it (`reuse_commands`).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiments15_arms import (  # noqa: E402
    ARMS, CONFIG, EPOCHS, LT_COUNTS, LT_POOL_K, QUESTIONS, ROOT, SEEDS, TRAIN_FLAGS, V2, V2_ALL, Arm, arm_dir,
    dataset_of, eval_json, question_arms)
import experiments15_summary as summary_tables  # noqa: E402


def arm_commands(arm: Arm, seed: int, a: argparse.Namespace) -> list[list[str]]:
    """The commands of one arm and training seed (the same for every question it belongs to)."""
    exe, out, d = a.exe, a.out, arm_dir(a.out, arm.name, seed)
    bench = [a.lfw, a.heldout]
    if arm.kind == "embedder":
        return [exe + ["eval", "--embedder", arm.data, *(x for b in bench for x in ("--benchmark", b)), "--json",
                       f"{arm_dir(out, arm.name, None)}/eval.json", "--device", "cpu", "--quiet"]]
    layout = a.memory_format
    if arm.kind == "train":
        return [exe + ["train", "--data", arm.data.replace("{O}", out), "--out", f"{d}/run", *TRAIN_FLAGS, "--epochs",
                       str(a.epochs), "--seed", str(seed), *(["--memory-format", layout] if layout else [])],
                exe + ["eval", "--checkpoint", f"{d}/run", *(x for b in bench for x in ("--benchmark", b)), "--json",
                       f"{d}/eval.json", "--device", "cpu", "--quiet"]]
    sets = {"evaluate.benchmarks": f"[{', '.join(bench)}]", "train.config.seed": seed}
    if a.epochs != EPOCHS:
        sets["train.config.epochs"] = a.epochs
    # the dataset does not depend on the training seed: its quality (dlib-torch and SFace side by side) is
    # measured once per training set by quality_command, not by the pipeline's stage
    sets["quality.enabled"] = "false"
    if layout:  # before the arm's own settings: an arm that fixes the layout (v2-all-nhwc) keeps it
        sets["train.config.memory_format"] = layout
    sets.update({k: str(v).replace("{O}", out) for k, v in arm.sets.items()})
    cmd = exe + ["pipeline", CONFIG, "--out", d, "--json", f"{d}/pipeline.json"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return [cmd]


def _stage_configs(cmd: list[str]) -> dict:
    """The resolved stage configs of a pipeline command (what its DONE.json markers will record)."""
    from synthfr.app.pipeline import load_pipeline_config, parse_overrides, stage_configs

    sets = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"]
    return stage_configs(load_pipeline_config(ROOT / cmd[cmd.index("pipeline") + 1], parse_overrides(sets),
                                              out=cmd[cmd.index("--out") + 1]))


def reuse_commands(arm: Arm, seed: int, a: argparse.Namespace) -> list[list[str]]:
    """Hard links to a finished run that made this arm-seed's dataset already (seed 0 of this arm, or of the arm
    whose training set it shares, or another seed or sharer of that set): its sample and generate stages, and
    quality where that run measured it. Linked only when each stage's recorded config equals this run's, so the
    pipeline skips them and only training and evaluation run — the dataset does not depend on the training seed.
    Saves the generation (1.5-2 min per arm-seed here); the images are those a re-generation would make."""
    base, d = arm.same_data or arm.name, arm_dir(a.out, arm.name, seed)
    if arm.kind != "pipeline":
        return []
    sharers = [x.name for x in ARMS.values() if x.kind == "pipeline" and base in (x.name, x.same_data)]
    donors = [p for p in dict.fromkeys([arm_dir(a.out, base, 0)] + [arm_dir(a.out, x, s) for x in sharers
                                                                      for s in SEEDS]) if p != d]
    if a.dry_run:  # printed as run once the set's own seed 0 is complete
        first = arm_dir(a.out, base, 0)
        return [] if d == first else [["mkdir", "-p", d], ["cp", "-al", f"{first}/sample", f"{first}/generate", d]]
    if Path(d, "generate").exists():
        return []
    want = _stage_configs(arm_commands(arm, seed, a)[0])
    for donor in donors:
        stages = []
        for st in ("sample", "generate", "quality"):
            try:
                done = json.loads(Path(donor, st, "DONE.json").read_text())
            except (OSError, ValueError):
                break
            if done.get("config") != want[st]:
                break
            stages.append(f"{donor}/{st}")
        if len(stages) >= 2:
            return [["mkdir", "-p", d], ["cp", "-al", *stages, d]]
    return []


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
        elif n in ("lt-pool", "lt-pool-v2"):  # w300x20's (v2-all's) identities with the largest count: every
            d = f"{out}/{n}"                  # long tail is a subset, and image k of an identity is the same image
            gen = ["--set", f"generate.generator={V2}{V2_ALL}"] if n.endswith("-v2") else []
            steps.append((n, a.exe + ["pipeline", CONFIG, "--out", d, "--json", f"{d}/pipeline.json", "--set",
                                      f"generate.images_per_id={LT_POOL_K}", *gen, "--set", "quality.enabled=false",
                                      "--set", "train.enabled=false", "--set", "evaluate.enabled=false"],
                          f"{d}/generate/DONE.json", None))
        else:  # a long tail (v2-…: cut from the synthfr-v2 pool)
            counts, pool = f"{out}/data/{n}.counts.json", "lt-pool-v2" if n.startswith("v2-") else "lt-pool"
            steps.append((n, a.exe + ["combine", f"{out}/{pool}/generate/dataset", "--counts", counts, "--out",
                                      f"{out}/data/syn300-{n}"], f"{out}/data/syn300-{n}/config.yaml",
                          ("longtail", n.removeprefix("v2-"))))
    return steps


def write_counts(kind: tuple, path: str, a: argparse.Namespace) -> str:
    """Write a counts file; returns a one-line description. CelebA subsets leave out the held-out identities."""
    if kind[0] == "longtail":
        counts: object = LT_COUNTS[kind[1]]
        desc = f"{len(counts)} identities, {sum(counts)} images, {max(counts)} to {min(counts)} per identity"
    else:
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
            reuse = reuse_commands(arm, seed, a) if seed is not None else []
            if reuse and a.dry_run:
                print(f"# when {arm_dir(a.out, arm.same_data or arm.name, 0)} has made its dataset, "
                      f"{arm.name} seed {seed} starts from it (the pipeline skips the copied stages):")
            for cmd in reuse + arm_commands(arm, seed if seed is not None else 0, a):
                _run(cmd, a.dry_run)
            if not a.dry_run:
                d = Path(arm_dir(a.out, arm.name, seed))
                (d / "wall.json").write_text(json.dumps({"seconds": time.time() - t0}) + "\n")
        qc = quality_command(arm, a)  # once the dataset exists (seed 0 made it)
        if qc and (a.dry_run or (not Path(qc[qc.index("--json") + 1]).is_file() and Path(dataset_of(a.out, arm)).is_dir())):
            _run(qc, a.dry_run)
    return 0


def command_tables(questions: list[str]) -> int:
    """Markdown, per question: every arm's command for training seed S (docs/experiments.md, "Every arm's
    command"). O, L, H as in the docs; RECIPE = the train flags; the runner also adds ``--json
    O/ARM/sS/pipeline.json`` and ``--set quality.enabled=false`` to pipelines, and links a finished set first."""
    a = argparse.Namespace(out="O", lfw="L", heldout="H", exe=["synthfr"], epochs=EPOCHS, dry_run=True,
                           memory_format=None)
    seen: dict[str, str] = {}
    recipe = " ".join(TRAIN_FLAGS)
    for q in questions:
        print(f"\n#### {q}: {QUESTIONS[q]}\n\n| arm | what | command for training seed S (S = 0, 1, 2) |\n|---|---|---|")
        for arm in question_arms(q):
            if arm.name in seen:
                print(f"| {arm.name} | {arm.what} | as in {seen[arm.name]} |")
                continue
            seen[arm.name] = q
            cmds = arm_commands(arm, "S", a)  # type: ignore[arg-type]
            text = " && ".join(_show(c)[2:] for c in cmds).replace(recipe, "RECIPE")
            for flag in (" --json O/" + arm.name + "/sS/pipeline.json", " --set quality.enabled=false"):
                text = text.replace(flag, "")
            print(f"| {arm.name} | {arm.what} | `{text}` |")
    return 0


def archive(out: str, to: str) -> int:
    """Copy the small files the tables are made from (eval.json, wall.json, the training runs' config.json, the
    held-out benchmark's description; of quality.json only the per-network headline the tables read) from ``out``
    to ``to`` in the same layout, so ``summary --out TO`` outlives the scratch folder."""
    import shutil

    src, dst, n = Path(out), Path(to), 0
    for p in sorted(src.glob("*.json")) + sorted(src.rglob("eval.json")) + sorted(src.rglob("wall.json")) + sorted(
            src.glob("*/quality/quality.json")) + sorted(src.glob("*/s*/run/config.json")) + sorted(
            src.glob("*/s*/train/run/config.json")):
        parts = p.relative_to(src).parts
        if len(parts) > 1 and parts[0] not in ARMS:  # only arms' folders (not frozen code copies, data, ...)
            continue
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        if p.name == "quality.json":  # ~400 KB with per-identity detail: keep the headline of each network
            nets = json.loads(p.read_text()).get("networks") or {}
            q.write_text(json.dumps({"networks": {k: {"dataset": v.get("dataset", {})} for k, v in nets.items()}},
                                    indent=1) + "\n")
        else:
            shutil.copy2(p, q)
        n += 1
    print(f"archived {n} files from {src} to {dst}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=[*QUESTIONS, "all", "summary", "cost", "archive", "commands"])
    ap.add_argument("--out", default="/work/cache/exp", help="experiments folder (one sub-folder per arm)")
    ap.add_argument("--lfw", default="../shared/data/lfw/lfw.bin", help="lfw.bin (evaluation only)")
    ap.add_argument("--heldout", help="held-out .bin (default OUT/heldout.bin; made by q7)")
    ap.add_argument("--celeba", default="/work/cache/aligned/celeba", help="aligned CelebA identity tree")
    ap.add_argument("--arm", nargs="+", help="only these arms of the question")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds (default 0 1 2)")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs of every arm (default 8)")
    ap.add_argument("--memory-format", choices=["auto", "channels_last", "contiguous"],
                    help="the backbone's training layout (default: the recipe's, auto = channels_last on CPU). "
                         "contiguous re-creates bit for bit the arm-seeds trained before the layout switch of "
                         "session 16, whose archived config.json records no memory_format (docs/experiments.md)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--exe", default=None, help="how to call synthfr (default: this python -m synthfr.cli)")
    ap.add_argument("--question", help="summary/cost: only this question")
    ap.add_argument("--to", default=str(ROOT / "benchmarks" / "results" / "issue15"),
                    help="archive: where the figures are kept (default benchmarks/results/issue15)")
    a = ap.parse_args(argv)
    a.heldout = a.heldout or f"{a.out}/heldout.bin"
    a.python = "python" if a.exe else sys.executable  # printed as given with --exe (docs), exact otherwise
    a.exe = shlex.split(a.exe) if a.exe else [sys.executable, "-m", "synthfr.cli"]
    if a.what == "archive":
        return archive(a.out, a.to)
    if a.what == "commands":
        return command_tables([a.question] if a.question else [q for q in QUESTIONS])
    if a.what in ("summary", "cost"):
        s = summary_tables
        qs = [a.question] if a.question else list(QUESTIONS)
        if a.what == "cost":
            return s.cost(qs, a.epochs, len(a.seeds))
        rc = s.summary(a.out, qs)
        return rc if a.question else s.headline(a.out)  # the whole summary ends with the real-vs-synthetic lines
    for q in (["q7", *(x for x in QUESTIONS if x != "q7")] if a.what == "all" else [a.what]):
        run_question(q, a)  # q7 first: it makes the held-out benchmark every other arm is scored on
    return 0


if __name__ == "__main__":
    sys.exit(main())
