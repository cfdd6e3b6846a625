"""The end-to-end HTML report of a pipeline or demo folder: one self-contained file (inline CSS, base64
images, no scripts, no external resources).

``write_pipeline_report(OUT)`` (CLI: ``synthfr report OUT``; written by ``synthfr pipeline`` as
``OUT/report.html`` after its last enabled stage and by ``synthfr demo``) reads what the stages left in ``OUT``
and builds, in order, the sections whose inputs exist::

    Overview         stage table (pipeline.json / DONE.json markers) and the headline numbers
    Samples          a row of thumbnails per identity for the first identities (DATASET/images/<id>/<k>.jpg)
    Dataset quality  summary, separability curve, consistency, genuine/impostor histograms with EER,
                     nearest-identity leakage table (quality/quality.json; synthfr.report.quality)
    Training         loss, learning rate and samples/s vs step (train/run/log.csv), validation accuracy
                     (val.csv), the run's model summary (config.json)
    Evaluation       accuracy/EER/TPR@FPR table and ROC curves (evaluate/eval.json, <benchmark>.roc.csv)
    Configuration    the resolved config (config.yaml / the demo's config) and each stage's resolved config

Layouts understood: a pipeline folder (``sample/ generate/dataset/ quality/ train/run/ evaluate/``, stages
counted only when their ``DONE.json`` exists) and a demo folder (``dataset/ quality/ demo.json``). Every input
can also be given explicitly (``dataset=``, ``quality=``, ``train_run=``, ``eval_json=``, ``config=``).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from synthfr.report import html, plots

__all__ = ["build_report", "write_pipeline_report", "ReportInputs", "find_inputs", "sample_grid_section",
           "training_sections", "evaluation_sections", "config_section", "read_log_csv", "read_roc_csv"]

PIPELINE_STAGES = ("sample", "generate", "quality", "train", "evaluate")


class ReportInputs(dict):
    """What a report is built from: ``dataset``, ``quality`` (json path), ``train_run``, ``eval_json``,
    ``config`` (YAML text or a mapping), ``stages`` (pipeline summary: stage -> {status, seconds, summary}),
    ``kind`` (pipeline | demo | folder). Missing inputs are ``None``."""


# -- locating the inputs -------------------------------------------------------------------------------------
def _read_json(p: Path) -> Any:
    try:
        return json.loads(Path(p).read_text())
    except (OSError, ValueError):
        return None


def find_inputs(out_dir: str | Path, stages: Iterable[str] | None = None) -> ReportInputs:
    """Find the report's inputs in a pipeline or demo folder.

    ``stages``: for a pipeline folder, the stages to report on (default: those with a ``DONE.json``); the
    pipeline passes the stages that ran or were skipped as complete, so a stage disabled this time is left out
    even if an older run left its folder behind.
    """
    out = Path(out_dir).expanduser().resolve()
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder; pass the output folder of `synthfr pipeline` or "
                                "`synthfr demo`")
    inp = ReportInputs(dataset=None, quality=None, train_run=None, eval_json=None, config=None, stages=None,
                       kind="folder", out=str(out))
    is_pipeline = any((out / s / "DONE.json").is_file() for s in PIPELINE_STAGES) or (out / "pipeline.json").is_file()
    if is_pipeline:
        inp["kind"] = "pipeline"
        done = {s for s in PIPELINE_STAGES if (out / s / "DONE.json").is_file()}
        use = (set(stages) if stages is not None else set(done)) & done  # only complete stages
        summ = _read_json(out / "pipeline.json")
        table: dict[str, Any] = {}
        for s in PIPELINE_STAGES:
            marker = _read_json(out / s / "DONE.json") if s in done else None
            if marker is not None:
                table[s] = {"status": "complete", "seconds": marker.get("seconds"),
                            "summary": marker.get("summary", {}), "config": marker.get("config"),
                            "finished": marker.get("finished")}
            elif isinstance(summ, dict) and s in summ.get("stages", {}):
                table[s] = {"status": summ["stages"][s].get("status", "?")}
            else:
                table[s] = {"status": "not run"}
            if s not in use and table[s]["status"] == "complete":
                table[s]["status"] = "not in this run"
        inp["stages"] = table
        if "generate" in use and (out / "generate" / "dataset").is_dir():
            inp["dataset"] = str(out / "generate" / "dataset")
        if "quality" in use and (out / "quality" / "quality.json").is_file():
            inp["quality"] = str(out / "quality" / "quality.json")
        if "train" in use and (out / "train" / "run").is_dir():
            inp["train_run"] = str(out / "train" / "run")
        if "evaluate" in use and (out / "evaluate" / "eval.json").is_file():
            inp["eval_json"] = str(out / "evaluate" / "eval.json")
        if (out / "config.yaml").is_file():
            inp["config"] = (out / "config.yaml").read_text()
        return inp
    # demo (or any folder with the same pieces)
    demo = _read_json(out / "demo.json")
    if isinstance(demo, dict):
        inp["kind"] = "demo"
        inp["demo"] = demo
        if isinstance(demo.get("config"), dict):
            inp["config"] = demo["config"]
    for cand in (out / "dataset", out / "generate" / "dataset"):
        if cand.is_dir():
            inp["dataset"] = str(cand)
            break
    if (out / "quality" / "quality.json").is_file():
        inp["quality"] = str(out / "quality" / "quality.json")
    elif (out / "quality.json").is_file():
        inp["quality"] = str(out / "quality.json")
    for cand in (out / "train" / "run", out / "run", out):  # ... or a training run folder itself
        if (cand / "log.csv").is_file() or (cand / "config.json").is_file():
            inp["train_run"] = str(cand)
            break
    for cand in (out / "evaluate" / "eval.json", out / "eval.json"):
        if cand.is_file():
            inp["eval_json"] = str(cand)
            break
    if inp["config"] is None and (out / "config.yaml").is_file():
        inp["config"] = (out / "config.yaml").read_text()
    return inp


# -- sample grid -----------------------------------------------------------------------------------------------
def _identity_images(dataset: Path, max_identities: int, max_images: int) -> list[tuple[str, list[Path]]]:
    """``[(identity folder name, [image paths])]`` for the first identities, in row order."""
    images = dataset / "images"
    rows: list[tuple[str, list[Path]]] = []
    manifest = dataset / "manifest.jsonl"
    if manifest.is_file():
        by_id: dict[int, list[Path]] = {}
        order: list[int] = []
        with open(manifest) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                i = int(r["identity"])
                if i not in by_id:
                    if len(order) >= max_identities:
                        break
                    by_id[i] = []
                    order.append(i)
                if len(by_id[i]) < max_images:
                    p = dataset / r["path"]
                    if p.is_file():
                        by_id[i].append(p)
        rows = [(Path(by_id[i][0]).parent.name if by_id[i] else str(i), by_id[i]) for i in order if by_id[i]]
        if rows:
            return rows
    if images.is_dir():
        from synthfr.utils.images import is_image_file

        for d in sorted(p for p in images.iterdir() if p.is_dir())[:max_identities]:
            files = sorted((p for p in d.iterdir() if is_image_file(p)),
                           key=lambda p: (len(p.stem), p.stem))[:max_images]
            if files:
                rows.append((d.name, files))
    return rows


def _strip_jpeg(paths: Sequence[Path], size: int, quality: int = 85) -> bytes:
    """One JPEG with the images side by side, each downscaled to ``size``×``size`` (2 px gaps)."""
    from PIL import Image

    gap = 2
    strip = Image.new("RGB", (len(paths) * (size + gap) - gap, size), (255, 255, 255))
    for k, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size), Image.LANCZOS)
            x = k * (size + gap) + (size - im.width) // 2
            strip.paste(im, (x, (size - im.height) // 2))
    buf = io.BytesIO()
    strip.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def sample_grid_section(dataset: str | Path, max_identities: int = 12, max_images: int = 8,
                        thumb: int = 64) -> str:
    """"Samples": one row of downscaled thumbnails per identity (JPEG strips, inline), or ``""`` when the
    dataset has no image folder (e.g. ``format: rec``)."""
    ds = Path(dataset)
    rows = _identity_images(ds, max_identities, max_images)
    if not rows:
        return ""
    n_ids = n_imgs = None
    manifest = ds / "manifest.jsonl"
    if manifest.is_file():
        ids: set[int] = set()
        n_imgs = 0
        with open(manifest) as f:
            for line in f:
                if line.strip():
                    n_imgs += 1
                    ids.add(int(json.loads(line)["identity"]))
        n_ids = len(ids)
    elif (ds / "images").is_dir():
        n_ids = sum(1 for p in (ds / "images").iterdir() if p.is_dir())
    cards = []
    for name, paths in rows:
        strip = html.image(_strip_jpeg(paths, thumb), "image/jpeg", alt=f"identity {name}",
                           attrs=f'width="{len(paths) * (thumb + 2) - 2}" height="{thumb}"')
        cards.append(f"<figure>{strip}<figcaption>identity {html.escape(name)} ({len(paths)} shown)"
                     "</figcaption></figure>")
    what = f"the first {len(rows)} identities" + (f" of {n_ids:,}" if n_ids else "")
    if n_imgs:
        what += f" ({n_imgs:,} images in all)"
    return html.section(
        "Samples per identity",
        html.paragraph(f"Up to {max_images} images of each of {what}, downscaled to {thumb} px. "
                       f"Dataset: {ds}", muted=True),
        html.grid(cards, cls="samples"),
        anchor="samples")


# -- training ------------------------------------------------------------------------------------------------
def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def read_log_csv(path: str | Path) -> list[dict[str, float | None]]:
    """Rows of a training ``log.csv`` (step, epoch, lr, loss, samples_per_s, ...) as floats (None when empty)."""
    from synthfr.utils.run_dir import read_csv_rows

    return read_csv_rows(path)


def _series(rows: list[dict[str, Any]], key: str, x: str = "step") -> tuple[list[float], list[float]]:
    pts = [(r[x], r[key]) for r in rows if r.get(x) is not None and r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def training_sections(run_dir: str | Path) -> list[str]:
    """"Training": curves from ``log.csv`` (and ``val.csv``) plus the model summary from ``config.json``."""
    run = Path(run_dir)
    meta = _read_json(run / "config.json") or {}
    parts: list[str] = []
    info: dict[str, Any] = {}
    if meta:
        cfg = meta.get("config", {}) if isinstance(meta.get("config"), dict) else {}
        info["backbone"] = meta.get("backbone")
        hk = meta.get("head_kwargs") or {}
        info["head"] = f"{meta.get('head')}" + (f" ({', '.join(f'{k}={v}' for k, v in hk.items())})" if hk else "")
        info["embedding size"] = meta.get("embedding_size")
        info["input size"] = (meta.get("input") or {}).get("size")
        info["classes"] = meta.get("num_classes")
        info["training images"] = meta.get("images")
        info["batch size"] = cfg.get("batch_size")
        info["steps per epoch"] = meta.get("steps_per_epoch")
        if meta.get("final_step") is not None:
            info["final step"] = meta.get("final_step")
        if cfg.get("time_limit"):
            info["time limit (s)"] = cfg.get("time_limit")
        info["processes"] = meta.get("world_size")
    rows = read_log_csv(run / "log.csv") if (run / "log.csv").is_file() else []
    if rows:
        last = rows[-1]
        info["logged steps"] = len(rows)
        if last.get("loss") is not None:
            info["final loss"] = last["loss"]
        if last.get("time") is not None:
            info["training time (s)"] = last["time"]
    info = {k: v for k, v in info.items() if v not in (None, "", "None")}
    if info:
        parts.append(html.key_values(info))
    figs = []
    small = (3.5, 2.6)
    for key, title, ylabel, logy in (("loss", "Training loss", "loss", False),
                                     ("lr", "Learning rate", "lr", False),
                                     ("samples_per_s", "Throughput", "samples / s", False)):
        x, y = _series(rows, key)
        if x:
            figs.append(html.figure(plots.curve_png({key: (x, y)}, title=title, xlabel="step", ylabel=ylabel,
                                                    figsize=small, marker="o" if len(x) <= 40 else None,
                                                    logy=logy), f"{title} vs step (log.csv)"))
    val_path = run / "val.csv"
    if val_path.is_file():
        from synthfr.utils.run_dir import read_csv_rows

        vrows = read_csv_rows(val_path, numeric=False)
        curves: dict[str, tuple[list[float], list[float]]] = {}
        for r in vrows:
            s, a = _num(r.get("step")), _num(r.get("accuracy"))
            if s is not None and a is not None:
                xs, ys = curves.setdefault(r.get("benchmark") or "val", ([], []))
                xs.append(s)
                ys.append(a)
        if curves:
            figs.append(html.figure(plots.curve_png(curves, title="Validation accuracy", xlabel="step",
                                                    ylabel="accuracy", figsize=small),
                                    "Benchmark accuracy during training (val.csv)"))
    if figs:
        parts.append(html.grid(figs))
    elif not rows:
        parts.append(html.paragraph("No training steps were logged (log.csv is empty or missing).", muted=True))
    parts.append(html.paragraph(f"Run: {run}", muted=True))
    return [html.section("Training", *parts, anchor="training")]


# -- evaluation ----------------------------------------------------------------------------------------------
def read_roc_csv(path: str | Path) -> tuple[list[float], list[float]]:
    """(fpr, tpr) of a ``<benchmark>.roc.csv`` (finite rows only)."""
    fpr: list[float] = []
    tpr: list[float] = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            a, b = _num(r.get("fpr")), _num(r.get("tpr"))
            if a is not None and b is not None:
                fpr.append(a)
                tpr.append(b)
    return fpr, tpr


def evaluation_sections(eval_json: str | Path) -> list[str]:
    """"Evaluation": accuracy / EER / TPR@FPR per benchmark and the ROC curves saved beside the JSON."""
    p = Path(eval_json)
    res = _read_json(p)
    if not isinstance(res, dict) or not isinstance(res.get("benchmarks"), dict):
        return []
    bms = res["benchmarks"]
    fpr_keys = sorted({k for b in bms.values() for k in (b.get("tpr_at_fpr") or {})}, key=lambda k: -float(k))
    headers = ["benchmark", "accuracy", "± std", "EER", *[f"TPR@FPR={k}" for k in fpr_keys], "threshold", "pairs",
               "images"]
    rows = []
    for name, b in bms.items():
        tpr = b.get("tpr_at_fpr") or {}
        rows.append([name, b.get("accuracy"), b.get("std"), b.get("eer"), *[tpr.get(k) for k in fpr_keys],
                     b.get("threshold"), b.get("pairs"), b.get("images")])
    parts = [html.table(rows, headers),
             html.paragraph(f"Model: {res.get('embedder')}; flip test-time augmentation: {res.get('flip')}. "
                            "Accuracy is the mean over the benchmark's folds (threshold chosen on the other folds); "
                            "– means undefined (e.g. no negative pairs).", muted=True)]
    curves = {}
    for name in bms:
        roc = p.parent / f"{name}.roc.csv"
        if roc.is_file():
            fpr, tpr = read_roc_csv(roc)
            pts = [(a, b) for a, b in zip(fpr, tpr) if a > 0]
            if len(pts) >= 2:
                curves[name] = ([a for a, _ in pts], [b for _, b in pts])
    if curves:
        lo = min(min(y) for _, y in curves.values())
        parts.append(html.figure(plots.curve_png(curves, title="ROC", xlabel="false positive rate",
                                                 ylabel="true positive rate", logx=True, marker=None,
                                                 ylim=(max(0.0, min(0.5, lo) - 0.02), 1.005), figsize=(5.6, 3.8)),
                                 "Verification ROC (log false-positive axis) from <benchmark>.roc.csv."))
    pngs = [p.parent / f"{name}.roc.png" for name in bms
            if not (p.parent / f"{name}.roc.csv").is_file() and (p.parent / f"{name}.roc.png").is_file()]
    if pngs:  # no CSV to re-plot: the PNGs written by `synthfr eval --roc-dir`
        parts.append(html.grid(html.figure(q.read_bytes(), f"ROC: {q.name}") for q in pngs))
    missing = [name for name in bms if name not in curves and (p.parent / f"{name}.roc.csv").is_file()]
    if missing:
        parts.append(html.paragraph(f"No ROC curve for {', '.join(missing)}: it needs both genuine and impostor "
                                    "pairs.", muted=True))
    return [html.section("Evaluation", *parts, anchor="evaluation")]


# -- configuration ---------------------------------------------------------------------------------------------
def config_section(config: str | Mapping[str, Any] | None, stages: Mapping[str, Any] | None = None) -> str:
    """"Configuration": the resolved config as YAML (collapsible) and each stage's resolved config."""
    parts = []
    if config is not None:
        if isinstance(config, str):
            text = config
        else:
            import yaml

            from synthfr.utils.io import to_jsonable

            text = yaml.safe_dump(json.loads(json.dumps(config, default=to_jsonable)), sort_keys=False,
                                  default_flow_style=False, width=110)
        parts.append(html.details("Resolved configuration (YAML)", html.preformatted(text), open=True))
    for st, info in (stages or {}).items():
        if isinstance(info, dict) and info.get("config"):
            parts.append(html.details(f"stage {st}: resolved config (DONE.json)",
                                      html.preformatted(json.dumps(info["config"], indent=2))))
    if not parts:
        return ""
    return html.section("Configuration", *parts, anchor="configuration")


# -- overview --------------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    return html.fmt(v, 3)


def _overview(inp: Mapping[str, Any], quality: Mapping[str, Any] | None, evals: Mapping[str, Any] | None) -> str:
    parts = []
    stages = inp.get("stages")
    if stages:
        rows = []
        for st, info in stages.items():
            secs = info.get("seconds")
            rows.append([st, info.get("status"), round(float(secs), 1) if secs is not None else None,
                         info.get("finished")])
        parts.append(html.table(rows, ["stage", "status", "seconds", "finished"]))
    demo = inp.get("demo")
    if isinstance(demo, dict):
        ids, gen = demo.get("identities") or {}, demo.get("generation") or {}
        rows = []
        if ids:
            rows.append(["identities", ids.get("seconds"),
                         f"{ids.get('n')} × {ids.get('dim')}-D, max cos {_fmt(ids.get('max_cos'))} (standardised)"])
        if gen:
            rows.append(["images", gen.get("seconds"),
                         f"{gen.get('images')} images, {_fmt(gen.get('images_per_s'))} images/s"])
        if demo.get("seconds") is not None:
            rows.append(["total (sample, generate, quality)", demo.get("seconds"), ""])
        rows = [[a, round(float(b), 1) if b is not None else None, c] for a, b, c in rows]
        if rows:
            parts.append(html.table(rows, ["step", "seconds", "result"]))
    head: dict[str, Any] = {}
    if quality:
        head["identities"] = quality.get("n_identities")
        head["images"] = quality.get("n_embeddings")
        if "verification" in quality:
            head["dataset EER (genuine vs impostor)"] = quality["verification"].get("eer")
        if "separability" in quality:
            sep, thr = quality["separability"].get("separability"), quality["separability"].get("threshold")
            head[f"separability (share of identities with no other centre above cos {thr})"] = sep
            eer = (quality.get("verification") or {}).get("eer")
            if sep is not None and eer is not None and sep < 0.5 and eer < 0.05:
                # the combination users asked about: a threshold meant for ArcFace-like spaces in a crowded one
                head["how to read this"] = (f"images verify well (EER {eer:.3f}) but identity centres sit closer "
                                            f"than cos {thr} to each other: in this embedding space unrelated "
                                            "faces are already that close (dlib's raw space: ~0.84), so choose "
                                            "the separability threshold for the space, or measure standardised")
    for name, b in ((evals or {}).get("benchmarks") or {}).items():
        head[f"{name} accuracy"] = b.get("accuracy")
    head = {k: v for k, v in head.items() if v is not None}
    if head:
        parts.append(html.key_values(head, headers=("headline", "value")))
    if not parts:
        return ""
    return html.section("Overview", *parts, anchor="overview")


# -- the report ------------------------------------------------------------------------------------------------
def build_report(out_dir: str | Path | None = None, *, dataset: str | Path | None = None,
                 quality: str | Path | Mapping[str, Any] | None = None, train_run: str | Path | None = None,
                 eval_json: str | Path | None = None, config: str | Mapping[str, Any] | None = None,
                 stages: Iterable[str] | None = None, title: str | None = None, subtitle: str = "",
                 next_steps: Sequence[str] = (),
                 max_identities: int = 12, max_images: int = 8, thumb: int = 64) -> str:
    """The report as one HTML document (``str``).

    ``out_dir``: a pipeline or demo folder whose inputs are found with :func:`find_inputs`; the keyword
    arguments override (or, without ``out_dir``, give) each input. Sections whose inputs are missing are
    left out. ``next_steps``: shell commands listed in a last "Next steps" section (the demo's pointers).
    """
    inp = find_inputs(out_dir, stages) if out_dir is not None else ReportInputs(kind="folder")
    for k, v in (("dataset", dataset), ("quality", quality), ("train_run", train_run), ("eval_json", eval_json),
                 ("config", config)):
        if v is not None:
            inp[k] = v
    q = inp.get("quality")
    if q is not None and not isinstance(q, Mapping):
        q = _read_json(Path(q))
        if q is None:
            raise ValueError(f"{inp['quality']} is not a readable quality JSON (written by `synthfr quality`)")
    ev = _read_json(Path(inp["eval_json"])) if inp.get("eval_json") else None

    body: list[str] = []
    nav: list[tuple[str, str]] = []

    def add(fragment: str | list[str], anchor: str, label: str) -> None:
        frags = [fragment] if isinstance(fragment, str) else fragment
        frags = [f for f in frags if f]
        if frags:
            body.extend(frags)
            nav.append((anchor, label))

    add(_overview(inp, q, ev), "overview", "Overview")
    if inp.get("dataset"):
        add(sample_grid_section(inp["dataset"], max_identities, max_images, thumb), "samples", "Samples")
    if q:
        from synthfr.report.quality import quality_sections

        qs = quality_sections(dict(q), prefix="Quality: ")
        if qs:
            qs[0] = qs[0].replace("<section>", '<section id="quality">', 1)
        add(qs, "quality", "Dataset quality")
    if inp.get("train_run") and Path(inp["train_run"]).is_dir():
        add(training_sections(inp["train_run"]), "training", "Training")
    if ev:
        add(evaluation_sections(inp["eval_json"]), "evaluation", "Evaluation")
    if not any(a in ("samples", "quality", "training", "evaluation") for a, _ in nav):
        where = f"{out_dir}" if out_dir is not None else "the given inputs"
        raise ValueError(f"{where}: no pipeline or demo outputs to report on (expected generate/dataset or dataset/, "
                         "quality/quality.json, train/run/log.csv or evaluate/eval.json); pass the output folder of "
                         "`synthfr pipeline` or `synthfr demo`")
    add(config_section(inp.get("config"), inp.get("stages")), "configuration", "Configuration")
    if next_steps:
        add(html.section("Next steps", html.preformatted("\n".join(next_steps)), anchor="next"), "next",
            "Next steps")
    if title is None:
        title = {"pipeline": "synthfr pipeline report", "demo": "synthfr demo report"}.get(inp.get("kind", ""),
                                                                                        "synthfr report")
    if not subtitle and inp.get("out"):
        subtitle = f"from {inp['out']}"
    return html.page(title, [html.nav(nav)] + body if len(nav) > 1 else body, subtitle=subtitle)


def write_pipeline_report(out_dir: str | Path, path: str | Path | None = None, **kwargs: Any) -> Path:
    """Build the report of ``out_dir`` (see :func:`build_report`) and write it to ``path``
    (default ``OUT/report.html``); returns the path."""
    path = Path(path) if path is not None else Path(out_dir) / "report.html"
    return html.write_html(path, build_report(out_dir, **kwargs))
