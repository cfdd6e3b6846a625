"""Run the dataset-quality metrics on labelled embeddings (what ``synthfr quality`` calls).

* :func:`evaluate_quality` — metrics on in-memory embeddings + labels;
* :func:`quality_from_dataset` — the same from files: an image folder embedded with a registered embedder, or
  saved ``E.npy`` (+ labels); this is the whole of ``synthfr quality`` except writing JSON/HTML.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthfr.quality.config import QualityConfig

__all__ = ["evaluate_quality", "quality_from_dataset", "measure_quality", "load_embeddings", "DEFAULT_METRICS"]

DEFAULT_METRICS = ("separability", "noise", "consistency", "verification", "leakage", "face_quality", "frechet",
                   "prdc", "identity_map", "worst_identities")
#: what the judge networks measure beside the primary one (identity figures and the distribution metrics)
JUDGE_METRICS = ("separability", "consistency", "verification", "leakage", "face_quality", "frechet", "prdc")
#: the identity figures also measured on a labelled reference, as a real-data baseline
REFERENCE_METRICS = ("separability", "consistency", "verification", "face_quality")


def load_embeddings(path: str | Path, labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``E.npy`` (N×D) and labels (``L.npy``; default ``E.labels.npy`` beside it when present)."""
    from synthfr.utils.validate import load_labels, load_vectors

    p = Path(path)
    e = load_vectors(p, what="embeddings", hint="write one with `synthfr embed DIR --out E.npy`")
    if labels is None:
        cand = p.with_name(p.name[:-4] + ".labels.npy") if p.name.endswith(".npy") else None
        if cand is not None and cand.is_file():
            labels = cand
    lab = None
    if labels is not None:
        lab = load_labels(labels, n=len(e), rows_source=p)
    return e.astype(np.float32), lab


def evaluate_quality(embeddings: np.ndarray, labels: np.ndarray, *, reference: np.ndarray | None = None,
                     reference_labels: np.ndarray | None = None, space: Any = "fit",
                     metrics: Sequence[str] | None = None, options: dict[str, dict[str, Any]] | None = None,
                     clean_out: str | Path | None = None) -> dict[str, Any]:
    """All requested metrics on ``embeddings`` with ``labels``; returns ``{"space": ..., metric: {...}}``.

    Args:
        space: ``"fit"`` (centre on these embeddings' mean, the default), ``None``/``"none"`` (use as they are),
            an :class:`~synthfr.spaces.EmbeddingSpace`, or the path of a saved space. Thresholds (0.3/0.4/0.7)
            are meant for a standardised space. The reference set is mapped into the same space.
        metrics: registered metric names (default: all of :data:`DEFAULT_METRICS`).
        options: per-metric keyword options, e.g. ``{"leakage": {"threshold": 0.6}}``.
        clean_out: with a reference, write the embeddings/labels without leaked identities to
            ``clean_out`` (``.npy``) and ``clean_out.labels.npy``.
    """
    from synthfr.quality import REGISTRY
    from synthfr.spaces import EmbeddingSpace

    if labels is None:
        raise ValueError("quality metrics need identity labels: pass --labels L.npy (one int per row)")
    from synthfr.utils.validate import check_labels, check_vectors

    e = check_vectors(embeddings, "the embeddings", what="embeddings")  # finite, non-zero rows, N >= 1
    lab = check_labels(labels, "the labels", n=len(e), rows_source="the embeddings")
    raw = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    raw_ref = None
    if reference is not None:
        from synthfr.errors import InputError

        raw_ref = np.asarray(reference, dtype=np.float32)
        if raw_ref.ndim != 2 or raw_ref.shape[1] != e.shape[1]:
            dim = f"{raw_ref.shape[1]}-D" if raw_ref.ndim == 2 else f"of shape {raw_ref.shape}"
            raise InputError(f"reference embeddings are {dim} but the dataset's are {e.shape[1]}-D; embed both "
                             "with the same network (--embedder)")
        raw_ref = raw_ref / np.maximum(np.linalg.norm(raw_ref, axis=1, keepdims=True), 1e-12)
    if isinstance(space, (str, Path)) and str(space) not in ("fit", "none"):
        space = EmbeddingSpace.load(space)
    if space == "fit":
        space = EmbeddingSpace.fit(e)
    elif space in (None, "none"):
        space = None
    if space is not None:
        e = space.to_standard(e)
        if reference is not None:
            reference = space.to_standard(np.asarray(reference, dtype=np.float32))
    out: dict[str, Any] = {"n_embeddings": int(len(e)), "n_identities": int(len(np.unique(lab))),
                           "dim": int(e.shape[1]),
                           "space": space.to_json() if space is not None else {"kind": "none"}}
    opts = options or {}
    timings = {}
    for name in metrics or DEFAULT_METRICS:
        fn = REGISTRY.get(name)
        kw = dict(opts.get(name, {}))
        # distribution metrics (Fréchet, PRDC) use the network's own unit vectors, so that datasets measured
        # against one reference are comparable (a fitted space would differ per dataset)
        on_raw = getattr(fn, "raw_space", False)
        kw.update(reference=raw_ref if on_raw else reference, reference_labels=reference_labels)
        t0 = time.perf_counter()
        out[name] = fn(raw if on_raw else e, lab, **kw)
        timings[name] = time.perf_counter() - t0
    out["seconds"] = timings
    if clean_out is not None and isinstance(out.get("leakage"), dict) and "leaked_identities" in out["leakage"]:
        from synthfr.quality.leakage import clean_leaked

        ce, cl, mask = clean_leaked(np.asarray(embeddings, dtype=np.float32), lab, out["leakage"]["leaked_identities"])
        cp = Path(clean_out)
        cp.parent.mkdir(parents=True, exist_ok=True)
        np.save(cp, ce)
        np.save(cp.with_name(cp.name[:-4] + ".labels.npy" if cp.name.endswith(".npy") else cp.name + ".labels.npy"), cl)
        out["cleaned"] = {"path": str(cp), "rows_kept": int(mask.sum()), "rows_dropped": int((~mask).sum())}
    return out


def quality_from_dataset(dataset: str | Path | None = None, *, embedder: Any = None, judges: Any = "auto",
                         embeddings: str | Path | None = None, labels: str | Path | None = None,
                         embeddings_out: str | Path | None = None, reference: str | Path | None = None,
                         reference_labels: str | Path | None = None, leak_threshold: float = 0.5, top_k: int = 20,
                         clean_out: str | Path | None = None, space: Any = "fit",
                         metrics: Sequence[str] | str | None = None, max_pairs: int = 200000, prdc_k: int = 5,
                         attributes: bool = True, attribute_images: int = 2000, reuse_embeddings: bool = False,
                         device: str | None = "auto",
                         seed: int = 0, progress: bool = True,
                         options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Dataset quality from files (``synthfr quality`` without the JSON/HTML writing).

    Give either ``dataset`` (an image folder ``<identity>/<image>``) with ``embedder`` (a registered embedder
    spec, see ``synthfr list embedder``, or an embedder object), or ``embeddings`` (``E.npy``, N×D) with
    ``labels`` (``L.npy``; default ``E.labels.npy`` beside it).

    Args:
        judges: more networks measuring the same folder, side by side with ``embedder`` (identity metrics,
            Fréchet distance, PRDC, face quality): ``"auto"`` (default: ``dlib-torch`` and ``sface`` when ``sface``
            is registered), ``"none"``, or names/objects (see :func:`synthfr.quality.networks.resolve_networks`).
            Needs ``dataset``.
        embeddings_out: where the folder's embeddings are written (default ``./quality_embeddings.npy``; the
            judges' and the reference's beside it as ``quality_embeddings[.reference].NAME.npy``).
        reference: real faces to compare with: an image folder (``<identity>/<image>`` or flat; embedded with
            every network, needs ``dataset``) or embeddings ``R.npy`` of ``embedder``'s space (then only that
            space is compared). Used by leakage, Fréchet distance, PRDC, the identity map and, for a folder, the
            attribute comparison; a labelled reference also gets its own identity figures as a baseline.
        reference_labels: labels of an ``R.npy`` reference (identity centres for leakage and the map).
        leak_threshold, top_k: leakage options (cosine above which an identity leaks; pairs listed).
        clean_out: with a reference, write the embeddings + labels without the leaked identities here.
        space: ``"fit"`` (default), ``"none"``/``None``, a saved space path or an ``EmbeddingSpace``
            (see :func:`evaluate_quality`); judges and the reference baseline use ``"fit"`` (or ``"none"``).
        metrics: subset of :data:`DEFAULT_METRICS` (a list or a comma-separated string); default all.
        max_pairs: genuine/impostor pairs at most for ``verification``. prdc_k: k of the k-NN manifolds.
        attributes: measure per-image attributes (pose, expression, illumination, sharpness, detection) of the
            dataset folder and a reference folder; ``attribute_images`` caps the faces measured per set.
        reuse_embeddings: load folder embeddings written by an earlier run for the same folder, network name
            and files instead of embedding again (see :func:`synthfr.quality.networks.embed_folder`).
        device: torch device of the embedder. seed: seed of pair/curve sampling. progress: tqdm bar.
        options: extra per-metric keyword options, merged over the ones above.

    Returns:
        :func:`evaluate_quality`'s dict (the primary network) plus ``"source"``, ``"embedder"``, ``"networks"``
        (headline figures per network, dataset and reference side by side), ``"judges"`` (the other networks'
        full results), ``"reference"``, ``"images"`` and ``"attributes"`` where they apply.
    """
    from synthfr.errors import UsageError
    from synthfr.quality.networks import embed_folder, headline, network_name, resolve_networks, side_path

    if bool(dataset) == bool(embeddings):
        raise ValueError("give either DATASET_DIR --embedder NAME or --embeddings E.npy --labels L.npy")
    ref_dir = False
    if reference is not None:
        if not Path(reference).exists():
            raise FileNotFoundError(f"reference {reference} not found: give a folder of real faces or R.npy embeddings")
        ref_dir = Path(reference).is_dir()
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    wanted = list(metrics or DEFAULT_METRICS)
    opts: dict[str, dict[str, Any]] = {"leakage": {"threshold": leak_threshold, "top_k": top_k},
                                       "verification": {"max_pairs": max_pairs, "seed": seed},
                                       "separability": {"seed": seed}, "prdc": {"k": prdc_k, "seed": seed},
                                       "frechet": {"seed": seed}, "face_quality": {"seed": seed},
                                       "identity_map": {"seed": seed}}
    for name, kw in (options or {}).items():
        opts[name] = {**opts.get(name, {}), **kw}
    sets: dict[str, dict[str, Any]] = {}
    refs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if dataset:
        if not embedder:
            raise ValueError("DATASET_DIR needs --embedder NAME (see `synthfr list embedder`)")
        eout = Path(embeddings_out) if embeddings_out else Path("quality_embeddings.npy").resolve()
        nets = resolve_networks(embedder, judges)
        for i, net in enumerate(nets):
            name = network_name(net)
            sets[name] = embed_folder(dataset, net, eout if i == 0 else side_path(eout, name), device=device,
                                      progress=progress, reuse=reuse_embeddings)
            if sets[name]["labels"] is None:
                raise ValueError(f"{dataset} is not an identity tree (<identity>/<image>); quality needs labels")
            if ref_dir:
                r = embed_folder(reference, net, side_path(eout, "reference", name), device=device,
                                 progress=progress, what="reference", reuse=reuse_embeddings)
                refs[name] = (r["embeddings"], r["labels"])
        source = f"{dataset} embedded with {', '.join(sets)} -> {eout}"
    else:
        if judges not in (None, "auto", "none", "", [], ()):
            raise UsageError("judge networks embed images: give DATASET_DIR --embedder NAME (not --embeddings)")
        if ref_dir:
            raise UsageError(f"reference {reference} is a folder, which needs DATASET_DIR --embedder NAME to embed; "
                             "with --embeddings E.npy give the reference as R.npy of the same network")
        emb, lab = load_embeddings(embeddings, labels)
        sets["embeddings"] = {"embeddings": emb, "labels": lab}
        source = str(embeddings)
    names = list(sets)
    if reference is not None and not ref_dir:
        refs[names[0]] = load_embeddings(reference, reference_labels)
    q: dict[str, Any] = {}
    judged: dict[str, Any] = {}
    judge_space = "none" if space in (None, "none") else "fit"
    for i, name in enumerate(names):
        ref, rlab = refs.get(name, (None, None))
        res = evaluate_quality(sets[name]["embeddings"], sets[name]["labels"], reference=ref, reference_labels=rlab,
                               space=space if i == 0 else judge_space, options=opts,
                               metrics=wanted if i == 0 else [m for m in wanted if m in JUDGE_METRICS],
                               clean_out=clean_out if i == 0 else None)
        if i == 0:
            q = res
        else:
            judged[name] = res
    q["source"] = source
    q["embedder"] = names[0]
    q["judges"] = judged
    ref_base: dict[str, Any] = {}
    for name, (ref, rlab) in refs.items():  # the real set's own identity figures, as a baseline
        base = [m for m in wanted if m in REFERENCE_METRICS]
        if rlab is not None and len(np.unique(rlab)) > 1 and base:
            ref_base[name] = evaluate_quality(ref, rlab, space=judge_space, metrics=base, options=opts)
    if reference is not None:
        r0, l0 = next(iter(refs.values()))
        q["reference"] = {"source": str(reference), "kind": "folder" if ref_dir else "embeddings",
                          "faces": int(len(r0)), "identities": int(len(np.unique(l0))) if l0 is not None else None,
                          "networks": ref_base}
    q["networks"] = {name: {"dataset": headline(q if name == names[0] else judged[name]),
                            "reference": headline(ref_base.get(name))} for name in names}
    if dataset:
        first = sets[names[0]]
        q["images"] = {"root": first["root"], "classes": first["classes"], "not_aligned": first["failed"][:100],
                       "not_aligned_count": len(first["failed"])}
        _name_identities(q, first)
        if attributes:
            from synthfr.quality.attributes_report import folder_attributes

            q["attributes"] = folder_attributes(dataset, reference if ref_dir else None, max_images=attribute_images,
                                                seed=seed, progress=progress)
    return q


def _name_identities(q: dict[str, Any], first: dict[str, Any]) -> None:
    """Folder names beside integer labels (worst identities) and image paths beside row indices (lowest quality)."""
    classes, paths = first["classes"], first["paths"]
    for entry in (q.get("worst_identities") or {}).get("lowest_consistency", []):
        entry["name"] = classes[entry["identity"]]
    for entry in (q.get("worst_identities") or {}).get("lowest_separability", []):
        entry["name"], entry["nearest_name"] = classes[entry["identity"]], classes[entry["nearest"]]
    fq = q.get("face_quality")
    if isinstance(fq, dict) and "lowest_rows" in fq:
        fq["lowest_paths"] = [paths[i] for i in fq["lowest_rows"]]


def measure_quality(cfg: QualityConfig, log: Any = None) -> dict[str, Any]:
    """The ``synthfr quality`` job: :func:`quality_from_dataset` with the settings of one
    :class:`~synthfr.quality.config.QualityConfig`; writes ``cfg.json`` and, for a dataset folder made by
    ``synthfr generate``, its figures (``quality.<embedder>.json``) and card (``log`` is told where).
    ``cfg.html`` is written by the command (reports sit above the metrics)."""
    eout = cfg.embeddings_out
    if cfg.dataset and not eout:  # default: beside the JSON/HTML output
        eout = Path(cfg.json or cfg.html or "quality.json").resolve().parent / "quality_embeddings.npy"
    q = quality_from_dataset(
        cfg.dataset, embedder=cfg.embedder, judges=cfg.judges, embeddings=cfg.embeddings, labels=cfg.labels,
        embeddings_out=eout, reference=cfg.reference, reference_labels=cfg.reference_labels,
        leak_threshold=cfg.leak_threshold, top_k=cfg.top_k, clean_out=cfg.clean_out, space=cfg.space,
        metrics=cfg.metrics, max_pairs=cfg.max_pairs, prdc_k=cfg.prdc_k, attributes=cfg.attributes,
        attribute_images=cfg.attribute_images, reuse_embeddings=cfg.reuse_embeddings, device=cfg.device,
        seed=cfg.seed, progress=cfg.progress)
    from synthfr.utils.io import write_json

    if cfg.json:
        write_json(cfg.json, q)
    if cfg.dataset and cfg.embedder:  # a dataset folder of `synthfr generate` keeps the figures, its card shows them
        from synthfr.data.card import dataset_root, quality_path, write_dataset_card

        root = dataset_root(cfg.dataset)
        if root is not None:
            write_json(quality_path(root, cfg.embedder), q)
            card = write_dataset_card(root)
            if log is not None:
                log(f"dataset card: {card}")
    return q
