"""AttrOP's options (:class:`AttrOPConfig`, whose field docstrings make ``--help``) and the parsers of its
``targets`` and ``images`` specs; the optimisation itself is :mod:`synthfr.variations.attrop`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["AttrOPConfig", "parse_indices", "parse_targets"]


@dataclass
class AttrOPConfig:
    targets: str = "20:yaw=30"
    """Per-identity target groups 'N:key=value[:key=value],...' (keys yaw, pitch in degrees; quality)."""
    generator: str = "synthfr-v2"
    """Differentiable generator whose output is steered (the dataset's default generator, so that the vector
    is steered for the network that renders it) (its embedder gives the identity term)."""
    weights: str | None = None
    """Generator weights folder (None: the generator's default)."""
    pose_weights: str | None = None
    """Pose estimator folder (None: the package's pose-small)."""
    steps: int = 40
    """Hard bound on gradient steps per image."""
    step_size: float = 0.06
    """Length of every step on the unit sphere (normalised gradient), so |c − x| ≤ steps·step_size."""
    id_bound: float = 0.09
    """Largest allowed 1 − cos(E(generated), identity vector) (0.09 = dlib's LFW threshold cos 0.91)."""
    id_weight: float = 20.0
    """Weight of the identity hinge in the loss."""
    tol_deg: float = 5.0
    """An angle target is met within this many degrees."""
    mirror_yaw: bool = True
    """Alternate the yaw sign with the image index (left and right profiles)."""
    pose_eot: int = 0
    """Expectation over transformation: the pose term averages the estimator over this many randomly shifted,
    scaled and slightly rotated copies of each image (per-image seeded), so the steps must turn the head for
    every view rather than exploit one input of the estimator; 0 = the image alone."""
    eot_shift: float = 0.06
    """Largest shift of an EOT copy, as a fraction of half the image side (0.06 ≈ 3 px at 112 px)."""
    eot_scale: float = 0.06
    """Largest relative zoom of an EOT copy."""
    eot_rotate: float = 5.0
    """Largest in-plane rotation of an EOT copy, degrees."""
    batch_size: int = 16
    """Images optimised together."""
    device: str = "cpu"
    """Device of generator, pose estimator and embedder."""
    space: str | None = None
    """Embedding-space file: inputs are standardised vectors (mapped to the generator's space and back)."""
    embedder: str | None = None
    """Differentiable embedder of the identity term (None: the generator's own embedder)."""
    embedder_weights: str | None = None
    """Weights of that embedder (None: what the generator declares for its weights, e.g. the ArcFace released in
    the Vec2Face folder; else the embedder's default)."""
    images: str | None = None
    """Image indices of every identity the target groups fill, in order: 'A-B' ranges joined by '+', e.g.
    '20-49' (None: from index 0)."""
    start: str = "identity"
    """Start vector of every image: 'identity' or a registered variation name (e.g. 'vec2face-sigma'); images
    without a target keep it."""


def parse_targets(spec: str) -> list[tuple[int, dict[str, float]]]:
    """'20:yaw=60,10:yaw=85:pitch=10' -> [(20, {'yaw': 60}), (10, {'yaw': 85, 'pitch': 10})]."""
    from synthfr.config import parse_assignment

    out: list[tuple[int, dict[str, float]]] = []
    for group in [g.strip() for g in spec.replace(";", ",").split(",") if g.strip()]:
        parts = group.split(":")
        try:
            n = int(parts[0])
            kv = {}
            for p in parts[1:]:
                k, v = parse_assignment(p, "AttrOP target")
                k = k.lower()
                if k not in ("yaw", "pitch", "quality"):
                    raise ValueError(k)
                kv[k] = float(v)
        except (ValueError, TypeError):
            raise ValueError(f"cannot read AttrOP target group {group!r}; write N:key=value[:key=value] with keys "
                             "yaw, pitch (degrees) or quality, e.g. '20:yaw=60,10:yaw=85'") from None
        if n < 0 or not kv:
            raise ValueError(f"AttrOP target group {group!r} needs a count ≥ 0 and at least one key=value")
        out.append((n, kv))
    return out


def parse_indices(spec: str | Sequence[int] | None) -> list[int] | None:
    """'20-49' / '0-9+40-49' / '3' (or a list of ints) -> sorted distinct indices; None stays None."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        return sorted({int(i) for i in spec})
    out: set[int] = set()
    for part in [p.strip() for p in str(spec).replace(";", "+").replace(",", "+").split("+") if p.strip()]:
        try:
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            raise ValueError(f"cannot read AttrOP images {spec!r}: write ranges A-B joined by '+', e.g. '20-49'") \
                from None
        if lo < 0 or hi < lo:
            raise ValueError(f"AttrOP images range {part!r} must be A-B with 0 ≤ A ≤ B")
        out.update(range(lo, hi + 1))
    return sorted(out)
