"""Identity leakage against a reference set (e.g. the generator's training faces, or an evaluation set).

Each synthetic identity centre is compared with every reference item (reference identity centres when
reference labels are given, otherwise individual reference embeddings). The report lists the top-k most
similar synthetic–reference pairs, how many synthetic identities exceed ``threshold`` (leaked), and
:func:`clean_leaked` drops those identities' rows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthfr.quality import REGISTRY
from synthfr.quality._common import check_inputs, class_centres, histogram, reference_points

__all__ = ["leakage", "clean_leaked"]


@REGISTRY.register("leakage")
def leakage(embeddings: Any, labels: Any, reference: Any = None, reference_labels: Any = None,
            threshold: float = 0.5, top_k: int = 20, **_: Any) -> dict[str, Any]:
    """Identity leakage: synthetic identity centres vs reference identities; top-k pairs and count > threshold."""
    if reference is None:
        return {"skipped": "no reference set given (--reference R.npy [--reference-labels RL.npy])"}
    e, lab = check_inputs(embeddings, labels)
    classes, _, c = class_centres(e, lab)
    rcls, rc, labelled = reference_points(reference, reference_labels, e.shape[1], "leakage")
    ref_kind = "identity centres" if labelled else "embeddings"
    x, y = torch.as_tensor(c), torch.as_tensor(rc)
    best = torch.full((len(x),), -2.0)
    arg = torch.zeros(len(x), dtype=torch.long)
    for b in range(0, len(y), 8192):
        v, i = (x @ y[b:b + 8192].T).max(1)
        upd = v > best
        best, arg = torch.where(upd, v, best), torch.where(upd, i + b, arg)
    best_np, arg_np = best.numpy(), arg.numpy()
    order = np.argsort(-best_np, kind="stable")
    leaked = order[best_np[order] > threshold]
    top = [{"identity": classes[i].item(), "reference": rcls[arg_np[i]].item(), "cos": float(best_np[i])}
           for i in order[:top_k]]
    return {"threshold": float(threshold), "reference_kind": ref_kind, "reference_items": int(len(rc)),
            "leaked_count": int(len(leaked)), "leaked_fraction": float(len(leaked) / max(len(c), 1)),
            "leaked_identities": [classes[i].item() for i in leaked], "top_pairs": top,
            "max_cos_to_reference": float(best_np.max()), "nearest_reference_hist": histogram(best_np)}


def clean_leaked(embeddings: Any, labels: Any, leaked_identities: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop every row of the leaked identities: returns ``(embeddings, labels, kept_row_mask)``."""
    e = np.asarray(embeddings)
    lab = np.asarray(labels).reshape(-1)
    mask = ~np.isin(lab, np.asarray(list(leaked_identities), dtype=lab.dtype))
    return e[mask], lab[mask], mask
