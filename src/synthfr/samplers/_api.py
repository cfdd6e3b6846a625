"""``sample_identities``: gallery standardisation + sampling + exact check + outputs (``synthfr sample``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.samplers.config import SAMPLER_SHORTCUTS, SampleConfig

__all__ = ["sample_identities", "sample_stats", "sample"]

#: above this many identities the default check is a sampled estimate instead of the exact all-pairs pass
EXACT_CHECK_MAX = 250_000

#: ``standardize="auto"`` centres a gallery only when the mean of its unit embeddings is at least this long, i.e.
#: its faces sit in a narrow cap (dlib's descriptor: 0.92; unrelated faces then have mean cosine ≈ 0.85).
#: ArcFace-like galleries (mean cosine of unrelated faces ≈ 0, mean norm ≈ 0.1–0.3) are used as they are, as
#: the HyperFace and Vec2Face papers do.
CAP_MEAN_NORM = 0.5


def resolve_standardize(standardize: bool | str, gallery: np.ndarray | None) -> tuple[str, float | None]:
    """``(mode, gallery mean norm)`` with mode ``center`` or ``none`` for ``standardize`` = ``auto`` | ``center`` |
    ``none`` (or True/False)."""
    mode = {True: "center", False: "none"}.get(standardize, standardize) if isinstance(standardize, bool) \
        else str(standardize).lower()
    if mode not in ("auto", "center", "none"):
        raise ValueError(f"standardize must be auto, center or none, got {standardize!r}")
    if gallery is None:
        return "none", None
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    mnorm = float(np.linalg.norm(g.mean(0)))
    if mode == "auto":
        mode = "center" if mnorm >= CAP_MEAN_NORM else "none"
    return mode, mnorm


def sample_stats(x: np.ndarray, gallery: np.ndarray | None = None, check: str = "exact", sample_k: int = 10000,
                 seed: int = 0, device: str = "cpu", progress: bool = False,
                 neighbour_list_max: float | None = None, certified_max: float | None = None) -> dict[str, Any]:
    """``max_cos``/``mean_nn_cos`` of unit rows (exact all pairs, or ``sample_k`` random rows vs all) and, with a
    gallery, ``gallery_mean_nn_cos`` (mean cosine of each vector to its nearest gallery embedding).

    ``check='sampled'`` names its sample in ``check_sample`` and keeps its own maximum as ``sampled_max_cos``; with
    ``neighbour_list_max`` (the maximum over a sampler's neighbour list, measured on the same vectors) ``max_cos``
    is the larger of the two, still a lower bound of the all-pairs maximum (said so in ``check``).
    ``certified_max`` (a sampler's proven upper bound of the all-pairs maximum, e.g. the Verlet mode's) is kept
    as ``certified_max_cos`` beside them, whatever the check."""
    from synthfr.samplers.geometry import cross_nn, pair_stats, sampled_pair_stats, welch_bound

    t0 = time.perf_counter()
    out: dict[str, Any] = {"welch_bound": welch_bound(len(x), x.shape[1])}
    if check == "exact":
        st = pair_stats(x, device=device, progress=progress)
        out.update(max_cos=st["max_cos"], mean_nn_cos=st["mean_nn_cos"], check="exact all pairs",
                   max_pair=list(st["argmax"]) if st["argmax"] else None)
    elif check == "sampled":
        st = sampled_pair_stats(x, k=sample_k, seed=seed, device=device)
        out.update(max_cos=st["max_cos"], mean_nn_cos=st["mean_nn_cos"], sampled_max_cos=st["max_cos"],
                   check=f"sampled: {st['sampled']} random rows vs all rows",
                   check_sample=f"rows torch.randperm(N, generator=torch.Generator().manual_seed({int(seed)}))"
                                f"[:{st['sampled']}], each against all N rows, float32; max_cos is exact for "
                                "those rows and a lower bound of the all-pairs maximum")
        if neighbour_list_max is not None:
            # the sampler's neighbour list: every listed pair measured exactly (float32) on the final vectors
            out["neighbour_list_max_cos"] = float(neighbour_list_max)
            out["max_cos"] = max(st["max_cos"], float(neighbour_list_max))
            out["check"] += " + the sampler's neighbour-list maximum (max of both; a lower bound of the all-pairs max)"
    elif check == "none":
        out.update(max_cos=None, mean_nn_cos=None, check="none")
    else:
        raise ValueError(f"check must be 'exact', 'sampled' or 'none', got {check!r}")
    if certified_max is not None:
        out["certified_max_cos"] = float(certified_max)
        out["certified"] = "an upper bound of the all-pairs maximum, proven by the sampler (not measured here)"
    if gallery is not None:
        nn, _ = cross_nn(x, gallery, device=device)
        out["gallery_mean_nn_cos"] = float(nn.mean())
    out["check_seconds"] = time.perf_counter() - t0
    return out


def _out_paths(out: str | Path) -> dict[str, Path]:
    p = Path(out)
    if p.suffix != ".npy":
        raise ValueError(f"--out must name a .npy file (e.g. ids.npy), got {p}")
    stem = p.name[:-4]
    return {"ids": p, "std": p.with_name(stem + ".std.npy"), "space": p, "config": p.with_name(stem + ".config.yaml"),
            "stats": p.with_name(stem + ".stats.json")}


def sample_identities(method: str | SampleConfig, n: int | None = None, *, dim: int | None = None,
                      gallery: Any = None, labels: Any = None, standardize: bool | str = "auto", whiten: bool = False,
                      space: Any = None, seed: int = 0, out: str | Path | None = None,
                      json_path: str | Path | None = None, check: str = "auto", sample_k: int = 10000,
                      **sampler_options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Sample ``n`` identity vectors with sampler ``method``; or run the ``synthfr sample`` job of one
    :class:`~synthfr.samplers.config.SampleConfig` (``sample_identities(SampleConfig("hyperface", 100, dim=128))``,
    the same as :func:`sample`).

    With a gallery (array or ``.npy`` path of real embeddings of the target embedder), ``standardize`` says
    whether it is re-centred first: ``center`` (centred on its mean and renormalised), ``none`` (used as it is,
    as the papers use ArcFace galleries) or ``auto`` (default: ``center`` only when the gallery's faces sit in a
    narrow cap — mean of the unit embeddings at least ``CAP_MEAN_NORM`` = 0.5 long, like dlib's descriptor —
    else ``none``; ArcFace-like galleries are therefore not re-centred). ``whiten`` also whitens; ``space`` = an
    :class:`~synthfr.spaces.EmbeddingSpace` or saved-space path to reuse. Sampling and all statistics happen in
    that space; the returned vectors are mapped back to the embedder's own space.

    Outputs (with ``out=IDS.npy``): ``IDS.npy`` (embedder space, what generators take), ``IDS.std.npy``
    (standardised space, what the statistics describe), ``IDS.space.json`` + ``IDS.space.npz`` (the
    standardisation), ``IDS.config.yaml`` (resolved config, seed, versions) and ``IDS.stats.json``.

    ``check``: ``exact`` (all pairs, blockwise), ``sampled`` (``sample_k`` random rows against all), ``none``,
    or ``auto`` (exact up to 250,000 identities). Returns ``(vectors in embedder space, stats)``.
    """
    if isinstance(method, SampleConfig):
        if n is not None:
            raise TypeError("sample_identities(cfg): the SampleConfig holds every setting; pass nothing else")
        return sample(method)
    if n is None:
        raise TypeError("sample_identities(method, n, ...) needs n, the number of identities")
    from synthfr.samplers import create_sampler
    from synthfr.spaces import EmbeddingSpace
    from synthfr.utils.validate import check_out_dir, check_range

    check_range("--n", n, 1, integer=True)  # refused before anything is computed or written
    check_range("--dim", dim, 1, integer=True)
    check_range("--tau", sampler_options.get("tau"), -1.0, 1.0)
    check_range("--alpha", sampler_options.get("alpha"), 0.0)
    check_range("--batch-size", sampler_options.get("batch_size"), 1, integer=True)
    check_range("--iterations", sampler_options.get("iterations"), 0, integer=True)
    if isinstance(sampler_options.get("device"), str):
        from synthfr.utils.validate import check_device

        check_device(sampler_options["device"])
    if out is not None and Path(out).is_dir():
        from synthfr.errors import UsageError

        raise UsageError(f"--out {out} is a folder; name the .npy file to write")
    if out is not None:
        check_out_dir(Path(out).parent, "--out")
    t_all = time.perf_counter()
    gal = None
    gallery_path = None
    if gallery is not None:
        if isinstance(gallery, (str, Path)):
            gallery_path = str(gallery)
            gp = Path(gallery)
            if not gp.is_file():
                raise FileNotFoundError(f"gallery {gp} not found; embed real faces first with "
                                        "`synthfr embed DIR --embedder NAME --out EMB.npy`")
            from synthfr.utils.validate import load_vectors

            gal = load_vectors(gp, what="gallery embeddings")  # finite, non-zero rows, at least one
            if labels is None and method == "vigface":
                lp = gp.with_name(gp.name[:-4] + ".labels.npy")
                if lp.is_file():
                    labels = lp
        else:
            gal = np.asarray(gallery)
        gal = np.asarray(gal, dtype=np.float32)
        if gal.ndim != 2:
            raise ValueError(f"the gallery must be an N×D array of embeddings, got shape {gal.shape}")
        if dim is not None and dim != gal.shape[1]:
            raise ValueError(f"--dim {dim} does not match the gallery's dimension {gal.shape[1]}")
        dim = gal.shape[1]
    if isinstance(labels, (str, Path)):
        from synthfr.utils.validate import load_labels

        labels = load_labels(labels, n=None if gal is None else len(gal), rows_source=gallery_path)
    if dim is None:
        raise ValueError("give --dim D or --gallery EMB.npy")
    std_mode, gal_mean_norm = resolve_standardize(standardize, gal)
    if whiten and gal is not None and str(standardize).lower() == "auto":
        std_mode = "center"  # whitening is about the gallery's mean
    if space is not None:
        sp = EmbeddingSpace.load(space) if isinstance(space, (str, Path)) else space
        std_mode = "space file"
    elif gal is not None and (std_mode == "center" or whiten):
        sp = EmbeddingSpace.fit(gal, whiten=whiten, center=std_mode == "center", source=gallery_path)
    else:
        sp = EmbeddingSpace.identity(dim)
    gal_std = sp.to_standard(gal) if gal is not None else None

    # an explicit None is a setting (time_budget=None: run all iterations, reproducibly), never "the default"
    sampler = create_sampler(method, **sampler_options)
    t0 = time.perf_counter()
    x_std, st = sampler.sample(n, dim=dim, gallery=gal_std, seed=seed, labels=labels)
    seconds = time.perf_counter() - t0
    if check == "auto":
        check = "exact" if n <= EXACT_CHECK_MAX else "sampled"
    stats: dict[str, Any] = {"method": method, "n": int(n), "dim": int(dim), "seed": int(seed), "seconds": seconds}
    dev = str(getattr(sampler.config, "device", "cpu") or "cpu")
    stats.update(sample_stats(x_std, gal_std, check=check, sample_k=sample_k, seed=seed, device=dev,
                              progress=n >= 50000, neighbour_list_max=st.get("neighbour_list_max_cos"),
                              certified_max=st.get("certified_max_cos")))
    stats["space"] = "standardised" if not sp.is_identity else "identity (no standardisation)"
    stats["standardize"] = {"requested": str(standardize).lower(), "used": std_mode, "whiten": bool(whiten),
                            "gallery_mean_norm": gal_mean_norm, "cap_mean_norm": CAP_MEAN_NORM}
    stats["statistics_space"] = "all cosines are measured in the standardised space (IDS.std.npy)"
    if gallery_path:
        stats["gallery"] = gallery_path
        stats["gallery_size"] = int(len(gal))
    stats["sampler"] = {k: v for k, v in st.items() if k not in ("n", "dim", "seed", "method")}
    for k in ("rejected", "proposed", "rejected_vs_kept", "rejected_in_block", "tau"):
        if k in st:
            stats[k] = st[k]
    x = sp.from_standard(x_std)
    from synthfr.utils.validate import check_vectors

    # a sampler must never write NaN or zero identities (a degenerate gallery or space would give them)
    check_vectors(x, f"the {method} sampler's output", what="identity vectors")
    if out is not None:
        from synthfr.utils.io import write_json
        from synthfr.utils.provenance import write_provenance

        paths = _out_paths(out)
        paths["ids"].parent.mkdir(parents=True, exist_ok=True)
        np.save(paths["ids"], x)
        np.save(paths["std"], x_std)
        sp.save(paths["space"])
        write_provenance(paths["ids"].parent, config={"method": method, "n": n, "dim": dim, "gallery": gallery_path,
                                                      "standardize": std_mode, "whiten": whiten,
                                                      "sampler": st.get("config", {})},
                         seed=seed, name=paths["config"].name)
        stats["outputs"] = {k: str(v) for k, v in paths.items() if k not in ("space",)}
        stats["outputs"]["space"] = [str(p) for p in __import__("synthfr.spaces", fromlist=["space_paths"]).space_paths(paths["ids"])]
        write_json(paths["stats"], stats)
    stats["total_seconds"] = time.perf_counter() - t_all
    if json_path is not None:
        from synthfr.utils.io import write_json

        write_json(json_path, stats)
    return x, stats


def sample(cfg: SampleConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``synthfr sample`` job: :func:`sample_identities` with the settings of one :class:`SampleConfig`."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    opts = {k: getattr(cfg, k) for k in SAMPLER_SHORTCUTS if getattr(cfg, k) is not None}
    if not cfg.progress and cfg.method not in ("uniform", "vec2face"):  # those two draw no progress bar
        opts["progress"] = False
    opts.update(cfg.options or {})
    return sample_identities(cfg.method, cfg.n, dim=cfg.dim, gallery=cfg.gallery, labels=cfg.labels,
                             standardize=cfg.standardize, whiten=cfg.whiten, space=cfg.space, seed=cfg.seed,
                             out=cfg.out, json_path=cfg.json, check=cfg.check, **opts)
