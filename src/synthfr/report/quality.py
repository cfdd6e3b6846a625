"""HTML sections for the dataset-quality report (reusable by larger reports)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from synthfr.report import html, plots

__all__ = ["quality_sections", "summary_items", "write_quality_report"]


def summary_items(q: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`synthfr.quality.evaluate.evaluate_quality` result."""
    s: dict[str, Any] = {"embeddings": q.get("n_embeddings"), "identities": q.get("n_identities"), "dim": q.get("dim")}
    if "separability" in q:
        s[f"separability (no centre > {q['separability']['threshold']})"] = q["separability"]["separability"]
    if "noise" in q:
        s[f"inter-class noise pairs (> {q['noise']['threshold']})"] = q["noise"]["noise_pairs"]
        s["identities in noise pairs"] = q["noise"]["noise_identity_fraction"]
    if "consistency" in q:
        s[f"inconsistent images (cos to centre < {q['consistency']['threshold']})"] = \
            q["consistency"]["inconsistent_fraction"]
        s["mean cos to own centre"] = q["consistency"]["mean_cos_to_centre"]
    if "verification" in q:
        s["EER"] = q["verification"]["eer"]
        s["EER threshold"] = q["verification"]["eer_threshold"]
        s["genuine mean / impostor mean"] = (f"{q['verification']['genuine_mean']:.4f} / "
                                             f"{q['verification']['impostor_mean']:.4f}")
    lk = q.get("leakage")
    if isinstance(lk, dict) and "leaked_count" in lk:
        s[f"leaked identities (> {lk['threshold']})"] = lk["leaked_count"]
    fq = q.get("face_quality")
    if isinstance(fq, dict) and "median" in fq:
        s["face quality (certainty ratio) median"] = fq["median"]
    fd = q.get("frechet")
    if isinstance(fd, dict) and "fd" in fd:
        s["Fréchet distance to reference"] = fd["fd"]
    pr = q.get("prdc")
    if isinstance(pr, dict) and "precision" in pr:
        s["precision / recall / density / coverage"] = (f"{pr['precision']:.4f} / {pr['recall']:.4f} / "
                                                        f"{pr['density']:.4f} / {pr['coverage']:.4f}")
    det = ((q.get("attributes") or {}).get("dataset") or {}).get("detection_rate")
    if det is not None:
        s["detection rate (dlib HOG)"] = det
    for name, res in (q.get("judges") or {}).items():
        if isinstance(res.get("verification"), dict):
            s[f"EER ({name})"] = res["verification"]["eer"]
    return s


def _space_text(space: Any) -> str:
    """One line describing the embedding space the metrics were measured in."""
    if not isinstance(space, dict) or not space:
        return "space: raw embeddings (no standardisation)" if not space else f"space: {space}"
    info = space.get("info") if isinstance(space.get("info"), dict) else {}
    bits = [f"dim {space['dim']}" if "dim" in space else "",
            "centred" if space.get("center") else "not centred",
            "whitened" if space.get("whiten") else "not whitened"]
    if info.get("kind"):
        bits.append(str(info["kind"]))
    if info.get("source"):
        bits.append(f"from {info['source']}" + (f" ({info['gallery_size']} points)" if info.get("gallery_size")
                                                 else ""))
    return "Measured in the embedding space: " + ", ".join(b for b in bits if b) + "."


def quality_sections(q: dict[str, Any], prefix: str = "") -> list[str]:
    """HTML sections (summary, separability, consistency, verification, leakage) for one quality result."""
    out = [html.section(prefix + "Summary", html.key_values(summary_items(q)),
                        html.paragraph(_space_text(q.get("space")), muted=True))]
    if "separability" in q:
        sp = q["separability"]
        figs = [html.figure(plots.curve_png({"separable fraction": (sp["curve_n"], sp["curve_fraction"])},
                                            title="Inter-class separability vs number of identities",
                                            xlabel="identities", ylabel=f"fraction with no centre > {sp['threshold']}",
                                            logx=True, ylim=(0, 1.02)),
                            "Fraction of identities whose centre has no other centre above the threshold, on nested "
                            "random subsets (Vec2Face Fig. 5).")]
        if len(sp.get("centre_nn_cos", [])) > 1:
            figs.append(html.figure(plots.values_hist_png({"nearest other centre": sp["centre_nn_cos"]},
                                                          title="Cosine of each identity centre to its nearest other",
                                                          vlines={"separability": sp["threshold"]}),
                                    "Distribution of the nearest-other-centre cosine."))
        body = [html.grid(figs)]
        if "noise" in q and q["noise"]["pairs"]:
            body.append(html.details(f"{q['noise']['noise_pairs']} centre pairs above {q['noise']['threshold']}",
                                     html.table([[p["a"], p["b"], p["cos"]] for p in q["noise"]["pairs"][:50]],
                                                ["identity a", "identity b", "cos"])))
        out.append(html.section(prefix + "Inter-class separability and noise", *body))
    if "consistency" in q:
        c = q["consistency"]
        out.append(html.section(prefix + "Intra-class consistency", html.figure(
            plots.hist_png({"image vs own centre": c["cos_to_centre_hist"]}, title="Cosine of each image to its "
                           "identity centre", vlines={"consistency": c["threshold"]}),
            "Images left of the line are counted as inconsistent.")))
    if "verification" in q:
        v = q["verification"]
        out.append(html.section(prefix + "Genuine and impostor similarities", html.figure(
            plots.hist_png({"genuine": v["genuine_hist"], "impostor": v["impostor_hist"]},
                           title=f"Genuine vs impostor cosine (EER {v['eer']:.4f})",
                           vlines={"EER threshold": v["eer_threshold"]}),
            f"{v['genuine_pairs']} genuine and {v['impostor_pairs']} impostor pairs.")))
    lk = q.get("leakage")
    if isinstance(lk, dict) and "leaked_count" in lk:
        rows = [[p["identity"], p["reference"], p["cos"], "leaked" if p["cos"] > lk["threshold"] else ""]
                for p in lk["top_pairs"]]
        out.append(html.section(prefix + "Identity leakage", html.grid([
            html.figure(plots.hist_png({"nearest reference": lk["nearest_reference_hist"]},
                                       title="Each identity's nearest reference " + lk["reference_kind"],
                                       vlines={"leak threshold": lk["threshold"]}),
                        "Cosine of every synthetic identity centre to its most similar reference item."),
            html.table(rows, ["identity", "reference", "cos", ""])])))
    from synthfr.report.quality_images import image_quality_sections

    out.extend(image_quality_sections(q))
    return out


def write_quality_report(q: dict[str, Any], path: str | Path, title: str = "synthfr dataset quality",
                         subtitle: str = "") -> Path:
    """Write a self-contained HTML report for one quality result."""
    return html.write_html(path, html.page(title, quality_sections(q), subtitle=subtitle))
