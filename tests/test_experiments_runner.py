"""benchmarks/experiments15.py (issue 15): the dry run prints the right commands for every question, every command
is one the CLI accepts, and the summary reads a small fake results tree correctly. Nothing here trains."""
from __future__ import annotations

import importlib.util
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


E = _load("experiments15")
S = _load("experiments15_summary")
A = _load("experiments15_arms")
ARGS = ["--dry-run", "--exe", "synthfr", "--out", "O", "--lfw", "L.bin", "--heldout", "H.bin", "--celeba", "C"]


def _commands(q: str, capsys, *extra: str) -> list[list[str]]:
    assert E.main([q, *ARGS, *extra]) == 0
    return [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]


def _sets(cmd: list[str]) -> dict[str, str]:
    return dict(cmd[i + 1].split("=", 1) for i, c in enumerate(cmd) if c == "--set")


def _check_valid(cmds: list[list[str]]) -> None:
    """Every pipeline command builds a valid PipelineConfig; every other synthfr command parses."""
    from synthfr.app.cli import build_parser
    from synthfr.app.pipeline import load_pipeline_config, parse_overrides

    for c in cmds:
        if c[0] != "synthfr":
            continue
        if c[1] == "pipeline":
            over = parse_overrides([f"{k}={v}" for k, v in _sets(c).items()])
            load_pipeline_config(ROOT / c[2], over, out=c[c.index("--out") + 1])
        else:
            build_parser().parse_args(c[1:])


def test_q1_width_vs_depth(capsys):
    cmds = _commands("q1", capsys)
    _check_valid(cmds)
    pipes = [c for c in cmds if c[1] == "pipeline"]
    assert len(pipes) == 24  # 4 arms x 3 seeds, with synthfr-small and with synthfr-v2
    sizes = set()
    for c in pipes:
        s = _sets(c)
        n, k = int(s.get("sample.n", 300)), int(s.get("generate.images_per_id", 20))
        assert n * k == 6000
        sizes.add((n, k, s.get("generate.generator", "synthfr-small")))
        assert s["evaluate.benchmarks"] == "[L.bin, H.bin]" and s["train.config.seed"] in "012"
        assert s["quality.enabled"] == "false"  # measured once per dataset, by the quality commands below
        assert c[2] == "configs/cpu-experiment.yaml" and c[c.index("--out") + 1].endswith(f"/s{s['train.config.seed']}")
    v2 = "synthfr-v2:vary=pose+expression+illumination+quality"
    assert sizes == {(n, k, g) for n, k in ((100, 60), (300, 20), (1000, 6), (3000, 2)) for g in ("synthfr-small", v2)}
    judges = [c for c in cmds if c[1] == "quality"]
    assert len(judges) == 8 and all("--judges" in c and c[c.index("--judges") + 1] == "sface" for c in judges)
    assert all(c[2].endswith("/generate/dataset/images") for c in judges)  # quality reads the identity tree


def test_memory_format_reaches_every_training_command(capsys):
    """--memory-format contiguous (how the arms trained before session 16's layout switch are re-created bit for
    bit) goes into train commands as a flag and into pipelines as a setting; an arm that fixes its layout keeps it."""
    cmds = _commands("q2", capsys, "--memory-format", "contiguous")
    _check_valid(cmds)
    trains = [c for c in cmds if c[1] == "train"]
    assert trains and all(c[c.index("--memory-format") + 1] == "contiguous" for c in trains)
    pipes = [c for c in cmds if c[1] == "pipeline"]
    assert pipes and all(_sets(c)["train.config.memory_format"] == "contiguous" for c in pipes)
    nhwc = _commands("q4", capsys, "--memory-format", "contiguous", "--arm", "v2-all-nhwc")
    assert {_sets(c)["train.config.memory_format"] for c in nhwc if c[1] == "pipeline"} == {"channels_last"}
    plain = _commands("q2", capsys)  # without the flag: the recipe's own layout, nothing added
    assert not any("--memory-format" in c or "train.config.memory_format" in _sets(c) for c in plain)


def test_q2_domain_mixup(capsys):
    cmds = _commands("q2", capsys, "--seeds", "0")
    _check_valid(cmds)
    combine = [c for c in cmds if c[1] == "combine"]
    assert [c[c.index("--out") + 1] for c in combine] == ["O/data/celeba-50x10", "O/data/celeba-100x10",
                                                          "O/data/celeba-rest"]
    assert all(c[2] == "C" and "--counts" in c for c in combine)
    by_out = {c[c.index("--out") + 1].split("/")[1]: c for c in cmds if c[1] in ("pipeline", "train")}
    assert _sets(by_out["dm-real50"])["train.config.domain_mixup"] == "O/data/celeba-50x10"
    assert "train.extra_data" not in _sets(by_out["dm-real50"])
    assert _sets(by_out["cat-real100"])["train.extra_data"] == "[O/data/celeba-100x10]"
    assert "train.config.domain_mixup" not in _sets(by_out["cat-real100"])
    assert by_out["real50x10"][1] == "train" and by_out["real50x10"][3] == "O/data/celeba-50x10"
    assert by_out["real-rest"][3] == "O/data/celeba-rest" and "w300x20" in by_out
    mx = _sets(by_out["v2-dm-real100-mx"])
    assert mx["train.config.soft_label_logits"] == "mixed" and mx["train.config.domain_mixup"] == "O/data/celeba-100x10"
    assert {k: v for k, v in mx.items() if k != "train.config.soft_label_logits"} == _sets(by_out["v2-dm-real100"])
    evals = [c for c in cmds if c[1] == "eval"]
    assert all(c.count("--benchmark") == 2 and "H.bin" in c for c in evals) and len(evals) == 3


def test_q3_long_tail(capsys):
    cmds = _commands("q3", capsys)
    _check_valid(cmds)
    pool = next(c for c in cmds if "O/lt-pool" in c)
    assert _sets(pool)["generate.images_per_id"] == str(E.LT_POOL_K) and _sets(pool)["train.enabled"] == "false"
    for name, counts in E.LT_COUNTS.items():
        assert len(counts) == 300 and sum(counts) == 6000 and min(counts) >= 2
        assert counts == sorted(counts, reverse=True) and max(counts) <= E.LT_POOL_K
        assert any(c[1] == "combine" and c[2] == "O/lt-pool/generate/dataset" and c[-1] == f"O/data/syn300-{name}"
                   for c in cmds)
        trains = [c for c in cmds if c[1] == "train" and c[3] == f"O/data/syn300-{name}"]
        assert sorted(c[c.index("--seed") + 1] for c in trains) == ["0", "1", "2"]
    ratios = [max(c) / min(c) for c in E.LT_COUNTS.values()]
    assert 8 < ratios[0] < 12 and ratios[1] > 40  # two different tails
    assert any("O/w300x20/s0" in c for c in cmds)  # the balanced arm: same identities, same first 20 images
    assert A.longtail_counts(10, 50, 1.0) == [5] * 10


def test_q4_to_q7(capsys):
    q4 = _commands("q4", capsys, "--seeds", "0")
    _check_valid(q4)
    gens = sorted((_sets(c)["generate.generator"], _sets(c).get("train.config.memory_format", "auto"))
                  for c in q4 if c[1] == "pipeline")
    every = "pose+expression+illumination+quality"
    assert gens == sorted([*((f"synthfr-v2:vary={v}", "auto") for v in ("none", "pose", "illumination",
                                                                         "expression", every)),
                           (f"synthfr-v2:vary={every}", "channels_last")])  # v2-all-nhwc: the layout control
    q5 = _commands("q5", capsys, "--seeds", "0")
    _check_valid(q5)
    pipes = [_sets(c) for c in q5 if c[1] == "pipeline"]
    samp = sorted((s.get("sample.method", "hyperface"), s.get("generate.generator", "synthfr-small"), s["sample.n"],
                   s["generate.images_per_id"]) for s in pipes)
    v2 = "synthfr-v2:vary=pose+expression+illumination+quality"
    assert len(pipes) == 6 and samp == sorted((m, g, "3000", "2") for m in ("hyperface", "uniform", "vec2face")
                                              for g in ("synthfr-small", v2))  # each sampler with both generators
    assert all(s["sample.options"] == ("{tau: 0.4}" if s.get("sample.method") == "vec2face" else "{}")
               for s in pipes if "sample.method" in s)
    q6 = _commands("q6", capsys, "--seeds", "0")
    _check_valid(q6)
    for gen in ("synthfr-small", "synthfr-v2:vary=pose+expression+illumination+quality"):
        assert sorted(_sets(c).get("generate.variation", "-") for c in q6 if c[1] == "pipeline"
                      and _sets(c).get("generate.generator", "synthfr-small") == gen
                      and "train.config.soft_label_logits" not in _sets(c)) == \
            ["-", "mixup", "mixup:phi_max=0.2", "mixup:phi_max=0.5"]
    # SynFace's mixed margin logits: the same set as v2-im-full (linked from it), only the loss differs
    mx = [c for c in q6 if c[1] == "pipeline" and _sets(c).get("train.config.soft_label_logits") == "mixed"]
    assert len(mx) == 1 and "O/v2-im-full-mx/s0" in mx[0] and _sets(mx[0])["generate.variation"] == "mixup"
    assert A.ARMS["v2-im-full-mx"].same_data == "v2-im-full" and A.ARMS["v2-dm-real100-mx"].same_data == "v2-all"
    q7 = _commands("q7", capsys)
    _check_valid(q7)
    assert q7[0][:2] == ["python", "benchmarks/make_heldout_pairs.py"] and q7[0][q7[0].index("--out") + 1] == "H.bin"
    assert sorted(c[c.index("--embedder") + 1] for c in q7 if c[1] == "eval") == ["dlib-torch", "sface"]


def _faces(root: Path, n_ids: int, n_img: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n_ids):
        (root / f"{7000 + i}").mkdir(parents=True)
        for k in range(n_img):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"{7000 + i}" / f"{k}.png")
    return root


def test_heldout_pairs_and_real_subsets(tmp_path):
    mk = _load("make_heldout_pairs")
    celeba = _faces(tmp_path / "celeba", 40, 12)
    out = tmp_path / "h.bin"
    assert mk.main(["--celeba", str(celeba), "--out", str(out), "--identities", "20", "--pairs-per-fold", "30",
                    "--json", str(tmp_path / "h.json")]) == 0
    st = json.loads((tmp_path / "h.json").read_text())
    assert st["identities"] == 20 and st["pairs"] == 600 and st["genuine"] == 300
    from synthfr.data.benchmarks import load_bin, load_bin_raw

    raw, issame = load_bin_raw(out)
    b = load_bin(out)
    owner = {p.read_bytes(): p.parent.name for p in celeba.rglob("*.png")}
    held = set((tmp_path / "h.identities.txt").read_text().split())
    assert held == set(st["identity_names"]) and len(held) == 20
    fold_ids = []
    for f in range(10):  # synthfr's own folds are the identity-disjoint blocks: 30 genuine then 30 impostor
        idx = np.where(b.folds == f)[0]
        assert list(issame[idx]) == [True] * 30 + [False] * 30
        names = {owner[raw[2 * i + j]] for i in idx for j in (0, 1)}
        assert all((owner[raw[2 * i]] == owner[raw[2 * i + 1]]) == bool(issame[i]) for i in idx)
        assert names <= held and len(names) == 2
        fold_ids.append(names)
    assert len(set().union(*fold_ids)) == 20  # no identity in two folds
    # the real training subsets leave every held-out identity out; 50x10 is nested in 100x10
    ns = type("A", (), {"heldout": str(out), "celeba": str(celeba)})()
    E.write_counts(("celeba", "celeba-5x10"), str(tmp_path / "c5.json"), ns)
    E.write_counts(("celeba", "celeba-10x10"), str(tmp_path / "c10.json"), ns)
    E.write_counts(("celeba", "celeba-rest"), str(tmp_path / "rest.json"), ns)
    c5, c10 = (json.loads((tmp_path / f).read_text()) for f in ("c5.json", "c10.json"))
    rest = json.loads((tmp_path / "rest.json").read_text())
    assert len(c5) == 5 and len(c10) == 10 and set(c5) <= set(c10) and set(c10.values()) == {10}
    assert len(rest) == 20 and set(rest.values()) == {12} and not (set(rest) | set(c10)) & held


def _fake_eval(path: Path, lfw: list[float], held: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    b = {name: {"accuracy": float(np.mean(f)), "std": float(np.std(f)), "eer": 0.2, "tpr_at_fpr": {"1e-3": 0.1},
                "fold_accuracies": f} for name, f in (("lfw", lfw), ("heldout", held))}
    path.write_text(json.dumps({"benchmarks": b}))


def test_summary_of_a_fake_tree(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folds = {}
    for arm, base, seeds in (("w300x20", 0.70, (0, 1, 2)), ("w100x60", 0.65, (0, 1))):
        for s in seeds:
            f = list(np.round(base + 0.01 * s + 0.02 * rng.standard_normal(10), 4))
            h = list(np.round(base + 0.1 + 0.02 * rng.standard_normal(10), 4))
            folds[(arm, s)] = (f, h)
            _fake_eval(tmp_path / arm / f"s{s}" / "evaluate" / "eval.json", f, h)
            (tmp_path / arm / f"s{s}" / "wall.json").write_text(json.dumps({"seconds": 600 + 60 * s}))
    q = {"networks": {"dlib-torch": {"dataset": {"mean cos to own centre": 0.969, "EER": 0.001}},
                      "sface": {"dataset": {"mean cos to own centre": 0.512, "EER": 0.234}}}}
    (tmp_path / "w300x20" / "quality").mkdir()
    (tmp_path / "w300x20" / "quality" / "quality.json").write_text(json.dumps(q))
    assert E.main(["summary", "--out", str(tmp_path), "--question", "q1"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| w300x20 |"))
    accs = [np.mean(folds[("w300x20", s)][0]) for s in range(3)]
    assert f"{np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}" in row
    assert "| 3 |" in row and "0.969 / 0.001" in row and "0.512 / 0.234" in row and "11.0 min" in row
    assert "| w1000x6 |" in text and "| — |" in text  # arms not run yet show as empty
    cmp_row = next(line for line in text.splitlines() if line.startswith("| w100x60 − w300x20 |"))
    # brute force: seeds 0 and 1 are shared; fold accuracies averaged over them, then a paired t over the folds
    fa = np.mean([folds[("w100x60", s)][0] for s in (0, 1)], axis=0)
    fb = np.mean([folds[("w300x20", s)][0] for s in (0, 1)], axis=0)
    d = fa - fb
    t = d.mean() / (d.std(ddof=1) / math.sqrt(10))
    per_seed = [np.mean(folds[("w100x60", s)][0]) - np.mean(folds[("w300x20", s)][0]) for s in (0, 1)]
    assert f"{np.mean(per_seed):+.4f} ± {np.std(per_seed, ddof=1):.4f} (2 seeds)" in cmp_row
    assert f"{t:+.2f}" in cmp_row


def test_archive_keeps_what_the_summary_reads(tmp_path, capsys):
    out = tmp_path / "exp"
    for s in (0, 1):
        _fake_eval(out / "w300x20" / f"s{s}" / "evaluate" / "eval.json", [0.7 + 0.01 * s] * 10, [0.6] * 10)
        (out / "w300x20" / f"s{s}" / "wall.json").write_text(json.dumps({"seconds": 600}))
        (out / "w300x20" / f"s{s}" / "train").mkdir(parents=True)
        (out / "w300x20" / f"s{s}" / "train" / "model.safetensors").write_bytes(b"x" * 1000)  # not kept
    (out / "heldout.json").write_text(json.dumps({"pairs": 6000}))
    (out / "w300x20" / "quality").mkdir()
    q = {"networks": {"sface": {"dataset": {"mean cos to own centre": 0.512, "EER": 0.234}, "reference": {"x": 1}}},
         "identity_map": list(range(1000))}
    (out / "w300x20" / "quality" / "quality.json").write_text(json.dumps(q))
    assert E.main(["summary", "--out", str(out), "--question", "q1"]) == 0
    before = capsys.readouterr().out
    assert E.main(["archive", "--out", str(out), "--to", str(tmp_path / "kept")]) == 0
    capsys.readouterr()
    kept = sorted(str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*") if p.is_file())
    assert kept == ["heldout.json", "w300x20/quality/quality.json", "w300x20/s0/evaluate/eval.json",
                    "w300x20/s0/wall.json", "w300x20/s1/evaluate/eval.json", "w300x20/s1/wall.json"]
    slim = json.loads((tmp_path / "kept" / "w300x20" / "quality" / "quality.json").read_text())
    assert slim == {"networks": {"sface": {"dataset": q["networks"]["sface"]["dataset"]}}}
    assert E.main(["summary", "--out", str(tmp_path / "kept"), "--question", "q1"]) == 0
    assert capsys.readouterr().out == before


def test_layout_of_a_recorded_run():
    cpu, gpu = {"cuda_available": False}, {"cuda_available": True}
    assert S.layout({"config": {"device": "auto"}, "provenance": cpu}) == "NCHW"  # before memory_format existed
    assert S.layout({"config": {"device": "auto", "memory_format": "auto"}, "provenance": cpu}) == "NHWC"
    assert S.layout({"config": {"device": "auto", "memory_format": "auto"}, "provenance": gpu}) == "NCHW"
    assert S.layout({"config": {"device": "cuda", "memory_format": "channels_last"}}) == "NHWC"
    assert S.layout(None) is None


def test_pairs_compare_arms_trained_in_one_layout(tmp_path, capsys):
    """An arm trained NHWC is compared with v2-all's NHWC twin, not with v2-all (NCHW); the layout control itself
    (v2-all-nhwc - v2-all) and arms with no layout recorded stay as they are. The archive keeps the configs."""
    runs = {"v2-all": None, "v2-all-nhwc": "channels_last", "v2-im-low": "auto", "v2-none": "auto", "v2-pose": "auto"}
    for i, (arm, fmt) in enumerate(runs.items()):
        d = tmp_path / "exp" / arm / "s0"
        _fake_eval(d / "evaluate" / "eval.json", [0.7 + 0.01 * i + 0.001 * k for k in range(10)], [0.6] * 10)
        cfg = {"device": "auto", **({"memory_format": fmt} if fmt else {})}
        (d / "train" / "run").mkdir(parents=True)
        (d / "train" / "run" / "config.json").write_text(json.dumps({"config": cfg,
                                                                     "provenance": {"cuda_available": False}}))
    _fake_eval(tmp_path / "exp" / "w300x20" / "s0" / "evaluate" / "eval.json", [0.6] * 10, [0.6] * 10)  # no config
    assert E.main(["archive", "--out", str(tmp_path / "exp"), "--to", str(tmp_path / "kept")]) == 0
    assert (tmp_path / "kept" / "v2-none" / "s0" / "train" / "run" / "config.json").is_file()
    capsys.readouterr()
    for out in ("exp", "kept"):
        text = ""
        for q in ("q4", "q6"):
            assert E.main(["summary", "--out", str(tmp_path / out), "--question", q]) == 0
            text += capsys.readouterr().out
        pairs = {line.split(" | ")[0][2:] for line in text.splitlines() if " − " in line}
        assert {"v2-im-low − v2-all-nhwc", "v2-all-nhwc − v2-none", "v2-pose − v2-none", "v2-all-nhwc − v2-all",
                "v2-all − w300x20"} <= pairs
        assert not {"v2-im-low − v2-all", "v2-all − v2-none", "v2-all-nhwc − v2-all-nhwc"} & pairs
        assert "| v2-all-nhwc |" in text.split("### q6")[1]  # the twin compared with is in the question's table


def test_every_arm_has_a_category():
    cats = {name: A.category(arm) for name, arm in A.ARMS.items()}
    assert cats["real-rest"] == ("real", None) and cats["real50x10"] == ("real", None)
    assert cats["w300x20"] == ("synthetic", "synthfr-small") and cats["lt-mild"] == ("synthetic", "synthfr-small")
    assert cats["v2-all"] == ("synthetic", "synthfr-v2") and cats["v2-dm-real50"] == ("mixed", "synthfr-v2")
    assert cats["dm-real50"] == ("mixed", "synthfr-small") and cats["cat-real100"] == ("mixed", "synthfr-small")
    assert cats["judge-sface"] == ("pretrained", None)


def test_headline_names_the_best_of_each_kind_and_the_gap(tmp_path, capsys):
    for arm, acc, pipeline in (("real-rest", 0.80, False), ("real50x10", 0.74, False), ("w300x20", 0.71, True),
                               ("w100x60", 0.70, True), ("v2-all", 0.77, True), ("dm-real50", 0.76, True),
                               ("v2-dm-real50", 0.79, True)):
        for s in (0, 1):
            d = tmp_path / arm / f"s{s}"
            _fake_eval(d / "evaluate" / "eval.json" if pipeline else d / "eval.json", [acc + 0.01 * s] * 10,
                       [acc - 0.05] * 10)
    assert E.main(["summary", "--out", str(tmp_path)]) == 0
    lines = {line.split(" | ")[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("| real reference") or line.startswith("| best ")}
    assert "| real-rest | 2 | 0.8050 ± 0.0071 |" in lines["| real reference"]
    assert "| w300x20 | 2 | 0.7150 ± 0.0071 | -9.0 |" in lines["| best synthetic-only, synthfr-small"]
    assert "| v2-all | 2 |" in lines["| best synthetic-only, synthfr-v2"] and "-3.0" in lines[
        "| best synthetic-only, synthfr-v2"]
    assert "| dm-real50 |" in lines["| best synthetic + few real, synthfr-small"]
    assert "| v2-dm-real50 |" in lines["| best synthetic + few real, synthfr-v2"]


def test_seeds_and_shared_sets_reuse_a_finished_dataset(tmp_path, capsys, monkeypatch):
    """Seeds 1-2 of an arm, and every seed of an arm sharing another's set, start from hard links to a finished
    run's sample/generate/quality stages — only when their recorded configs equal the run's: the pipeline skips
    them and trains on the same images; a donor made otherwise is passed over and the set generated afresh."""
    import argparse
    import subprocess

    from synthfr.app.pipeline import load_pipeline_config, parse_overrides, run_pipeline

    cmds = _commands("q2", capsys, "--arm", "w300x20", "dm-real50", "real50x10")
    links = [c for c in cmds if c[0] == "cp"]
    assert [c[-1] for c in links] == ["O/w300x20/s1", "O/w300x20/s2", "O/dm-real50/s0", "O/dm-real50/s1",
                                      "O/dm-real50/s2"]  # never seed 0 of the arm that makes the set; never train arms
    assert all(c[1] == "-al" and c[2] == "O/w300x20/s0/sample" for c in links)

    tiny = tmp_path / "tiny.yaml"  # the runner's commands, on a tiny config instead of cpu-experiment's
    tiny.write_text("seed: 3\ndevice: cpu\nsample: {method: uniform, n: 4, dim: 16}\n"
                    "generate: {generator: test_pattern, images_per_id: 2, options: {workers: 1, fsync: false}}\n"
                    "quality: {enabled: true}\nevaluate: {enabled: false}\n"
                    "train: {enabled: true, config: {backbone: test_tiny, embedding_size: 16, batch_size: 4, "
                    "epochs: 1, max_steps: 1, num_workers: 0, progress: false}}\n")
    monkeypatch.setattr(E, "CONFIG", str(tiny))
    out = tmp_path / "exp"
    a = argparse.Namespace(out=str(out), dry_run=False, lfw="L.bin", heldout="H.bin", exe=["synthfr"], epochs=8,
                           memory_format=None)

    def run(arm: str, seed: int, *extra: str) -> dict:
        for c in E.reuse_commands(A.ARMS[arm], seed, a):
            subprocess.run(c, check=True)
        cmd = E.arm_commands(A.ARMS[arm], seed, a)[0] + list(extra)
        sets = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"]
        cfg = load_pipeline_config(tiny, parse_overrides(sets), out=cmd[cmd.index("--out") + 1])
        return {k: v["status"] for k, v in run_pipeline(cfg, log=lambda m: None)["stages"].items()}

    made = {"sample": "ran", "generate": "ran", "quality": "disabled", "train": "ran", "evaluate": "disabled"}
    assert run("w300x20", 0, "--set", "generate.images_per_id=3") == made  # a donor with another set
    assert E.reuse_commands(A.ARMS["w300x20"], 1, a) == []                 # is passed over
    assert run("w300x20", 1) == made
    assert E.reuse_commands(A.ARMS["real50x10"], 1, a) == []  # train arms make no set
    linked = E.reuse_commands(A.ARMS["dm-real50"], 2, a)
    assert linked[1][:-1] == ["cp", "-al", f"{out}/w300x20/s1/sample", f"{out}/w300x20/s1/generate"]
    assert run("w300x20", 2) == {**made, "sample": "skipped", "generate": "skipped"}  # w300x20/s1's set
    img = next((out / "w300x20" / "s1" / "generate" / "dataset" / "images").rglob("*.jpg"))
    twin = out / "w300x20" / "s2" / img.relative_to(out / "w300x20" / "s1")
    assert twin.stat().st_ino == img.stat().st_ino  # linked, not copied
    assert E.reuse_commands(A.ARMS["w300x20"], 2, a) == []  # its own stages exist now: nothing to link


def test_command_tables_give_every_arm_once(capsys):
    assert E.main(["commands"]) == 0
    rows = [r[2:-2].split(" | ") for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and
            not r.startswith("| arm |")]
    given = {r[0]: r[-1] for r in rows if r[-1].startswith("`")}
    # each arm's command once, under its first question; later questions refer to it
    assert sorted(given) == sorted(A.ARMS)
    assert all(r[-1].startswith("as in q") for r in rows if given[r[0]] != r[-1])
    for name, cmd in given.items():
        arm = A.ARMS[name]
        assert ("--embedder" in cmd) if arm.kind == "embedder" else (f"O/{name}/sS" in cmd and "seed" in cmd)
        assert "RECIPE" in cmd if arm.kind == "train" else "RECIPE" not in cmd


def test_q5_vec2face_tau_holds_3000_identities_in_dlib_space():
    """q5's Vec2Face arm raises the paper's tau 0.3 (it keeps only ~500 of 3,000 identities in dlib's centred space,
    where the PCA Gaussian's effective dimension is ~24): its tau must give all 3,000 from the pipeline's own
    gallery (built-in, 4,000 points, seed 0), every pair at most tau apart, packed no looser than uniform."""
    from synthfr.galleries import GaussianGallery
    from synthfr.samplers import sample_identities

    gal = GaussianGallery.load().sample(4000, seed=0)
    x, st = sample_identities("vec2face", 3000, gallery=gal, tau=A.V2F_TAU_3000, seed=0)
    assert x.shape == (3000, gal.shape[1]) and st["standardize"]["used"] == "center"
    assert st["max_cos"] <= A.V2F_TAU_3000 + 1e-6 and st["rejected"] > 0
    _, uni = sample_identities("uniform", 3000, gallery=gal, seed=0)
    assert uni["max_cos"] > A.V2F_TAU_3000  # uniform points collide more than the kept ones
