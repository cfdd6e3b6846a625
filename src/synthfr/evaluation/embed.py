"""Embed a folder of faces or a benchmark ``.bin`` into an ``.npy`` matrix (what ``synthfr embed`` calls).

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

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.evaluation.config import EmbedConfig

__all__ = ["embed_path", "embed", "list_images", "sidecar_paths"]



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

    from synthfr.evaluation.evaluate import embed_images, resolve_embedder

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
        from synthfr.evaluation.evaluate import embed_benchmark

        uniq = embed_benchmark(model, bench, flip=flip, batch_size=batch_size, progress=progress)
        emb = uniq[bench.slots]
        lines = [str(i) for i in range(len(emb))]
        total = len(emb)
    else:
        from synthfr.data.benchmarks import IMAGE_SIZE, align_face, read_rgb

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
                aligned, reason = align_face(img)
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


def embed(cfg: EmbedConfig) -> dict[str, Any]:
    """The ``synthfr embed`` job: :func:`embed_path` with the settings of one :class:`EmbedConfig`."""
    from synthfr.utils.validate import check_range

    check_range("--batch-size", cfg.batch_size, 1, integer=True)
    return embed_path(cfg.input, cfg.embedder, cfg.out, batch_size=cfg.batch_size, flip=cfg.flip,
                      device=cfg.device, align=cfg.align, progress=cfg.progress, json_path=cfg.json)
