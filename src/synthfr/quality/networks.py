"""Several recognition networks over one dataset (and one reference): which networks, embedding the folders,
and the side-by-side table of their headline figures.

Two judges: ``dlib-torch`` is the space the built-in generator is conditioned and trained in, so its verdict on
generated faces is partial; ``sface`` (OpenCV Zoo's SFace, a different network trained on different data) is the
judge. ``synthfr quality`` therefore measures identity figures with both by default, side by side. Measuring is
all SFace does here: nothing in this package trains, and SFace never enters a loss, a gradient, AttrOP or a
sampler.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthfr.errors import InputError, UsageError

__all__ = ["JUDGES", "resolve_networks", "network_name", "embed_folder", "folder_signature", "headline"]

#: the two networks reported side by side by default (the generator's own space, and the independent judge)
JUDGES = ("dlib-torch", "sface")


def network_name(net: Any) -> str:
    """A network's display name: a registered name as given, an embedder object's ``name``."""
    return net if isinstance(net, str) else str(getattr(net, "name", type(net).__name__))


def resolve_networks(embedder: Any, judges: Any = "auto") -> list[Any]:
    """The networks to measure with: ``embedder`` first (the primary space), then the judges (deduplicated).

    ``judges``: ``"auto"`` = ``dlib-torch`` and ``sface`` when ``sface`` is registered (otherwise none: one network
    alone cannot be a second opinion), ``None``/``"none"``/``[]`` = only ``embedder``, or a list / comma-separated
    string of registered names or embedder objects.
    """
    from synthfr.face.embedders import REGISTRY

    if judges is None or (isinstance(judges, str) and judges.strip().lower() in ("", "none")):
        extra: list[Any] = []
    elif isinstance(judges, str) and judges.strip().lower() == "auto":
        extra = list(JUDGES) if "sface" in REGISTRY else []
    elif isinstance(judges, str):
        extra = [j.strip() for j in judges.split(",") if j.strip()]
    else:
        extra = list(judges)
    for j in extra:
        if isinstance(j, str) and j.split(":", 1)[0] not in REGISTRY:
            raise UsageError(f"judge network {j!r} is not a registered embedder; registered: "
                             f"{', '.join(REGISTRY.list())} (`synthfr list embedders`)")
    out = [embedder]
    seen = {network_name(embedder)}
    for j in extra:
        if network_name(j) not in seen:
            seen.add(network_name(j))
            out.append(j)
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "net"


def side_path(base: Path, *parts: str) -> Path:
    """``quality_embeddings.npy`` + ("reference", "sface") -> ``quality_embeddings.reference.sface.npy``."""
    stem = base.name[:-4] if base.name.endswith(".npy") else base.name
    return base.with_name(".".join([stem, *(_slug(p) for p in parts)]) + ".npy")


def folder_signature(folder: str | Path, net: Any) -> dict[str, Any]:
    """What an earlier embedding of ``folder`` must match to be reused: the folder, the network's name, and
    the number, total size and newest modification time of its image files."""
    from synthfr.face.embed import list_images

    files = list_images(folder)
    stats = [f.stat() for f in files]
    return {"root": str(Path(folder).resolve()), "network": network_name(net), "files": len(files),
            "bytes": int(sum(st.st_size for st in stats)),
            "newest_mtime": max((st.st_mtime for st in stats), default=0.0)}


def embed_folder(folder: str | Path, net: Any, out: Path, *, device: Any = "auto", progress: bool = True,
                 what: str = "dataset", reuse: bool = False) -> dict[str, Any]:
    """Embed an image folder with ``net``; an unreadable image is an error (a one-line message naming it).

    ``reuse``: load ``out`` instead when an earlier call wrote it for the same folder, network name and files
    (``out.meta.json``, see :func:`folder_signature`) — a network given by name must then mean the same weights.
    Returns ``{"embeddings", "labels" (None for a flat folder), "classes", "paths", "failed", "root"}``; faces
    that could not be aligned (no face found) are skipped and listed in ``failed``.
    """
    from synthfr.face.embed import embed_path, sidecar_paths
    from synthfr.utils.io import read_json, write_json

    out = Path(out)
    meta_path = out.with_name(out.name[:-4] + ".meta.json" if out.name.endswith(".npy") else out.name + ".meta.json")
    sig = folder_signature(folder, net)
    side = sidecar_paths(out)
    if reuse and meta_path.is_file() and out.is_file() and read_json(meta_path).get("signature") == sig:
        res = {"failed": read_json(meta_path).get("failed", []), "paths": str(side["paths"])}
        if side["labels"].is_file():
            res.update(labels=str(side["labels"]), classes=str(side["classes"]))
    else:
        res = embed_path(folder, net, out, device=device, progress=progress)
    bad = [f for f in res["failed"] if f["reason"].startswith("unreadable")]
    if bad:
        raise InputError(f"{what} {folder}: {len(bad)} image(s) cannot be read, first {bad[0]['path']} "
                         f"({bad[0]['reason'].splitlines()[0]}); remove or replace them")
    emb = np.load(out)
    if len(emb) == 0:
        raise InputError(f"{what} {folder}: no face could be embedded ({len(res['failed'])} failed); "
                         "give aligned 112×112 faces or photos with a detectable face")
    write_json(meta_path, {"signature": sig, "failed": res["failed"]})
    lab = np.load(res["labels"]) if "labels" in res else None
    classes = Path(res["classes"]).read_text().splitlines() if "classes" in res else None
    paths = Path(res["paths"]).read_text().splitlines()
    return {"embeddings": emb, "labels": lab, "classes": classes, "paths": paths, "failed": res["failed"],
            "root": str(Path(folder).resolve()), "out": str(out)}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


#: (label, path into a quality result) of the figures compared across networks and against the reference
HEADLINE: Sequence[tuple[str, tuple[str, ...]]] = (
    ("separability", ("separability", "separability")),
    ("nearest other centre cos (mean)", ("separability", "centre_nn_cos_mean")),
    ("inconsistent images", ("consistency", "inconsistent_fraction")),
    ("mean cos to own centre", ("consistency", "mean_cos_to_centre")),
    ("EER", ("verification", "eer")),
    ("genuine mean cos", ("verification", "genuine_mean")),
    ("impostor mean cos", ("verification", "impostor_mean")),
    ("leaked identities", ("leakage", "leaked_count")),
    ("face quality (CR) median", ("face_quality", "median")),
    ("Fréchet distance", ("frechet", "fd")),
    ("Fréchet distance, reference split-half", ("frechet", "reference_split_half_fd")),
    ("precision", ("prdc", "precision")),
    ("recall", ("prdc", "recall")),
    ("density", ("prdc", "density")),
    ("coverage", ("prdc", "coverage")),
)


def headline(q: dict[str, Any] | None) -> dict[str, Any]:
    """The comparable figures of one quality result (``None`` where the metric did not run)."""
    return {label: _get(q, *path) for label, path in HEADLINE} if q else {}
