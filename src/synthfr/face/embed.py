"""Embedding faces: an embedder from a spec, batches of aligned faces, benchmarks, and a folder of faces or a
benchmark ``.bin`` into an ``.npy`` matrix (:func:`embed_path`, what ``synthfr embed`` calls).

Dataset quality, training (validation) and evaluation all embed through here.

Outputs, for ``--out emb.npy``:

* ``emb.npy``: float32 ``M×D`` unit rows;
* ``emb.paths.txt``: one line per row: the image path relative to INPUT (``/`` separators), or for a ``.bin`` the
  index of the image inside the file (``0 .. 2·pairs-1``);
* for a folder that is an identity tree (every image at ``<identity>/<image>``): ``emb.labels.npy`` (int64 row
  label) and ``emb.classes.txt`` (label ``i`` is line ``i``, sorted identity names).

Folder images that are not 112×112 are aligned with :mod:`synthfr.face.align`; images that cannot be read or
aligned are skipped and listed in the returned ``failed`` list (``{"path", "reason"}``).
"""
from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["resolve_embedder", "embed_images", "embed_benchmark", "embed_path", "list_images", "sidecar_paths"]

def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def resolve_embedder(embedder: Any = None, checkpoint: str | os.PathLike | None = None,
                     device: str | None = "auto", **kwargs: Any) -> Any:
    """An embedder object from a spec ``NAME[:key=value,...]``, an existing object, or a synthfr run dir
    (``checkpoint``, the ``checkpoint`` embedder)."""
    from synthfr.registry import create_from_spec

    if (embedder is None) == (checkpoint is None):
        raise ValueError("give exactly one of an embedder (--embedder NAME) or a checkpoint (--checkpoint DIR)")
    if checkpoint is not None:
        embedder, kwargs = "checkpoint", {**kwargs, "path": str(checkpoint)}
    elif not isinstance(embedder, str) and not hasattr(embedder, "embed"):
        raise ValueError(f"{embedder!r} is not an embedder (it has no embed method)")
    return create_from_spec("embedder", embedder, offer={"device": device} if device is not None else None,
                            **kwargs)


def _embed_call(embedder: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    if _accepts(embedder.embed, "batch_size"):
        out = embedder.embed(images, batch_size=batch_size)
    else:
        out = embedder.embed(images)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(images):
        raise ValueError(f"embedder {getattr(embedder, 'name', embedder)!r} returned shape {out.shape} for "
                         f"{len(images)} images; embedders return N×D")
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def embed_images(embedder: Any, images: np.ndarray, flip: bool = False, batch_size: int = 64) -> np.ndarray:
    """Embed aligned ``uint8 N×112×112×3`` faces; with ``flip``, add the mirror image's embedding and
    re-normalise (flip test-time augmentation)."""
    e = _embed_call(embedder, images, batch_size)
    if flip:
        e = e + _embed_call(embedder, np.ascontiguousarray(images[:, :, ::-1]), batch_size)
    return _normalise(e)


def embed_benchmark(embedder: Any, benchmark: Any, flip: bool = False, batch_size: int = 64,
                    progress: bool = True) -> np.ndarray:
    """Embeddings of every distinct image of a :class:`~synthfr.data.benchmarks.Benchmark` (``num_images×D``)."""
    from tqdm.auto import tqdm

    chunks: list[np.ndarray] = []
    decode_batch = max(batch_size, 64)
    with tqdm(total=benchmark.num_images, desc=f"embed {benchmark.name}", unit="img", disable=not progress,
              leave=False) as bar:
        for _, imgs in benchmark.iter_batches(decode_batch):
            chunks.append(embed_images(embedder, imgs, flip=flip, batch_size=batch_size))
            bar.update(len(imgs))
    return np.concatenate(chunks) if chunks else np.zeros((0, getattr(embedder, "dim", 0)), np.float32)




def list_images(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped)."""
    from synthfr.utils.images import IMAGE_EXTENSIONS
    from synthfr.utils.paths import walk_files

    return walk_files(root, IMAGE_EXTENSIONS)  # symlinked folders are followed (the rule of every image source)


def sidecar_paths(out: str | os.PathLike) -> dict[str, Path]:
    """``emb.npy`` -> ``{"paths": emb.paths.txt, "labels": emb.labels.npy, "classes": emb.classes.txt}``."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npy") else out.name
    return {"paths": out.with_name(stem + ".paths.txt"), "labels": out.with_name(stem + ".labels.npy"),
            "classes": out.with_name(stem + ".classes.txt")}


def embed_path(input: str | os.PathLike, embedder: Any, out: str | os.PathLike, batch_size: int = 64,
               flip: bool = False, device: str | None = "auto", align: str = "auto", progress: bool = True,
               json_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Embed ``input`` (a folder of faces, recursive, or an insightface ``.bin``) with ``embedder`` (a registered
    name or an embedder object) and write ``out`` (``.npy``) plus its sidecar files (see module doc).

    ``align``: ``"auto"`` aligns images that are not 112×112, ``"never"`` lists them as failures, ``"always"``
    aligns every image. Returns ``{"input", "images", "embedded", "failed", "dim", "embedder", "out", "paths",
    ["labels", "classes"], "seconds"}`` (also written to ``json_path``).
    """
    from tqdm.auto import tqdm

    from synthfr.errors import UsageError
    from synthfr.utils.validate import check_device, check_range

    src = Path(input)
    if not src.exists():
        raise FileNotFoundError(f"input {src} not found: pass a folder of face images or an insightface .bin")
    out = Path(out)
    if out.suffix != ".npy":
        raise UsageError(f"--out must name a .npy file, got {out}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a .npy file")
    check_range("--batch-size", batch_size, 1, integer=True)
    check_choice = ("auto", "always", "never")
    if align not in check_choice:
        raise UsageError(f"--align must be one of {', '.join(check_choice)}, got {align!r}")
    if isinstance(device, str):
        check_device(device)
    model = resolve_embedder(embedder, device=device)
    name = embedder if isinstance(embedder, str) else getattr(model, "name", type(model).__name__)
    side = sidecar_paths(out)
    t0 = time.perf_counter()
    failed: list[dict[str, str]] = []
    result: dict[str, Any] = {"input": str(src), "embedder": name, "out": str(out), "paths": str(side["paths"])}

    if src.is_file():
        from synthfr.data.benchmarks import load_bin

        bench = load_bin(src)
        uniq = embed_benchmark(model, bench, flip=flip, batch_size=batch_size, progress=progress)
        emb = uniq[bench.slots]
        lines = [str(i) for i in range(len(emb))]
        total = len(emb)
    else:
        from synthfr.face.load import IMAGE_SIZE, detect_align, read_rgb

        files = list_images(src)
        if not files:
            from synthfr.errors import InputError

            raise InputError(f"no images (.jpg/.png/...) found under {src}; point it at a folder of face images")
        total = len(files)
        rows: list[np.ndarray] = []
        kept: list[Path] = []
        batch: list[np.ndarray] = []
        batch_paths: list[Path] = []

        def flush() -> None:
            if batch:
                rows.append(embed_images(model, np.stack(batch), flip=flip, batch_size=batch_size))
                kept.extend(batch_paths)
                batch.clear()
                batch_paths.clear()

        for p in tqdm(files, desc=f"embed {src.name}", unit="img", disable=not progress, leave=False):
            rel = p.relative_to(src).as_posix()
            try:
                img = read_rgb(p)
            except ValueError as e:
                failed.append({"path": rel, "reason": f"unreadable: {e}"})
                continue
            if align == "always" or (img.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE)):
                if align == "never":
                    failed.append({"path": rel, "reason": f"{img.shape[1]}x{img.shape[0]}, not an aligned "
                                                          "112x112 face (align='never')"})
                    continue
                aligned, reason = detect_align(img)
                if aligned is None:
                    failed.append({"path": rel, "reason": reason or "alignment failed"})
                    continue
                img = aligned
            batch.append(img)
            batch_paths.append(p)
            if len(batch) >= max(batch_size, 64):
                flush()
        flush()
        dim = int(getattr(model, "dim", 0) or 0)
        emb = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
        rels = [p.relative_to(src) for p in kept]
        lines = [r.as_posix() for r in rels]
        all_rels = [p.relative_to(src) for p in files]
        if all(len(r.parts) == 2 for r in all_rels):
            classes = sorted({r.parts[0] for r in all_rels})
            cidx = {c: i for i, c in enumerate(classes)}
            labels = np.array([cidx[r.parts[0]] for r in rels], dtype=np.int64)
            side["labels"].parent.mkdir(parents=True, exist_ok=True)
            np.save(side["labels"], labels)
            side["classes"].write_text("".join(c + "\n" for c in classes))
            result["labels"] = str(side["labels"])
            result["classes"] = str(side["classes"])

    if len(emb) == 0:  # every image failed: refuse rather than write a 0-row array
        from synthfr.errors import InputError

        why = "; ".join(sorted({f["reason"].split(":")[0] for f in failed}))[:200]
        raise InputError(f"{src}: 0 of {total} images could be embedded ({why}); nothing written to {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb.astype(np.float32))
    side["paths"].write_text("".join(ln + "\n" for ln in lines))
    result.update({"images": int(total), "embedded": int(len(emb)), "failed": failed,
                   "dim": int(emb.shape[1]) if emb.ndim == 2 else 0, "flip": bool(flip),
                   "seconds": time.perf_counter() - t0})
    if json_path is not None:
        from synthfr.utils.io import write_json

        write_json(json_path, result)
    return result
