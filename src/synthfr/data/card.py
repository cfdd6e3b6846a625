"""The dataset card: ``README.md`` in every generated dataset folder (Hugging Face dataset-card form).

``write_dataset_card(DATASET)`` renders the card from what the folder holds, so it can be rewritten at any
time and never disagrees with the data:

* ``config.yaml`` (written by ``synthfr generate``): sampler, variation, generator + weights digest, seeds,
  and a command that regenerates the dataset;
* ``manifest.jsonl``: image and identity counts, images kept below the identity filter;
* ``quality.<embedder>.json`` (written by ``synthfr quality`` when its input is this dataset, one file per
  embedder, e.g. dlib-torch and sface): every figure of the quality JSON, unrounded, so the card's figures are
  exactly those of ``synthfr quality``;
* what the images inherit: the data the generator was trained on and its licences (each generator declares
  them: ``Generator.sources``).

The card holds no time stamps: the same dataset gives the same bytes (generation, resume and merge agree).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["write_dataset_card", "render_dataset_card", "quality_path", "dataset_root", "flatten_figures"]

_UNKNOWN = {"datasets": [], "licences": "unknown: check the generator's model card before any use", "commercial": False}


def _sources(gen_name: str) -> dict[str, Any]:
    """What the generator declares its images inherit (``Generator.sources``), found through the registry: the
    card lives with the data formats, below the generators, so it never imports them."""
    from synthfr.registry import get_registry

    generators = get_registry("generator")
    src = getattr(generators.get(gen_name), "sources", None) if gen_name in generators else None
    return src or {**_UNKNOWN, "trained_on": f"unknown to synthfr: see the model card of the {gen_name!r} weights"}


def dataset_root(path: str | Path) -> Path | None:
    """The dataset folder of ``path`` (the folder itself, or the parent of its ``images/``), or None."""
    p = Path(path).expanduser()
    for cand in (p, p.parent if p.name == "images" else None):
        if cand is not None and (cand / "config.yaml").is_file() and (cand / "manifest.jsonl").is_file():
            return cand
    return None


def quality_path(dataset: str | Path, embedder: str) -> Path:
    """Where ``synthfr quality`` keeps its figures for ``embedder`` inside a dataset folder."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(embedder).split(":", 1)[0]) or "embedder"
    return Path(dataset) / f"quality.{safe}.json"


def flatten_figures(q: Any, prefix: str = "") -> dict[str, Any]:
    """Every scalar of a quality JSON as ``dotted.key -> value`` (lists of numbers are left out: curves)."""
    out: dict[str, Any] = {}
    if isinstance(q, dict):
        for k, v in q.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(flatten_figures(v, key))
            elif isinstance(v, (int, float, str, bool)) or v is None:
                if key == "source" or key.startswith("space.") or key.startswith("seconds"):
                    continue  # paths and timings: not dataset figures
                out[key] = v
    return out


def _fmt(v: Any) -> str:
    return json.dumps(v)  # exactly what the quality JSON holds (full float precision)


def _size_category(n: int) -> str:
    for lim, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                      (10_000_000, "1M<n<10M")):
        if n < lim:
            return name
    return "10M<n<100M"


def _command(doc: dict[str, Any]) -> str:
    c = doc.get("config", {}) or {}
    parts = ["synthfr generate --identities identities.npy", f"--generator {c.get('generator', '?')}"]
    if c.get("weights"):
        parts.append("--weights WEIGHTS_DIR")
    parts.append(f"--images-per-id {c.get('images_per_id')}")
    if c.get("variation"):
        parts.append(f"--variation {c['variation']}")
    parts.append(f"--seed {doc.get('seed', c.get('seed'))}")
    defaults = {"num_identities": None, "format": "folder", "image_format": "jpg", "jpeg_quality": 95,
                "filter_min_sim": None, "embedder": None, "align_check": None, "max_attempts": 5}
    for k, d in defaults.items():
        if c.get(k, d) != d:
            parts.append(f"--{k.replace('_', '-')} {c[k]}")
    if c.get("batch_size") is not None:
        parts.append(f"--batch-size {c['batch_size']}")
    return " ".join(parts) + " --out DATASET"


def _sampler_text(doc: dict[str, Any]) -> tuple[str, str | None]:
    s = doc.get("sampler")
    if not isinstance(s, dict) or not s.get("method"):
        return "not recorded (the identity file had no `.config.yaml` from `synthfr sample` beside it)", None
    opts = {k: v for k, v in (s.get("options") or {}).items() if v is not None}
    text = f"`{s['method']}`" + (f" with {json.dumps(opts, sort_keys=True)}" if opts else "")
    text += f", seed {s.get('seed')}"
    if s.get("gallery"):
        text += f", gallery `{Path(str(s['gallery'])).name}`"
    cmd = f"synthfr sample {s['method']} --n {s.get('n')}"
    cmd += f" --gallery {Path(str(s['gallery'])).name}" if s.get("gallery") else f" --dim {s.get('dim')}"
    cmd += f" --seed {s.get('seed')} --out identities.npy"
    return text, cmd


def render_dataset_card(dataset: str | Path) -> str:
    """The card of ``dataset`` as text (see the module docstring)."""
    import yaml

    from synthfr.data.manifest import iter_manifest

    d = Path(dataset)
    doc = yaml.safe_load((d / "config.yaml").read_text()) or {}
    cfg = doc.get("config", {}) or {}
    gen = doc.get("generator", {}) or {}
    gname = str(gen.get("name") or str(cfg.get("generator", "?")).split(":", 1)[0])
    src = _sources(gname)
    n_img, ids, below, soft = 0, set(), 0, 0
    for r in iter_manifest(d / "manifest.jsonl"):
        n_img += 1
        ids.add(int(r["identity"]))
        below += int(r.get("passed") is False)
        soft += int(r.get("soft_label") is not None)
    n_ids = len(ids)
    qfiles = sorted(d.glob("quality.*.json"))
    front = {
        "pretty_name": f"synthfr synthetic faces: {gname}, {n_ids} identities x {cfg.get('images_per_id')} images",
        "license": "other",
        "license_name": "inherited-from-generator-training-data",
        "license_details": src["licences"],
        "tags": ["synthetic", "face-recognition", "synthfr"],
        "task_categories": ["image-classification"],
        "size_categories": [_size_category(n_img)],
    }
    if src["datasets"]:
        front["source_datasets"] = list(src["datasets"])
    sampler_text, sampler_cmd = _sampler_text(doc)
    filt = "none" if cfg.get("filter_min_sim") is None else f"cosine >= {cfg['filter_min_sim']}"
    if below:
        filt += f"; {below} images kept below it after {cfg.get('max_attempts')} attempts (passed: false)"
    L: list[str] = ["---", yaml.safe_dump(front, sort_keys=False, width=1000).rstrip(), "---", ""]
    L += [f"# Synthetic face dataset ({gname})", "",
          f"{n_img} aligned 112×112 face images of {n_ids} synthetic identities, made by "
          f"`synthfr generate`. Images: `images/<identity>/<k>.{cfg.get('image_format', 'jpg')}`"
          " (or `train.rec`); one line per image in `manifest.jsonl` (identity, label, seed, variation, "
          "similarity); settings in `config.yaml`.", ""]
    L += ["## How it was made", "",
          "| | |", "|---|---|",
          f"| identity sampler | {sampler_text} |",
          f"| identities | {doc.get('identities', {}).get('rows')} vectors, {doc.get('identities', {}).get('dim')}-D, "
          f"sha256 `{doc.get('identities', {}).get('sha256')}` (`identities.npy`) |",
          f"| variation | `{cfg.get('variation') or 'none'}` |",
          f"| generator | `{cfg.get('generator')}` (embedding space `{gen.get('embedder')}`) |",
          f"| generator weights sha256 | `{gen.get('weights_sha256')}` |",
          f"| images per identity | {cfg.get('images_per_id')} |",
          f"| seed | {doc.get('seed')}: image k of identity i uses a seed derived from (seed, i, k) only |",
          f"| identity filter | {filt} |",
          f"| alignment check | {cfg.get('align_check') if cfg.get('align_check') is not None else 'none'} |",
          f"| soft-labelled images (identity mixup) | {soft} |",
          f"| synthfr version | {(doc.get('versions') or {}).get('synthfr', '?')} |", "",
          "Regenerate it (byte-identical, given the same identity file and weights):", "", "```"]
    if sampler_cmd:
        L.append(sampler_cmd)
    L += [_command(doc), "```", ""]
    L += ["## What the images inherit", "",
          f"Generator `{gname}` was trained on {src['trained_on']}.", "",
          f"**Licences of that data: {src['licences']}.**", ""]
    if not src["commercial"]:
        L += ["A generator's images carry what it learnt from its training data: treat this dataset as bound by "
              "those terms (research, non-commercial use), whatever the synthetic identities suggest.", ""]
    L += ["The identity vectors were sampled in an embedding space fitted on real faces (the gallery, if any, and "
          "the generator's embedder); no real image is copied into the dataset, but identities can still leak: "
          "see the leakage figures below.", ""]
    L += ["## Quality and leakage", ""]
    if not qfiles:
        L += ["Not measured yet. Run, for each network (the generator's own space and the independent judge):", "",
              "```", "synthfr quality DATASET/images --embedder dlib-torch --reference REAL.npy --json q.json",
              "synthfr quality DATASET/images --embedder sface --reference REAL_SFACE.npy --json q.json", "```", "",
              "Each run stores its figures in `quality.<embedder>.json` here and updates this card.", ""]
    for qf in qfiles:
        try:
            q = json.loads(qf.read_text())
        except (OSError, ValueError):
            continue
        emb = qf.name[len("quality."):-len(".json")]
        figs = flatten_figures(q)
        L += [f"### Measured with `{emb}` (`{qf.name}`)", ""]
        if "leakage" not in q or not isinstance(q.get("leakage"), dict) or "leaked_count" not in q["leakage"]:
            L += ["Leakage: not measured (pass `--reference REAL.npy`, embeddings of the generator's training "
                  "faces, to `synthfr quality`).", ""]
        L += ["| figure | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in figs.items()] + [""]
    missing = [e for e in ("dlib-torch", "sface") if not (d / f"quality.{e}.json").is_file()]
    if qfiles and missing:
        L += [f"Not measured with: {', '.join(missing)} (run `synthfr quality DATASET/images --embedder NAME`).", ""]
    L += ["## Intended use and limits", "",
          "* Intended: research on face recognition trained or evaluated with synthetic identities; measuring "
          "how sampling, variation and generators change accuracy, fairness and privacy.",
          "* Not intended: identifying or verifying real people, surveillance, or any use the licences above "
          "exclude. Never use it to claim that a model has seen no real faces: the generator has.",
          "* Limits: the identities are only as distinct as the quality figures say (separability, leakage); "
          "demographics, poses and lighting follow the generator's training data; images that failed the "
          "identity filter are kept and marked `passed: false` in the manifest.", ""]
    return "\n".join(L)


def write_dataset_card(dataset: str | Path) -> Path:
    """Write ``DATASET/README.md`` (atomically) and return its path."""
    from synthfr.utils.io import atomic_write_text

    path = Path(dataset) / "README.md"
    atomic_write_text(path, render_dataset_card(dataset))
    return path
