"""VIGFace stage 1 for the DiT: one prototype per real class and ``V`` virtual prototypes, from one classifier.

The ``vigface`` sampler trains a normalised ArcFace classifier on the labelled real embeddings (standardised:
centred on their mean and renormalised, as every synthfr sampler sees a dlib-torch gallery) with ``V`` extra
rows that never receive a sample. Its real rows condition the DiT in training (each face → its class row), its
virtual rows are the new identities the DiT renders. The run folder keeps everything needed to redo or reuse it:

    RUN/stage1/gallery.npy (+ gallery.labels.npy)   the real embeddings (raw space) and their class labels;
                                                    `synthfr sample vigface --gallery RUN/stage1/gallery.npy`
                                                    with the same seed and options gives the same virtual rows
    RUN/stage1/space.space.json/.npz                the standardisation (the DiT's condition space)
    RUN/stage1/prototypes.safetensors               real (C×D) and virtual (V×D) rows, standardised space
    RUN/stage1/classes.txt                          class name of each real row
    RUN/stage1/virtual.npy                          the virtual rows in the embedder's own space (what
                                                    `synthfr generate --identities` takes)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synthfr.utils.io import atomic_write_text, read_json, write_json

__all__ = ["Prototypes", "train_prototypes", "load_prototypes"]


class Prototypes:
    """Stage-1 result: real and virtual rows (standardised space), class names, the space, per-image class."""

    def __init__(self, real: np.ndarray, virtual: np.ndarray, classes: list[str], space: Any, stats: dict):
        self.real, self.virtual, self.classes, self.space, self.stats = real, virtual, classes, space, stats

    def class_index(self, labels: list[str]) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.classes)}
        return np.array([pos[x] for x in labels], dtype=np.int64)


def train_prototypes(emb: np.ndarray, labels: list[str], virtual: int, out: str | Path, seed: int = 0,
                     options: dict | None = None) -> Prototypes:
    """Run (or reload, when ``out`` already holds the same inputs) the vigface classifier; see module doc."""
    import torch
    from safetensors.torch import save_file

    from synthfr.samplers import create_sampler
    from synthfr.spaces import EmbeddingSpace

    out = Path(out)
    opts = dict(options or {})
    key = {"n": len(emb), "virtual": int(virtual), "seed": int(seed), "options": opts,
           "emb_sum": float(np.asarray(emb, np.float64).sum()), "labels": len(set(labels))}
    if (out / "DONE.json").is_file() and read_json(out / "DONE.json").get("key") == key:
        return load_prototypes(out)
    out.mkdir(parents=True, exist_ok=True)
    emb = np.asarray(emb, np.float32)
    classes = sorted(set(labels))
    lab = Prototypes(None, None, classes, None, {}).class_index(labels)  # integers, in np.unique's order
    np.save(out / "gallery.npy", emb)
    np.save(out / "gallery.labels.npy", lab)
    # the same standardisation sample_identities fits for a dlib-like gallery ("auto" -> centre)
    space = EmbeddingSpace.fit(emb, center=True, source=str(out / "gallery.npy"))
    space.save(out / "space")
    sampler = create_sampler("vigface", **opts)
    v_std, stats = sampler.sample(virtual, dim=emb.shape[1], gallery=space.to_standard(emb), seed=seed,
                                  labels=lab)
    real = np.asarray(sampler.real_prototypes, np.float32)
    save_file({"real": torch.from_numpy(real), "virtual": torch.from_numpy(np.ascontiguousarray(v_std))},
              str(out / "prototypes.safetensors"))
    atomic_write_text(out / "classes.txt", "".join(c + "\n" for c in classes))
    np.save(out / "virtual.npy", space.from_standard(v_std))
    small = {k: v for k, v in stats.items() if not isinstance(v, list)}
    write_json(out / "DONE.json", {"key": key, "stats": small})
    return Prototypes(real, np.asarray(v_std, np.float32), classes, space, small)


def load_prototypes(folder: str | Path) -> Prototypes:
    """Read a ``RUN/stage1`` folder written by :func:`train_prototypes`."""
    from safetensors.numpy import load_file

    from synthfr.spaces import EmbeddingSpace

    folder = Path(folder)
    if not (folder / "prototypes.safetensors").is_file():
        raise FileNotFoundError(f"{folder} holds no prototypes.safetensors; run synthfr train-dit first")
    t = load_file(str(folder / "prototypes.safetensors"))
    classes = (folder / "classes.txt").read_text().splitlines()
    stats = read_json(folder / "DONE.json").get("stats", {}) if (folder / "DONE.json").is_file() else {}
    return Prototypes(t["real"], t["virtual"], classes, EmbeddingSpace.load(folder / "space"), stats)
