"""Config of the dataset-quality job (``synthfr quality``); one docstring under every field.

The command line is generated from these fields (:func:`synthfr.config.add_config_arguments`).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QualityConfig"]


@dataclass
class QualityConfig:
    """``synthfr quality``: identity metrics per network, realism and diversity against real faces, attributes."""

    dataset: str | None = None
    """Image folder <identity>/<image> to measure (with embedder); or give embeddings."""
    embedder: str | None = None
    """Registered embedder NAME[:key=value,...] for the dataset folder, e.g. dlib-torch or onnx:path=MODEL.onnx
    (`synthfr list embedder`)."""
    embeddings: str | None = None
    """Precomputed embeddings E.npy (N×D) to measure instead of a folder."""
    labels: str | None = None
    """Identity label per row of the embeddings (default E.labels.npy beside E.npy)."""
    embeddings_out: str | None = None
    """Where the dataset folder's embeddings are written (default: beside json/html as
    quality_embeddings.npy)."""
    judges: str = "auto"
    """More networks measuring the folder side by side (comma-separated names; 'auto': dlib-torch and sface when
    sface is registered; 'none')."""
    reference: str | None = None
    """Real faces: a folder (embedded with every network) or embeddings of the embedder's space (R.npy); gives
    leakage, Fréchet distance, precision/recall/density/coverage, the map and attributes."""
    reference_labels: str | None = None
    """Identity labels of an R.npy reference."""
    prdc_k: int = 5
    """k of the k-NN manifolds for precision/recall/density/coverage."""
    attributes: bool = True
    """Measure per-image attributes (pose, expression, illumination, sharpness, detection)."""
    reuse_embeddings: bool = False
    """Reuse folder embeddings an earlier run wrote beside json for the same folder, network name and files
    (quality_embeddings*.meta.json) instead of embedding again."""
    attribute_images: int = 2000
    """Faces measured per set for attributes (whole identities)."""
    leak_threshold: float = 0.5
    """Cosine above which an identity leaks."""
    top_k: int = 20
    """Leakage pairs listed."""
    clean_out: str | None = None
    """Write embeddings + labels without the leaked identities to this .npy."""
    space: str = "fit"
    """Standardisation of the measuring space: fit (centred on the dataset), none (the embedder's raw space) or
    a saved SPACE.json."""
    metrics: str | None = None
    """Comma-separated subset (separability, noise, consistency, verification, leakage, face_quality, frechet,
    prdc, identity_map, worst_identities); default all."""
    max_pairs: int = 200000
    """Genuine/impostor pairs at most."""
    device: str = "auto"
    """Torch device of the embedder."""
    seed: int = 0
    """Seed of pair and curve sampling."""
    json: str | None = None
    """Write all metrics as JSON to this path (a dataset made by `synthfr generate` also keeps them and shows
    them in its card)."""
    html: str | None = None
    """Write a self-contained HTML report with plots to this path."""
    progress: bool = True
    """Show a progress bar."""
