"""Reports: self-contained HTML and plots.

``build_report`` / ``write_pipeline_report`` (:mod:`synthfr.report.pipeline`) make the end-to-end report of a
pipeline or demo folder; :mod:`synthfr.report.quality` the dataset-quality sections; :mod:`synthfr.report.html`
and :mod:`synthfr.report.plots` the building blocks.
"""
from __future__ import annotations

from typing import Any

__all__ = ["build_report", "write_pipeline_report"]


def __getattr__(name: str) -> Any:  # lazy: importing synthfr.report stays cheap
    if name in __all__:
        from synthfr.report import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'synthfr.report' has no attribute {name!r}")
