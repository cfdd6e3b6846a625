"""Reports: self-contained HTML and plots, rendered from what they are given.

:func:`~synthfr.report.document.render_report` makes the run report from its inputs (the app finds them in a
pipeline folder: :mod:`synthfr.app.report`); :mod:`~synthfr.report.sections` its sections,
:mod:`synthfr.report.quality` the dataset-quality sections; :mod:`synthfr.report.html` and
:mod:`synthfr.report.plots` the building blocks.
"""
from __future__ import annotations

from typing import Any

__all__ = ["render_report", "ReportInputs"]


def __getattr__(name: str) -> Any:  # lazy: importing synthfr.report stays cheap
    if name in __all__:
        from synthfr.report import document

        return getattr(document, name)
    raise AttributeError(f"module 'synthfr.report' has no attribute {name!r}")
