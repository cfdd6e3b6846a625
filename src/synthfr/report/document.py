"""The run report as one self-contained HTML page (inline CSS, base64 images, no scripts, no external
resources), rendered from the inputs it is given (:class:`ReportInputs`)::

    Overview         stage table and the headline numbers
    Samples          a row of thumbnails per identity for the first identities (DATASET/images/<id>/<k>.jpg)
    Dataset quality  summary, separability curve, consistency, genuine/impostor histograms with EER,
                     nearest-identity leakage table (quality.json; synthfr.report.quality)
    Training         loss, learning rate and samples/s vs step (log.csv), validation accuracy (val.csv), the
                     run's model summary (config.json)
    Evaluation       accuracy/EER/TPR@FPR table and ROC curves (eval.json, <benchmark>.roc.csv)
    Configuration    the resolved config and each stage's resolved config

Sections whose inputs are missing are left out. Finding the inputs in a pipeline folder is
:func:`synthfr.app.report.find_inputs`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from synthfr.report import html
from synthfr.report.sections import (config_section, evaluation_sections, read_json, sample_grid_section,
                                     training_sections)

__all__ = ["ReportInputs", "render_report"]


class ReportInputs(dict):
    """What a report is built from: ``dataset``, ``quality`` (json path), ``train_run``, ``eval_json``,
    ``config`` (YAML text or a mapping), ``stages`` (pipeline summary: stage -> {status, seconds, summary}),
    ``kind`` (pipeline | demo | folder). Missing inputs are ``None``."""


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
def render_report(inp: Mapping[str, Any], *, title: str | None = None, subtitle: str = "",
                  next_steps: Sequence[str] = (), max_identities: int = 12, max_images: int = 8, thumb: int = 64,
                  where: str = "the given inputs") -> str:
    """The report of ``inp`` (:class:`ReportInputs`) as one HTML document (``str``). ``next_steps``: shell
    commands listed in a last "Next steps" section (the demo's pointers); ``where`` names the inputs in the
    error raised when none of them can be reported on."""
    q = inp.get("quality")
    if q is not None and not isinstance(q, Mapping):
        q = read_json(Path(q))
        if q is None:
            raise ValueError(f"{inp['quality']} is not a readable quality JSON (written by `synthfr quality`)")
    ev = read_json(Path(inp["eval_json"])) if inp.get("eval_json") else None

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
        raise ValueError(f"{where}: no pipeline or demo outputs to report on (expected generate/dataset, "
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
