"""Combine datasets of different runs (or settings, or real ImageFolders) into one dataset folder.

Two modes (``synthfr combine``; ``synthfr merge`` stays the shard merger of one run):

* **concat** (default): the identities of every source, one after the other. Source ``s``'s identity rows,
  labels and soft-label ids are shifted by the identity rows of the sources before it, so classes never
  collide; images go to ``images/<new row>/<k>.<ext>``. ``identities.npy`` is the concatenation when every
  source has one of the same width.
* **replace** (Vec2Face's extreme-pose set, "30 of 50"): two sources over the *same* identities (same rows,
  same ``identities.npy``). For each identity, ``n`` of the base dataset's ``K`` images are replaced by ``n``
  images of that identity from the second dataset. Which slots: ``pick="random"`` (default) draws the base
  slots and the replacement images without replacement from a generator seeded by ``(seed, identity)``;
  ``pick="last"`` replaces the base's last ``n`` slots with the second dataset's first ``n`` images.

Every manifest line keeps its source's fields (seed, variation, params, generator ...) and gains ``source``
(index into the sources) and ``source_index`` (its index ``k`` there); ``label``/``identity``/``index``/``path``
are the combined dataset's. ``config.yaml`` records the mode, its parameters and, per source, the path, counts,
the sha256 of its manifest and its whole ``config.yaml``; ``README.md`` describes the combination and repeats
each source's dataset card (licences are inherited). A source without ``manifest.jsonl`` is read as a
labelled ImageFolder (``<class>/<image>``; e.g. real aligned faces), one identity per class.

* **counts** (``counts=``, with either mode or a single dataset): keep only the first ``n_i`` images (by index)
  of each identity of the result, e.g. a long-tailed set with the same identities as a balanced one (generate
  with the largest count, then subset: image ``k`` of identity ``i`` has the same seed at any count), or a few
  real identities × images. ``counts`` is a list (one count per identity row of the result) or a mapping from
  identity folder name to count (identities not named get 0). Identities left with no image are dropped and the
  rest renumbered in order, so no class is empty; a kept image whose soft label names a dropped identity is an
  error.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthfr.utils.io import atomic_write_text, file_sha256
from synthfr.utils.seeds import derive_seed

__all__ = ["combine_datasets", "read_counts"]


def _read_source(d: Path) -> dict[str, Any]:
    """Records grouped by identity row, the number of rows, the config and identities of one source."""
    import yaml

    from synthfr.data.imagefolder import scan_image_folder
    from synthfr.data.manifest import iter_manifest

    if not d.is_dir():
        raise FileNotFoundError(f"dataset {d} not found: pass dataset folders written by `synthfr generate` "
                                "(or labelled ImageFolders)")
    if any(d.glob("*.rec")) and not (d / "images").is_dir():
        raise ValueError(f"{d} is packed as .rec; combine folder datasets (generate with --format folder), then "
                         "pack the result with `synthfr combine ... --format rec`")
    by_row: dict[int, list[dict]] = {}
    man = d / "manifest.jsonl"
    if man.is_file():
        for r in iter_manifest(man):
            by_row.setdefault(int(r["identity"]), []).append(r)
        sha = file_sha256(man)
    else:
        paths, labels, _ = scan_image_folder(d)
        for p, c in zip(paths, labels):
            by_row.setdefault(c, []).append({"identity": c, "index": len(by_row.get(c, [])), "path": p, "label": c})
        sha = None
    for lst in by_row.values():
        lst.sort(key=lambda r: int(r["index"]))
    cfg = yaml.safe_load((d / "config.yaml").read_text()) if (d / "config.yaml").is_file() else None
    ids = np.load(d / "identities.npy") if (d / "identities.npy").is_file() else None
    rows = int(ids.shape[0]) if ids is not None else 0
    used = [int(x) for lst in by_row.values() for r in lst
            for x in [r["identity"], r.get("label", r["identity"]), *(r.get("soft_label") or [])[:-1]]]
    rows = max(rows, max(used, default=-1) + 1)
    n_img = sum(len(v) for v in by_row.values())
    return {"path": d, "by_row": by_row, "rows": rows, "config": cfg, "ids": ids, "manifest_sha256": sha,
            "images": n_img}


def _place(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def _record(r: dict, *, row: int, k: int, path: str, label: int, shift: int, source: int) -> dict:
    rec = dict(r)
    rec.update(identity=row, index=k, path=path, label=label)
    if rec.get("soft_label") is not None:
        a, b, w = rec["soft_label"][-3:]
        rec["soft_label"] = [int(a) + shift, int(b) + shift, float(w)]
    rec["source"], rec["source_index"] = source, int(r["index"])
    return rec


def _write_card(out: Path, doc: dict, srcs: list[dict]) -> None:
    """README.md: what was combined, then each source's own card (licences and provenance are inherited)."""
    import yaml

    c = doc["combined"]
    how = (f"per identity, {c['replace']['n']} images of source 0 replaced by images of the same identity from "
           f"source 1 (pick {c['replace']['pick']}, seed {c['replace']['seed']})" if c["mode"] == "replace"
           else "the identities of each source one after the other (rows and labels shifted, classes never collide)")
    if "counts" in c:
        n = c["counts"]["images_per_identity"]
        how += (f"{'; then' if len(srcs) > 1 else ' (one source:'} the first images of each identity kept by a count "
                f"per identity ({min(n, default=0)}-{max(n, default=0)} images, {len(n)} identities; empty identities "
                f"dropped and the rest renumbered{')' if len(srcs) == 1 else ''}")
    front = {"pretty_name": f"synthfr combined dataset ({c['mode']}): {doc['identities']['rows']} identities, "
                            f"{doc['images']} images",
             "license": "other", "license_name": "inherited-from-sources",
             "tags": ["synthetic", "face-recognition", "synthfr"], "task_categories": ["image-classification"]}
    parts = ["---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n",
             "# Combined dataset (`synthfr combine`)\n",
             f"Made from {len(srcs)} datasets: {how}. Every manifest line keeps its source's fields and gains "
             "`source` / `source_index`; `config.yaml` (`combined:`) holds each source's full config. The licence "
             "and terms of every source apply (their cards follow).\n"]
    for i, s in enumerate(srcs):
        parts.append(f"\n## Source {i}: `{s['path'].name}` ({s['rows']} identities, {s['images']} images)\n")
        card = s["path"] / "README.md"
        if card.is_file():
            text = card.read_text()
            if text.startswith("---"):  # drop the source's front matter, keep its body
                end = text.find("\n---", 3)
                text = text[end + 4:] if end >= 0 else text
            parts.append(re.sub(r"(?m)^(#+) ", r"##\1 ", text).lstrip("\n"))  # its headings below "Source i"
        else:
            parts.append("No dataset card (e.g. a real ImageFolder): its own terms apply.\n")
    (out / "README.md").write_text("\n".join(parts))


def read_counts(spec: str | Path | Sequence[int] | dict[str, int]) -> list[int] | dict[str, int]:
    """Per-identity image counts: a list, a ``{folder name: count}`` mapping, or a JSON file holding either."""
    import json

    if isinstance(spec, (str, Path)):
        p = Path(spec).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"counts file {p} not found: give a JSON list (one count per identity) or a JSON "
                                    "object {identity folder: count}")
        try:
            spec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"counts file {p} is not JSON ({e.msg}, line {e.lineno}); write a list of integers or "
                             "an object {identity folder: count}") from None
    if isinstance(spec, dict):
        out_d = {str(k): v for k, v in spec.items()}
        vals = list(out_d.values())
    elif isinstance(spec, (list, tuple)):
        out_d, vals = None, list(spec)
    else:
        raise ValueError(f"counts must be a list of integers or a mapping {{identity folder: count}}, got "
                         f"{type(spec).__name__}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in vals):
        raise ValueError("counts must be integers >= 0 (images kept per identity)")
    return out_d if out_d is not None else [int(v) for v in vals]


def _per_row(lines: list[dict], rows: int) -> list[int]:
    n = [0] * rows
    for r in lines:
        n[int(r["identity"])] += 1
    return n


def _apply_counts(lines: list[dict], copies: list[tuple[Path, Path]], rows: int, out: Path,
                  counts: list[int] | dict[str, int]) -> tuple[list[dict], list[tuple[Path, Path]], list[int]]:
    """Keep the first ``counts[row]`` images of each identity; drop empty identities and renumber the rest."""
    from synthfr.data.manifest import identity_dirname

    by_row: dict[int, list[int]] = {}
    for j, r in enumerate(lines):
        by_row.setdefault(int(r["identity"]), []).append(j)
    if isinstance(counts, dict):  # by the identity's folder name in its source (e.g. a CelebA id, "000012")
        names = {row: copies[js[0]][0].parent.name for row, js in by_row.items()}
        unknown = sorted(set(counts) - set(names.values()))
        if unknown:
            raise ValueError(f"counts names {len(unknown)} identities that are not in the datasets (e.g. "
                             f"{unknown[0]!r}); use the identity folder names of the sources")
        want = [int(counts.get(names.get(row, ""), 0)) for row in range(rows)]
    else:
        if len(counts) != rows:
            raise ValueError(f"counts has {len(counts)} entries but the result has {rows} identities; give one "
                             "count per identity")
        want = [int(c) for c in counts]
    for row, js in sorted(by_row.items()):
        if want[row] > len(js):
            raise ValueError(f"identity {row} has {len(js)} images, counts asks for {want[row]}; generate more "
                             "images per identity or lower the count")
    keep = [row for row in range(rows) if want[row] > 0 and by_row.get(row)]
    new_of = {row: i for i, row in enumerate(keep)}
    out_lines: list[dict] = []
    out_copies: list[tuple[Path, Path]] = []
    for row in keep:
        for j in sorted(by_row[row], key=lambda j: int(lines[j]["index"]))[:want[row]]:
            r = dict(lines[j])
            if r.get("soft_label") is not None:
                ia, ib, w = r["soft_label"]
                if int(ia) not in new_of or int(ib) not in new_of:
                    gone = ib if int(ia) in new_of else ia
                    raise ValueError(f"image {r['path']} has a soft label naming identity {gone}, which counts drops;"
                                     " keep at least one image of every identity a kept image is mixed with")
                r["soft_label"] = [new_of[int(ia)], new_of[int(ib)], float(w)]
            new = new_of[row]
            rel = f"images/{identity_dirname(new, len(keep))}/{r['index']}{Path(r['path']).suffix}"
            r.update(identity=new, label=new, path=rel)
            out_lines.append(r)
            out_copies.append((copies[j][0], out / rel))
    return out_lines, out_copies, keep


def combine_datasets(sources: Sequence[str | Path], out: str | Path, *, replace: int = 0, pick: str = "random",
                     seed: int = 0, check_identities: bool = True, link: bool = True, format: str = "folder",
                     counts: str | Path | Sequence[int] | dict[str, int] | None = None,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Combine ``sources`` into the new dataset folder ``out`` (see the module docstring); returns a summary.

    ``counts``: images kept per identity of the result (a list by row, a ``{folder name: count}`` mapping or a
    JSON file of either, see :func:`read_counts`); with it a single source is allowed (a subset)."""
    from synthfr.data.manifest import dumps_record, identity_dirname
    from synthfr.data.writers import export_rec
    from synthfr.utils.provenance import provenance

    t0 = time.time()
    srcs = [_read_source(Path(s).expanduser()) for s in sources]
    want = read_counts(counts) if counts is not None else None
    if len(srcs) < (1 if want is not None else 2):
        raise ValueError("combine needs at least two dataset folders (or one with counts: a subset)")
    if pick not in ("random", "last"):
        raise ValueError(f"unknown pick {pick!r}; use random or last")
    if format not in ("folder", "rec"):
        raise ValueError(f"unknown format {format!r}; use folder or rec")
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"combine output {out} is not empty; choose a new folder")

    lines: list[dict] = []
    copies: list[tuple[Path, Path]] = []
    if replace:
        if len(srcs) != 2:
            raise ValueError(f"--replace takes exactly two datasets (base, replacement), got {len(srcs)}")
        base, rep = srcs
        if base["rows"] != rep["rows"]:
            raise ValueError(f"{rep['path']} has {rep['rows']} identities, {base['path']} {base['rows']}: "
                             "--replace needs two datasets of the same identities")
        if check_identities and base["ids"] is not None and rep["ids"] is not None and not (
                base["ids"].shape == rep["ids"].shape and np.allclose(base["ids"], rep["ids"], atol=1e-6)):
            raise ValueError(f"identities.npy of {base['path']} and {rep['path']} differ: --replace needs both "
                             "generated from the same identity file (or pass --no-identity-check)")
        rows = base["rows"]
        for row in range(rows):
            a, b = base["by_row"].get(row, []), rep["by_row"].get(row, [])
            if len(a) < replace or len(b) < replace:
                raise ValueError(f"identity {row}: --replace {replace} needs >= {replace} images in both datasets "
                                 f"(has {len(a)} in {base['path']} and {len(b)} in {rep['path']})")
            if pick == "random":
                rng = np.random.default_rng(derive_seed(seed, "combine-replace", row))
                slots = set(rng.choice(len(a), replace, replace=False).tolist())
                take = sorted(rng.choice(len(b), replace, replace=False).tolist())
            else:
                slots, take = set(range(len(a) - replace, len(a))), list(range(replace))
            take_it = iter(take)
            for k, r in enumerate(a):
                s, r = (1, b[next(take_it)]) if k in slots else (0, r)
                src = srcs[s]["path"] / r["path"]
                rel = f"images/{identity_dirname(row, rows)}/{k}{src.suffix}"
                label = int(a[0].get("label", row))
                lines.append(_record(r, row=row, k=k, path=rel, label=label, shift=0, source=s))
                copies.append((src, out / rel))
    else:
        rows = sum(s["rows"] for s in srcs)
        shift = 0
        for s, src_ in enumerate(srcs):
            for row in range(src_["rows"]):
                for k, r in enumerate(src_["by_row"].get(row, [])):
                    new = row + shift
                    src = src_["path"] / r["path"]
                    rel = f"images/{identity_dirname(new, rows)}/{k}{src.suffix}"
                    lines.append(_record(r, row=new, k=k, path=rel, label=int(r.get("label", row)) + shift,
                                         shift=shift, source=s))
                    copies.append((src, out / rel))
            shift += src_["rows"]
    kept = None  # rows of the combination that counts keeps (identities.npy follows)
    if want is not None:
        lines, copies, kept = _apply_counts(lines, copies, rows, out, want)
        rows = len(kept)

    out.mkdir(parents=True, exist_ok=True)
    for src, dst in copies:
        _place(src, dst, link)
    atomic_write_text(out / "manifest.jsonl", "".join(dumps_record(r) + "\n" for r in lines))
    ids_note = None
    if replace:
        if srcs[0]["ids"] is not None:
            np.save(out / "identities.npy", srcs[0]["ids"] if kept is None else srcs[0]["ids"][kept])
            for sp in srcs[0]["path"].glob("identities.space.*"):
                shutil.copyfile(sp, out / sp.name)
    elif all(s["ids"] is not None for s in srcs) and len({s["ids"].shape[1] for s in srcs}) == 1:
        ids = np.concatenate([s["ids"] for s in srcs]).astype(np.float32)
        np.save(out / "identities.npy", ids if kept is None else ids[kept])
        if len(srcs) == 1:  # a subset stays in its source's space
            for sp in srcs[0]["path"].glob("identities.space.*"):
                shutil.copyfile(sp, out / sp.name)
        else:
            ids_note = "concatenated (each source in its own space; see the sources' identities.space.*)"
    else:
        ids_note = "not written: a source has no identities.npy or another width"
    import yaml

    doc = {
        "combined": {
            "mode": "replace" if replace else "subset" if len(srcs) == 1 else "concat",
            **({"replace": {"n": int(replace), "pick": pick, "seed": int(seed)}} if replace else {}),
            **({"counts": {"kept_rows": [int(r) for r in kept],
                           "images_per_identity": _per_row(lines, rows)}} if kept is not None else {}),
            **({"identities_npy": ids_note} if ids_note else {}),
            "sources": [{"path": str(s["path"].resolve()), "identities": s["rows"], "images": s["images"],
                         "manifest_sha256": s["manifest_sha256"], "config": s["config"]} for s in srcs],
        },
        "identities": {"rows": rows},
        "images": len(lines),
        "provenance": provenance(),
    }
    (out / "config.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    _write_card(out, doc, srcs)
    if format == "rec":
        export_rec(out, lines, num_classes=rows)
    summary = {"mode": doc["combined"]["mode"], "sources": len(srcs), "identities": rows, "images": len(lines),
               "from_sources": [sum(1 for r in lines if r["source"] == s) for s in range(len(srcs))],
               "seconds": time.time() - t0, "out": str(out)}
    if log:
        log(f"combined {len(srcs)} datasets ({summary['mode']}): {rows} identities, {len(lines)} images -> {out}")
    return summary
