"""The end-to-end HTML report (synthfr.app.report over synthfr.report): sections from what each stage wrote, self-contained
(inline images only, no external references, no scripts), well-formed, and written by the pipeline/CLI."""
from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from synthfr.app.report import build_report, find_inputs, write_pipeline_report

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Collects images, anchors and every URL-bearing attribute; checks that elements nest properly."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[tuple[str, bytes]] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for k in ("src", "href", "action", "data", "poster", "srcset", "background"):
            if k in a:
                self.urls.append(a[k])
        if tag == "img":
            m = re.match(r"data:(image/(?:png|jpeg));base64,(.*)$", a.get("src", ""), re.S)
            if m is None:
                self.errors.append(f"img without an inline data URI: {a.get('src', '')[:60]}")
            else:
                self.images.append((m.group(1), base64.b64decode(m.group(2), validate=True)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def _check(doc: str) -> _Checker:
    c = _Checker()
    c.feed(doc)
    c.close()
    assert not c.errors, c.errors[:5]
    assert c.stack == [], f"unclosed elements: {c.stack}"
    assert doc.startswith("<!DOCTYPE html>")
    # self-contained: only inline images and in-page links, no scripts/stylesheets/fonts from elsewhere
    assert all(u.startswith("data:") or u.startswith("#") for u in c.urls), [u[:60] for u in c.urls]
    assert "script" not in c.tags and "link" not in c.tags and "iframe" not in c.tags
    assert not re.search(r"url\(|@import", doc)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|file:|//)""", doc, re.I)
    from PIL import Image

    for mime, data in c.images:  # every embedded image decodes
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == {"image/png": "PNG", "image/jpeg": "JPEG"}[mime]
            im.load()
    return c


# -- a fake pipeline folder in the real formats ----------------------------------------------------------------
def _dataset(root: Path, n_ids: int = 5, per_id: int = 3) -> Path:
    from PIL import Image

    from synthfr.data.manifest import dumps_record, identity_dirname, make_record

    lines = []
    for i in range(n_ids):
        d = root / "images" / identity_dirname(i, n_ids)
        d.mkdir(parents=True)
        for k in range(per_id):
            colour = (40 * i % 256, 60 * k % 256, 128)
            Image.new("RGB", (48, 48), colour).save(d / f"{k}.jpg", quality=90)
            lines.append(dumps_record(make_record(
                identity=i, index=k, path=f"images/{d.name}/{k}.jpg", seed=1000 * i + k, attempt=0,
                variation=None, params={}, label=i, generator="test_pattern", weights_sha256="0" * 64)))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _quality(n_ids: int = 5, per_id: int = 3, reference: bool = True) -> dict:
    from synthfr.quality.evaluate import evaluate_quality

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(n_ids, 16))
    emb = np.repeat(centres, per_id, axis=0) + 0.2 * rng.normal(size=(n_ids * per_id, 16))
    lab = np.repeat(np.arange(n_ids), per_id)
    ref = rlab = None
    if reference:
        ref = np.concatenate([centres[:1] + 0.01 * rng.normal(size=(1, 16)), rng.normal(size=(7, 16))])
        rlab = np.arange(len(ref))
    return evaluate_quality(emb.astype(np.float32), lab, reference=ref, reference_labels=rlab)


def _log_csv(run: Path, steps: int) -> None:
    # the header of training/loop.py's CsvLog (test_pipeline_report_end_to_end checks a real one)
    rows = ["step,epoch,lr,loss,samples_per_s,sampled_classes,time,cpu_time"]
    for s in range(1, steps + 1):
        rows.append(f"{s * 10},{s / 4:.4f},{0.1 * (1 - s / (steps + 1)):.6f},{20.0 / s:.5f},{100 + s:.3f},5,"
                    f"{s * 1.5:.3f},{s * 2.9:.3f}")
    (run / "log.csv").write_text("\n".join(rows) + "\n")


def _eval(d: Path, names=("tiny_lfw",)) -> None:
    from synthfr.evaluation.evaluate import JSON_KEYS
    from synthfr.evaluation.verification import evaluate_embeddings, save_roc
    from synthfr.utils.io import write_json

    rng = np.random.default_rng(1)
    out = {"benchmarks": {}, "embedder": str(d.parent / "train" / "run"), "flip": False,
           "checkpoint": str(d.parent / "train" / "run")}
    for name in names:
        a = rng.normal(size=(200, 8))
        same = np.arange(200) % 2 == 0
        b = np.where(same[:, None], a + 0.5 * rng.normal(size=a.shape), rng.normal(size=a.shape))
        res = evaluate_embeddings(a, b, same, folds=10, with_roc=True)
        save_roc(str(d / name), res["roc"]["fpr"], res["roc"]["tpr"], res["roc"]["thresholds"], png=False)
        out["benchmarks"][name] = {k: res.get(k) for k in JSON_KEYS}
        out["benchmarks"][name]["images"] = 400
    write_json(d / "eval.json", out)  # the writer run_eval uses (NaN -> null)


@pytest.fixture
def fake_pipeline(tmp_path) -> Path:
    from synthfr.config import from_dict
    from synthfr.app.pipeline import PipelineConfig
    from synthfr.app.pipeline.run import _write_marker
    from synthfr.utils.provenance import write_provenance

    out = tmp_path / "run"
    cfg = from_dict(PipelineConfig, {"out": str(out), "sample": {"method": "uniform", "n": 5, "dim": 16},
                                     "train": {"enabled": True, "config": {"backbone": "test_tiny"}}})
    out.mkdir()
    write_provenance(out, config=cfg, seed=0)
    for st in ("sample", "generate", "quality", "train", "evaluate"):
        (out / st).mkdir()
    _dataset(out / "generate" / "dataset")
    (out / "quality" / "quality.json").write_text(json.dumps(_quality()))
    run = out / "train" / "run"
    run.mkdir()
    _log_csv(run, 12)
    (run / "config.json").write_text(json.dumps({
        "config": {"batch_size": 4, "time_limit": 0}, "seed": 0, "backbone": "test_tiny", "head": "cosface",
        "head_kwargs": {"s": 32, "m": 0.35}, "embedding_size": 16, "num_classes": 5, "images": 15,
        "steps_per_epoch": 4, "total_steps": 120, "world_size": 1, "input": {"size": 32}, "final_step": 120}))
    _eval(out / "evaluate")
    for k, st in enumerate(("sample", "generate", "quality", "train", "evaluate")):
        _write_marker(out / st, st, {"stage": st}, {"n": k}, 1.5 + k)
    return out


def test_report_has_every_section(fake_pipeline):
    doc = build_report(fake_pipeline)
    c = _check(doc)
    for anchor in ("overview", "samples", "quality", "training", "evaluation", "configuration"):
        assert anchor in c.ids, anchor
        assert f'href="#{anchor}"' in doc  # in the navigation bar
    jpegs = [d for m, d in c.images if m == "image/jpeg"]
    pngs = [d for m, d in c.images if m == "image/png"]
    assert len(jpegs) == 5  # one thumbnail strip per identity
    from PIL import Image

    with Image.open(io.BytesIO(jpegs[0])) as im:
        assert im.size == (3 * 64 + 2 * 2, 64)  # 3 images, downscaled to 64 px, 2 px gaps
    # quality: separability curve + nearest-centre hist, consistency, genuine/impostor, leakage;
    # training: loss, lr, samples/s; evaluation: ROC
    assert len(pngs) >= 9
    assert "Genuine vs impostor" in doc or "Genuine and impostor" in doc
    assert "EER" in doc and "Identity leakage" in doc and "leaked" in doc
    assert "Training loss" in doc and "Learning rate" in doc and "Throughput" in doc
    assert "tiny_lfw" in doc and "TPR@FPR=1e-3" in doc
    acc = json.loads((fake_pipeline / "evaluate" / "eval.json").read_text())["benchmarks"]["tiny_lfw"]["accuracy"]
    assert f"{acc:.4g}" in doc
    assert "<pre>" in doc and "images_per_id" in doc  # the resolved config (config.yaml)
    assert doc.count("resolved config (DONE.json)") == 5
    assert len(doc) < 1_500_000


def test_stages_not_run_are_left_out(fake_pipeline):
    doc = build_report(fake_pipeline, stages=["sample", "generate", "quality"])
    c = _check(doc)
    assert "training" not in c.ids and "evaluation" not in c.ids
    assert {"samples", "quality", "configuration"} <= set(c.ids)
    assert "not in this run" in doc
    # a stage without its DONE.json marker is incomplete: never reported
    (fake_pipeline / "train" / "DONE.json").unlink()
    (fake_pipeline / "evaluate" / "DONE.json").unlink()
    inp = find_inputs(fake_pipeline)
    assert inp["train_run"] is None and inp["eval_json"] is None and inp["quality"] is not None
    c = _check(build_report(fake_pipeline))
    assert "training" not in c.ids and "evaluation" not in c.ids


def test_demo_folder_and_explicit_inputs(tmp_path):
    out = tmp_path / "demo"  # the demo is a pipeline preset: the pipeline's folder layout
    _dataset(out / "generate" / "dataset", n_ids=15, per_id=10)
    (out / "quality").mkdir()
    (out / "quality" / "quality.json").write_text(json.dumps(_quality(15, 10, reference=False)))
    (out / "demo.json").write_text(json.dumps({"config": {"out": str(out), "identities": 15, "images_per_id": 10}}))
    path = write_pipeline_report(out, max_identities=4, max_images=6, thumb=40)
    assert path == out / "report.html"
    doc = path.read_text()
    c = _check(doc)
    assert "synthfr demo report" in doc
    jpegs = [d for m, d in c.images if m == "image/jpeg"]
    assert len(jpegs) == 4  # capped identities ...
    from PIL import Image

    with Image.open(io.BytesIO(jpegs[0])) as im:
        assert im.size == (6 * 40 + 5 * 2, 40)  # ... and images per identity
    assert "of 15" in doc and "150 images" in doc
    assert "identities: 15" in doc  # the demo config as YAML
    assert "leakage" not in doc.lower() and "training" not in c.ids

    # no folder: every input given explicitly; a folder without images (format rec) has no sample grid
    (out / "generate" / "dataset" / "manifest.jsonl").unlink()
    import shutil

    shutil.rmtree(out / "generate" / "dataset" / "images")
    c = _check(build_report(dataset=out / "generate" / "dataset", quality=out / "quality" / "quality.json",
                            config={"a": 1}, title="t"))
    assert "samples" not in c.ids and "quality" in c.ids and "configuration" in c.ids


def test_degenerate_runs_render(tmp_path):
    """An empty training log and a benchmark without negatives (undefined EER, NaN ROC) still render."""
    from synthfr.evaluation.verification import evaluate_similarities, save_roc

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,epoch,lr,loss,samples_per_s,sampled_classes,time,cpu_time\n")
    ev = tmp_path / "ev"
    ev.mkdir()
    sims = np.linspace(0.2, 0.9, 10)
    same = np.ones(10, bool)
    res = evaluate_similarities(sims, same, folds=10, with_roc=True)
    save_roc(str(ev / "pos_only"), res["roc"]["fpr"], res["roc"]["tpr"], res["roc"]["thresholds"], png=False)
    from synthfr.evaluation.evaluate import JSON_KEYS

    from synthfr.utils.io import write_json

    entry = {k: res.get(k) for k in JSON_KEYS}
    write_json(ev / "eval.json", {"benchmarks": {"pos_only": entry}, "embedder": "x", "flip": False})
    doc = build_report(train_run=run, eval_json=ev / "eval.json")
    c = _check(doc)
    assert {"training", "evaluation"} <= set(c.ids)
    assert "No training steps were logged" in doc and "No ROC curve for pos_only" in doc
    with pytest.raises(FileNotFoundError, match="not a folder"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no pipeline or demo outputs"):
        build_report(tmp_path / "empty")
    # a training run folder on its own
    assert "Training" in build_report(run)


def test_report_cli(fake_pipeline, tmp_path, capsys):
    from synthfr.app.cli import main

    dest = tmp_path / "r.html"
    assert main(["report", str(fake_pipeline), "--out", str(dest), "--identities", "2", "--images", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    c = _check(dest.read_text())
    assert len([1 for m, _ in c.images if m == "image/jpeg"]) == 2


def test_pipeline_report_end_to_end(tmp_path):
    """A real tiny pipeline (test generator, 2 training steps, evaluation of the trained model on a tiny .bin)
    writes OUT/report.html with every section from the stages' real outputs; a fully skipped re-run keeps it."""
    from synthfr.config import from_dict
    from synthfr.data.benchmarks import write_bin
    from synthfr.app.pipeline import PipelineConfig, run_pipeline
    from PIL import Image

    out = tmp_path / "run"
    # benchmark: 6 identities x 2 test-pattern-like images
    pairs, same = [], []
    for i in range(6):
        for j in range(6):
            a = Image.new("RGB", (112, 112), (30 * i, 200 - 20 * i, 90))
            b = Image.new("RGB", (112, 112), (30 * j, 200 - 20 * j, 90 + 5 * (i == j)))
            ba, bb = io.BytesIO(), io.BytesIO()
            a.save(ba, format="JPEG")
            b.save(bb, format="JPEG")
            pairs += [ba.getvalue(), bb.getvalue()]
            same.append(i == j)
    bench = write_bin(tmp_path / "tiny.bin", pairs, same)
    d = {"out": str(out), "seed": 3, "device": "cpu",
         "sample": {"method": "uniform", "n": 6, "dim": 16},
         "generate": {"generator": "test_pattern", "images_per_id": 2, "options": {"workers": 1, "fsync": False}},
         "quality": {"enabled": True},
         "train": {"enabled": True, "config": {"backbone": "test_tiny", "embedding_size": 16, "batch_size": 4,
                                               "epochs": 1, "max_steps": 2, "log_every": 1, "num_workers": 0,
                                               "progress": False}},
         "evaluate": {"enabled": True, "benchmarks": [str(bench)]}}
    s = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    report = out / "report.html"
    assert s["report"] == str(report) and report.is_file()
    assert (out / "quality" / "report.html").is_file()  # the quality stage's own report stays
    assert json.loads((out / "pipeline.json").read_text())["report"] == str(report)
    doc = report.read_text()
    c = _check(doc)
    assert {"overview", "samples", "quality", "training", "evaluation", "configuration"} <= set(c.ids)
    assert "Training loss" in doc and "tiny" in doc
    # the real training log has the columns the report plots
    header = (out / "train" / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "lr", "samples_per_s"} <= set(header)
    assert len([1 for m, _ in c.images if m == "image/jpeg"]) == 6

    mtime = report.stat().st_mtime_ns
    s2 = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert all(v["status"] == "skipped" for v in s2["stages"].values())
    assert report.stat().st_mtime_ns == mtime and s2["report"] == str(report)
    # disabling stages of a finished run drops their sections (nothing ran, but the reported stages changed)
    d["evaluate"]["enabled"] = False
    d["train"]["enabled"] = False
    s3 = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert s3["report_stages"] == ["sample", "generate", "quality"]
    c = _check(report.read_text())
    assert "training" not in c.ids and "evaluation" not in c.ids and "samples" in c.ids


def test_demo_writes_the_report(tmp_path):
    """`synthfr demo` (tiny settings) writes OUT/report.html with the sample grid, quality and next steps."""
    from synthfr.app.demo import DemoConfig, run_demo

    out = tmp_path / "demo"
    run_demo(DemoConfig(out=str(out), identities=4, images_per_id=2, time_budget=1.0, gallery_size=200,
                        device="cpu"), log=lambda m: None)
    doc = (out / "report.html").read_text()
    c = _check(doc)
    assert {"overview", "samples", "quality", "configuration", "next"} <= set(c.ids)
    assert "training" not in c.ids and "evaluation" not in c.ids
    assert len([1 for m, _ in c.images if m == "image/jpeg"]) == 4
    assert "synthfr demo report" in doc and "synthfr train --data" in doc
    assert "images_per_id: 2" in doc  # the demo's config, block YAML
    # a re-run into the same folder with the same settings reuses the identities and resumes the dataset
    msgs: list[str] = []
    run_demo(DemoConfig(out=str(out), identities=4, images_per_id=2, time_budget=1.0, gallery_size=200,
                        device="cpu"), log=msgs.append)
    assert any("reusing the identities" in m for m in msgs)


def test_overview_explains_low_separability_beside_a_low_eer():
    from synthfr.report.document import _overview

    q = {"n_identities": 10, "n_embeddings": 40, "verification": {"eer": 0.0},
         "separability": {"separability": 0.005, "threshold": 0.5}}
    out = _overview({}, q, None)
    assert "how to read this" in out and "0.84" in out
    q["separability"]["separability"] = 0.9
    assert "how to read this" not in _overview({}, q, None)
