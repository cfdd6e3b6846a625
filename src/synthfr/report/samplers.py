"""HTML sections describing a set of sampled identities (reusable by larger reports)."""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.report import html, plots

__all__ = ["sampler_sections"]

_KEYS = ("method", "n", "dim", "seed", "max_cos", "mean_nn_cos", "welch_bound", "gallery_mean_nn_cos", "seconds",
         "check", "space", "rejected", "proposed")


def sampler_sections(stats: dict[str, Any], identities_std: np.ndarray | None = None,
                     gallery_std: np.ndarray | None = None, title: str = "Identity sampling") -> list[str]:
    """Sections for one ``synthfr sample`` result: its statistics, the optimiser's max-cosine history and, given
    the standardised vectors (``IDS.std.npy``), the nearest-neighbour cosine distribution (and the nearest-gallery
    distribution with a standardised gallery)."""
    from synthfr.samplers.geometry import cross_nn, pair_stats

    parts = [html.key_values({k: stats[k] for k in _KEYS if k in stats})]
    figs = []
    hist = (stats.get("sampler") or {}).get("history") or []
    if hist:
        t = [h[0] for h in hist]
        m = [h[2] for h in hist]
        figs.append(html.figure(plots.curve_png({"max cos": (t, m)}, title="Optimisation", xlabel="seconds",
                                                ylabel="largest pairwise cosine"), "Largest cosine during optimisation."))
    if identities_std is not None and len(identities_std) <= 200_000:
        series = {"identity → nearest identity": pair_stats(identities_std)["nn_cos"]}
        if gallery_std is not None:
            series["identity → nearest gallery"] = cross_nn(identities_std, gallery_std)[0]
        figs.append(html.figure(plots.values_hist_png(series, title="Nearest-neighbour cosines (standardised space)"),
                                "Distribution of each identity's nearest-neighbour cosine."))
    if figs:
        parts.append(html.grid(figs))
    return [html.section(title, *parts)]
