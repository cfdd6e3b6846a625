"""The run report of a pipeline folder: where the inputs sit (one folder layout, the pipeline's), then the
library's renderer (:func:`synthfr.report.document.render_report`).

``write_pipeline_report(OUT)`` (CLI: ``synthfr report OUT``; written by ``synthfr pipeline`` as
``OUT/report.html`` after its last enabled stage, and by ``synthfr demo``, a pipeline preset) reads::

    OUT/<stage>/DONE.json       which stages are complete (only those are reported), their resolved configs
    OUT/generate/dataset/       the sample grid
    OUT/quality/quality.json    dataset quality
    OUT/train/run/              training curves (log.csv, val.csv, config.json)
    OUT/evaluate/eval.json      benchmark table and ROC curves
    OUT/config.yaml             the resolved config (OUT/demo.json instead for a demo: its settings)

A training run folder on its own (``log.csv`` / ``config.json``) is reported too. Every input can also be
given explicitly (``dataset=``, ``quality=``, ``train_run=``, ``eval_json=``, ``config=``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from synthfr.app.pipeline.config import STAGES
from synthfr.report.document import ReportInputs, render_report
from synthfr.report.html import write_html
from synthfr.report.sections import read_json

__all__ = ["find_inputs", "build_report", "write_pipeline_report"]

#: stage -> the file or folder of its output the report reads
_OUTPUTS = {"generate": ("dataset", "generate/dataset"), "quality": ("quality", "quality/quality.json"),
            "train": ("train_run", "train/run"), "evaluate": ("eval_json", "evaluate/eval.json")}


def find_inputs(out_dir: str | Path, stages: Iterable[str] | None = None) -> ReportInputs:
    """Find the report's inputs in a pipeline folder (the demo's included).

    ``stages``: the stages to report on (default: those with a ``DONE.json``; a folder without markers, e.g.
    copied by hand, is read as it is); the pipeline passes the stages that ran or were skipped as complete,
    so a stage disabled this time is left out even if an older run left its folder behind.
    """
    out = Path(out_dir).expanduser().resolve()
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder; pass the output folder of `synthfr pipeline` or "
                                "`synthfr demo`")
    inp = ReportInputs(dataset=None, quality=None, train_run=None, eval_json=None, config=None, stages=None,
                       kind="folder", out=str(out))
    done = {s for s in STAGES if (out / s / "DONE.json").is_file()}
    summ = read_json(out / "pipeline.json")
    use = set(STAGES)
    if done or isinstance(summ, dict):
        inp["kind"] = "pipeline"
        use = (set(stages) if stages is not None else set(done)) & done  # only complete stages
        inp["stages"] = _stage_table(out, done, use, summ)
    for stage, (key, rel) in _OUTPUTS.items():
        if stage in use and (out / rel).exists():
            inp[key] = str(out / rel)
    if (out / "config.yaml").is_file():
        inp["config"] = (out / "config.yaml").read_text()
    demo = read_json(out / "demo.json")
    if isinstance(demo, dict):  # the demo: a pipeline preset whose settings are the demo's own
        inp["kind"] = "demo"
        inp["demo"] = demo
        if isinstance(demo.get("config"), dict):
            inp["config"] = demo["config"]
    if inp["train_run"] is None and ((out / "log.csv").is_file() or (out / "config.json").is_file()):
        inp["train_run"] = str(out)  # a training run folder on its own
    return inp


def _stage_table(out: Path, done: set[str], use: set[str], summ: Any) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for s in STAGES:
        marker = read_json(out / s / "DONE.json") if s in done else None
        if marker is not None:
            table[s] = {"status": "complete", "seconds": marker.get("seconds"), "summary": marker.get("summary", {}),
                        "config": marker.get("config"), "finished": marker.get("finished")}
        elif isinstance(summ, dict) and s in summ.get("stages", {}):
            table[s] = {"status": summ["stages"][s].get("status", "?")}
        else:
            table[s] = {"status": "not run"}
        if s not in use and table[s]["status"] == "complete":
            table[s]["status"] = "not in this run"
    return table


def build_report(out_dir: str | Path | None = None, *, dataset: str | Path | None = None,
                 quality: str | Path | Mapping[str, Any] | None = None, train_run: str | Path | None = None,
                 eval_json: str | Path | None = None, config: str | Mapping[str, Any] | None = None,
                 stages: Iterable[str] | None = None, title: str | None = None, subtitle: str = "",
                 next_steps: Sequence[str] = (),
                 max_identities: int = 12, max_images: int = 8, thumb: int = 64) -> str:
    """The report as one HTML document (``str``).

    ``out_dir``: a pipeline folder whose inputs are found with :func:`find_inputs`; the keyword arguments
    override (or, without ``out_dir``, give) each input. See :func:`synthfr.report.document.render_report`.
    """
    inp = find_inputs(out_dir, stages) if out_dir is not None else ReportInputs(kind="folder")
    for k, v in (("dataset", dataset), ("quality", quality), ("train_run", train_run), ("eval_json", eval_json),
                 ("config", config)):
        if v is not None:
            inp[k] = v
    return render_report(inp, title=title, subtitle=subtitle, next_steps=next_steps, max_identities=max_identities,
                         max_images=max_images, thumb=thumb,
                         where=str(out_dir) if out_dir is not None else "the given inputs")


def write_pipeline_report(out_dir: str | Path, path: str | Path | None = None, **kwargs: Any) -> Path:
    """Build the report of ``out_dir`` (see :func:`build_report`) and write it to ``path``
    (default ``OUT/report.html``); returns the path."""
    path = Path(path) if path is not None else Path(out_dir) / "report.html"
    return write_html(path, build_report(out_dir, **kwargs))
