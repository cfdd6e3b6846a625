"""Small matplotlib plots rendered to PNG bytes (Agg backend, no display needed).

Every function returns PNG bytes so :mod:`synthfr.report.html` can inline them; ``save_png`` writes them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["hist_png", "hist_grid_png", "curve_png", "values_hist_png", "scatter_png", "save_png"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def _fig(figsize=(6.4, 3.6)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=100)
    return plt, fig, ax


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def hist_png(series: Mapping[str, Mapping[str, Sequence[float]]], title: str = "", xlabel: str = "cosine",
             vlines: Mapping[str, float] | None = None, density: bool = True, xlim: tuple[float, float] | None = None
             ) -> bytes:
    """Overlaid histograms given as ``{label: {"edges": [...], "counts": [...]}}`` (pre-binned)."""
    plt, fig, ax = _fig()
    lo, hi = np.inf, -np.inf
    for k, (name, h) in enumerate(series.items()):
        edges = np.asarray(h["edges"], dtype=float)
        counts = np.asarray(h["counts"], dtype=float)
        if counts.sum() <= 0:
            continue
        widths = np.diff(edges)
        y = counts / (counts.sum() * widths) if density else counts
        ax.stairs(y, edges, fill=True, alpha=0.35, color=_COLORS[k % len(_COLORS)], label=f"{name} (n={int(counts.sum())})")
        ax.stairs(y, edges, color=_COLORS[k % len(_COLORS)])
        nz = np.nonzero(counts)[0]
        lo, hi = min(lo, edges[nz[0]]), max(hi, edges[nz[-1] + 1])
    for k, (name, v) in enumerate((vlines or {}).items()):
        if v is not None and np.isfinite(v):
            ax.axvline(v, color="k", ls=["--", ":", "-."][k % 3], lw=1, label=f"{name} = {v:.3f}")
    if xlim:
        ax.set_xlim(*xlim)
    elif np.isfinite(lo):
        pad = 0.05 * (hi - lo + 1e-9)
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(plt, fig)


def hist_grid_png(panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], ncols: int = 4,
                  panel_size: tuple[float, float] = (2.7, 2.0)) -> bytes:
    """Small multiples: one panel per ``{title: {label: {"edges", "counts"}}}`` (densities), one shared legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    rows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(rows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * rows + 0.4), dpi=100,
                             squeeze=False)
    handles = {}
    for ax, (title, series) in zip(axes.flat, panels.items()):
        for k, (name, h) in enumerate(series.items()):
            edges = np.asarray(h["edges"], dtype=float)
            counts = np.asarray(h["counts"], dtype=float)
            if counts.sum() <= 0:
                continue
            y = counts / (counts.sum() * np.diff(edges))
            c = _COLORS[k % len(_COLORS)]
            ax.stairs(y, edges, fill=True, alpha=0.35, color=c)
            handles[name] = ax.stairs(y, edges, color=c)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if handles:  # inside the first panel: a figure legend would sit on the titles
        axes.flat[0].legend(list(handles.values()), list(handles), fontsize=7, loc="upper left")
    return _png(plt, fig)


def values_hist_png(values: Mapping[str, Any], bins: int = 60, title: str = "", xlabel: str = "cosine",
                    vlines: Mapping[str, float] | None = None) -> bytes:
    """Overlaid histograms of raw value arrays (binned on a common range)."""
    arrs = {k: np.asarray(v, dtype=float) for k, v in values.items() if len(v)}
    lo = min(a.min() for a in arrs.values())
    hi = max(a.max() for a in arrs.values())
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    series = {k: {"edges": edges, "counts": np.histogram(a, bins=edges)[0]} for k, a in arrs.items()}
    return hist_png(series, title=title, xlabel=xlabel, vlines=vlines)


def curve_png(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "", xlabel: str = "",
              ylabel: str = "", logx: bool = False, ylim: tuple[float, float] | None = None,
              figsize: tuple[float, float] = (6.4, 3.6), marker: str | None = "o", logy: bool = False,
              xlim: tuple[float, float] | None = None) -> bytes:
    """Line plot of ``{label: (x, y)}`` (``marker=None`` for dense curves such as ROCs)."""
    plt, fig, ax = _fig(figsize)
    for k, (name, (x, y)) in enumerate(curves.items()):
        ax.plot(x, y, marker=marker, ms=3, color=_COLORS[k % len(_COLORS)], label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    return _png(plt, fig)


def scatter_png(points: Mapping[str, Sequence[Sequence[float]]], title: str = "", xlabel: str = "",
                ylabel: str = "", figsize: tuple[float, float] = (5.6, 5.0)) -> bytes:
    """Scatter of ``{label: [[x, y], ...]}`` on equal axes (e.g. a 2-D MDS map)."""
    plt, fig, ax = _fig(figsize)
    markers = ["o", "x", "^", "s"]
    for k, (name, pts) in enumerate(points.items()):
        a = np.asarray(pts, dtype=float).reshape(-1, 2)
        if len(a):
            ax.scatter(a[:, 0], a[:, 1], s=14, alpha=0.7, marker=markers[k % len(markers)],
                       color=_COLORS[k % len(_COLORS)], label=f"{name} (n={len(a)})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(plt, fig)


def save_png(data: bytes, path: str | Path) -> Path:
    from synthfr.utils.io import atomic_write_bytes

    return atomic_write_bytes(path, data)
