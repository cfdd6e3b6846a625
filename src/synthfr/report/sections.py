"""The sections of the run report, each rendered from the files it is given: a sample grid of a dataset
folder, training curves of a run folder, the evaluation table and ROC curves, the configuration. Where those
files sit in a pipeline folder is the app's business (:mod:`synthfr.app.report`)."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from synthfr.report import html, plots

__all__ = ["sample_grid_section", "training_sections", "evaluation_sections", "config_section", "read_log_csv",
           "read_roc_csv", "strip_jpeg", "read_json"]


# -- locating the inputs -------------------------------------------------------------------------------------
def read_json(p: Path) -> Any:
    try:
        return json.loads(Path(p).read_text())
    except (OSError, ValueError):
        return None


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


def strip_jpeg(paths: Sequence[Path], size: int, quality: int = 85) -> bytes:
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
        strip = html.image(strip_jpeg(paths, thumb), "image/jpeg", alt=f"identity {name}",
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
    meta = read_json(run / "config.json") or {}
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

        curves: dict[str, tuple[list[float], list[float]]] = {}
        for r, text in zip(read_csv_rows(val_path), read_csv_rows(val_path, numeric=False)):
            s, a = r.get("step"), r.get("accuracy")
            if s is not None and a is not None:
                xs, ys = curves.setdefault(text.get("benchmark") or "val", ([], []))
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
    from synthfr.utils.run_dir import read_csv_rows

    pts = [(r["fpr"], r["tpr"]) for r in read_csv_rows(path)
           if r.get("fpr") is not None and r.get("tpr") is not None]
    return [a for a, _ in pts], [b for _, b in pts]


def evaluation_sections(eval_json: str | Path) -> list[str]:
    """"Evaluation": accuracy / EER / TPR@FPR per benchmark and the ROC curves saved beside the JSON."""
    p = Path(eval_json)
    res = read_json(p)
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
