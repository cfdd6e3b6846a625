"""HTML sections of the image-level quality report: networks side by side, realism/diversity against the
reference, attribute distributions, the face-quality score, the identity map and the worst identities."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from synthfr.report import html, plots
from synthfr.utils.images import is_image_file

__all__ = ["image_quality_sections", "networks_table_rows"]


def _num(v: Any) -> Any:
    return v if v is not None else "–"


def networks_table_rows(q: dict[str, Any]) -> tuple[list[list[Any]], list[str]]:
    """Rows (one per figure) and headers (``net: dataset``, ``net: reference`` per network) of the side-by-side
    table of ``q["networks"]``; reference columns only where the reference has the figure."""
    nets = q.get("networks") or {}
    cols: list[tuple[str, str]] = []
    for name, v in nets.items():
        cols.append((name, "dataset"))
        if any(x is not None for x in (v.get("reference") or {}).values()):
            cols.append((name, "reference"))
    labels = list(next(iter(nets.values()))["dataset"]) if nets else []
    rows = []
    for label in labels:
        vals = [nets[n][side].get(label) if nets[n].get(side) else None for n, side in cols]
        if any(v is not None for v in vals):
            rows.append([label] + [_num(v) for v in vals])
    return rows, ["figure"] + [f"{n}: {side}" for n, side in cols]


def _networks_section(q: dict[str, Any]) -> str:
    rows, headers = networks_table_rows(q)
    if not rows:
        return ""
    ref = q.get("reference") or {}
    note = ("Identity figures of each network, on the dataset and (where the reference has identity labels) on "
            "the real reference itself as a baseline. dlib-torch is the space the built-in generator is "
            "conditioned and trained in; SFace is an independent judge that never enters a loss, so its figures "
            "about generated faces are the evidence. Fréchet distance and precision / recall / density / "
            "coverage compare the dataset with the reference in each network's own embedding space "
            "(k-NN manifolds, k = {}).".format((q.get("prdc") or {}).get("k", 5)))
    parts = [html.paragraph(note, muted=True), html.table(rows, headers)]
    if ref:
        parts.append(html.paragraph(f"Reference: {ref.get('source')} ({ref.get('faces')} faces"
                                    + (f", {ref['identities']} identities" if ref.get("identities") else
                                       ", no identity labels") + ").", muted=True))
    return html.section("Networks side by side", *parts, anchor="networks")


def _attributes_section(a: dict[str, Any]) -> str:
    ds, ref = a["dataset"], a.get("reference")
    headers = ["attribute", "unit", "dataset mean", "dataset std", "dataset per-identity std"]
    if ref:
        headers += ["reference mean", "reference std", "reference per-identity std", "Wasserstein-1"]
    rows = []
    for k in a["attributes"]:
        d = ds["stats"][k]
        row = [k, a["units"].get(k, ""), d["mean"], d["std"], _num(d.get("per_identity_std"))]
        if ref:
            r = ref["stats"][k]
            row += [r["mean"], r["std"], _num(r.get("per_identity_std")), a["comparison"][k]["wasserstein"]]
        rows.append(row)
    if "detection_rate" in ds:
        rows.append(["detection rate (dlib HOG)", "fraction", ds["detection_rate"], "", ""]
                    + ([ref.get("detection_rate", "–"), "", "", ""] if ref else []))
    panels = {}
    for k in a["attributes"]:
        panels[f"{k} ({a['units'].get(k, '')})"] = {"dataset": ds["stats"][k]["hist"],
                                                    **({"reference": ref["stats"][k]["hist"]} if ref else {})}
    fig = html.figure(plots.hist_grid_png(panels), "Distribution of each attribute (density), dataset vs reference.")
    what = (f"{ds['faces']} dataset faces" + (f" of {ds['identities']} identities" if ds.get("identities") else "")
            + (f"; {ref['faces']} reference faces" if ref else ""))
    return html.section(
        "Attribute distributions", html.paragraph(
            f"Measured on {what} (at most {a.get('max_images')} per set, whole identities). Per-identity std: the "
            "standard deviation of the attribute among one identity's images, averaged over identities — the "
            "intra-class variation in the attribute's own unit. yaw/pitch/roll come from 68 landmarks + solvePnP; "
            "yaw_net/pitch_net from synthfr's pose network (an independent estimate). Wasserstein-1: the mean "
            "absolute shift between the dataset's and the reference's distributions, in the same unit.",
            muted=True),
        html.table(rows, headers), fig, anchor="attributes")


def _strip(root: Path, rels: list[str], thumb: int) -> str:
    from synthfr.report.sections import strip_jpeg

    paths = [root / r for r in rels if (root / r).is_file()]
    if not paths:
        return ""
    return html.image(strip_jpeg(paths, thumb), "image/jpeg", alt="faces",
                      attrs=f'width="{len(paths) * (thumb + 2) - 2}" height="{thumb}"')


def _identity_files(root: Path, name: str, n: int) -> list[str]:
    d = root / name
    if not d.is_dir():
        return []
    files = sorted((p for p in d.iterdir() if is_image_file(p)),
                   key=lambda p: (len(p.stem), p.stem))
    return [f"{name}/{p.name}" for p in files[:n]]


def _quality_section(q: dict[str, Any], thumb: int) -> str:
    fq = q.get("face_quality")
    if not isinstance(fq, dict) or "hist" not in fq:
        return ""
    series = {"dataset": fq["hist"]}
    ref_fq = ((q.get("reference") or {}).get("networks") or {}).get(q.get("embedder"), {}).get("face_quality")
    if isinstance(ref_fq, dict) and "hist" in ref_fq:
        series["reference"] = ref_fq["hist"]
    parts = [html.paragraph(
        f"Certainty ratio CR = CCS / (NNCCS + 1 + 1e-9) per image in {q.get('embedder')}'s space (CR-FIQA's "
        "target, measured instead of learned): CCS = cosine to the image's own identity centre (computed without "
        f"it), NNCCS = the highest cosine to {fq.get('other_classes')} randomly drawn other identity centres. "
        "Higher is better: a clear, typical image of its identity. Needs no quality model.", muted=True),
        html.figure(plots.hist_png(series, title="Face-image quality (certainty ratio)", xlabel="CR"),
                    f"median {fq['median']:.3f} (dataset)")]
    root = Path((q.get("images") or {}).get("root", ""))
    if fq.get("lowest_paths") and root.is_dir():
        strip = _strip(root, fq["lowest_paths"], thumb)
        if strip:
            parts.append(f"<figure>{strip}<figcaption>The lowest-quality images of the dataset, worst first."
                         "</figcaption></figure>")
    return html.section("Face-image quality", *parts, anchor="face-quality")


def _map_section(m: dict[str, Any], embedder: str) -> str:
    pts = {"dataset identity centres": m["dataset"]}
    if m.get("reference"):
        pts[f"reference {m.get('reference_kind', '')}"] = m["reference"]
    return html.section("Map of identity centres", html.figure(
        plots.scatter_png(pts, title=f"Identity centres, classical MDS ({embedder})"),
        f"Classical MDS of chord distances between identity centres (as SynFace Fig. 3); the two axes keep "
        f"{100 * m['explained']:.0f} % of the centres' spread. Synthetic centres that cover the real ones are "
        "diverse; a tight cluster is not."), anchor="identity-map")


def _worst_section(q: dict[str, Any], thumb: int, per_id: int = 8) -> str:
    w = q.get("worst_identities") or {}
    root = Path((q.get("images") or {}).get("root", ""))
    if not root.is_dir() or not (w.get("lowest_consistency") or w.get("lowest_separability")):
        return ""
    cards = []
    for e in w.get("lowest_consistency", []):
        strip = _strip(root, _identity_files(root, e.get("name", str(e["identity"])), per_id), thumb)
        if strip:
            cards.append(f"<figure>{strip}<figcaption>{html.escape(e.get('name', e['identity']))}: mean cos to "
                         f"centre {e['mean_cos_to_centre']:.3f}</figcaption></figure>")
    pairs = []
    for e in w.get("lowest_separability", []):
        a = _identity_files(root, e.get("name", str(e["identity"])), per_id // 2)
        b = _identity_files(root, e.get("nearest_name", str(e["nearest"])), per_id // 2)
        strip = _strip(root, a + b, thumb)
        if strip:
            pairs.append(f"<figure>{strip}<figcaption>{html.escape(e.get('name', e['identity']))} | "
                         f"{html.escape(e.get('nearest_name', e['nearest']))}: centre cos {e['centre_cos']:.3f}"
                         "</figcaption></figure>")
    return html.section(
        "Worst identities", html.paragraph(
            f"Lowest consistency (images of one identity that agree least, in {q.get('embedder')}'s space) and "
            "lowest separability (identities whose centre is closest to another's; left half one identity, right "
            "half its nearest neighbour), as VIGFace's appendix.", muted=True),
        "<h3>Lowest consistency</h3>", html.grid(cards, cls="samples"),
        "<h3>Lowest separability</h3>", html.grid(pairs, cls="samples"), anchor="worst-identities")


def _distribution_section(q: dict[str, Any]) -> str:
    fd, pr = q.get("frechet"), q.get("prdc")
    if not (isinstance(fd, dict) and "fd" in fd) and not (isinstance(pr, dict) and "precision" in pr):
        return ""
    items: dict[str, Any] = {}
    if isinstance(fd, dict) and "fd" in fd:
        items.update({"Fréchet distance": fd["fd"], "  mean term": fd["mean_term"], "  covariance term":
                      fd["cov_term"], "reference split-half FD (floor)": fd.get("reference_split_half_fd"),
                      "faces (dataset / reference)": f"{fd['n_dataset']} / {fd['n_reference']}"})
    if isinstance(pr, dict) and "precision" in pr:
        items.update({f"precision (k={pr['k']})": pr["precision"], "recall": pr["recall"], "density": pr["density"],
                      "coverage": pr["coverage"], "faces used (balanced)": f"{pr['n_dataset']} / {pr['n_reference']}"})
    return html.section(
        f"Realism and diversity against the reference ({q.get('embedder')})", html.key_values(items),
        html.paragraph("Precision and density measure realism (generated faces inside the real k-NN manifold), "
                       "recall and coverage diversity (real faces reached by the generated manifold); Fréchet "
                       "distance mixes both. The split-half FD of the reference is what a real set of that size "
                       "scores against itself.", muted=True), anchor="realism")


def image_quality_sections(q: dict[str, Any], thumb: int = 56) -> list[str]:
    """The image-level sections for one :func:`synthfr.quality.evaluate.quality_from_dataset` result (those
    whose data is present)."""
    out = [_networks_section(q) if q.get("networks") and (len(q["networks"]) > 1 or q.get("reference")) else "",
           _distribution_section(q)]
    if q.get("attributes"):
        out.append(_attributes_section(q["attributes"]))
    out.append(_quality_section(q, thumb))
    m = q.get("identity_map")
    if isinstance(m, dict) and m.get("dataset"):
        out.append(_map_section(m, str(q.get("embedder", ""))))
    out.append(_worst_section(q, thumb))
    return [s for s in out if s]
