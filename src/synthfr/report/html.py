"""Self-contained HTML reports built from small composable pieces.

Each builder returns an HTML fragment (a ``str``); :func:`page` wraps fragments into one document with inline
CSS and inline base64 PNG figures (no external files), and :func:`write_html` writes it atomically::

    from synthfr.report import html
    doc = html.page("My report", [html.section("Summary", html.key_values({"EER": 0.03})),
                                  html.section("Plots", html.figure(png_bytes, "genuine vs impostor"))])
    html.write_html("report.html", doc)
"""
from __future__ import annotations

import base64
import html as _html
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["escape", "fmt", "figure", "image", "table", "key_values", "section", "paragraph", "details", "grid",
           "preformatted", "nav", "page", "write_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:left}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.6em 0;display:inline-block;vertical-align:top}figcaption{font-size:.85em;color:#555;max-width:640px}
img{max-width:100%;border:1px solid #eee}.grid{display:flex;flex-wrap:wrap;gap:1em}.muted{color:#777;font-size:.85em}
details{margin:.5em 0}summary{cursor:pointer}
pre{background:#f7f7f7;border:1px solid #e4e4e4;padding:.6em .8em;overflow-x:auto;font-size:.82em;line-height:1.35}
nav{font-size:.9em;margin:.4em 0 1em}nav a{margin-right:1em;color:#1f5fa8;text-decoration:none;white-space:nowrap}
.grid>figure{max-width:525px}.samples{gap:.5em 1.2em}.samples figure{margin:.2em 0;max-width:none}
.samples img{border:0;display:block;max-width:none}.samples figcaption{font-size:.78em}
"""


def escape(text: Any) -> str:
    return _html.escape(str(text))


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers to short text (ints as ints, floats with ``digits`` significant digits), others via ``str``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}g}"
    if value is None:
        return "–"
    return str(value)


def figure(png: bytes, caption: str = "", alt: str | None = None, mime: str = "image/png") -> str:
    """An inline figure (base64 data URI; PNG unless ``mime`` says otherwise) with a caption."""
    b64 = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{escape(alt or caption)}" src="data:{mime};base64,{b64}">{cap}</figure>'


def image(data: bytes, mime: str = "image/png", alt: str = "", attrs: str = "") -> str:
    """A bare inline image (base64 data URI), e.g. a JPEG thumbnail strip with ``mime="image/jpeg"``."""
    b64 = base64.b64encode(data).decode("ascii")
    extra = f" {attrs}" if attrs else ""
    return f'<img alt="{escape(alt)}" src="data:{mime};base64,{b64}"{extra}>'


def preformatted(text: str) -> str:
    """A ``<pre>`` block of escaped text (configs, logs)."""
    return f"<pre>{escape(text)}</pre>"


def nav(links: Iterable[tuple[str, str]]) -> str:
    """In-page links ``[(anchor, label), ...]`` to sections given an ``anchor``."""
    return "<nav>" + "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t in links) + "</nav>"


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] | None = None, raw: Sequence[int] = (),
          cls: str = "") -> str:
    """A table; numeric cells are right-aligned and formatted with :func:`fmt`; cells of the ``raw`` columns
    are HTML fragments inserted as they are (e.g. an :func:`image`)."""
    out = [f'<table class="{escape(cls)}">' if cls else "<table>"]
    if headers:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>")
    for r in rows:
        cells = []
        for j, v in enumerate(r):
            if j in raw:
                cells.append(f"<td>{v}</td>")
                continue
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{fmt(v)}</td>' if num else f"<td>{escape(fmt(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def key_values(items: Mapping[str, Any], headers: Sequence[str] = ("quantity", "value")) -> str:
    """Two-column table of scalar values."""
    return table(([k, v] for k, v in items.items()), headers)


def paragraph(text: str, muted: bool = False) -> str:
    cls = ' class="muted"' if muted else ""
    return f"<p{cls}>{escape(text)}</p>"


def details(summary: str, body: str, open: bool = False) -> str:
    """A collapsible block (``body`` is HTML); ``open`` shows it unfolded."""
    return f"<details{' open' if open else ''}><summary>{escape(summary)}</summary>{body}</details>"


def grid(parts: Iterable[str], cls: str = "") -> str:
    """Lay fragments side by side (wrapping)."""
    return f'<div class="grid{" " + escape(cls) if cls else ""}">' + "".join(parts) + "</div>"


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """A titled section holding HTML fragments."""
    aid = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{aid}><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def page(title: str, sections: Iterable[str], subtitle: str = "") -> str:
    """One self-contained HTML document (inline CSS and images)."""
    stamp = time.strftime("%Y-%m-%d %H:%M")
    sub = f'<p class="muted">{escape(subtitle)}</p>' if subtitle else ""
    body = "".join(sections)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{sub}{body}"
            f"<p class=\"muted\">generated by synthfr on {stamp}</p></body></html>")


def write_html(path: str | Path, document: str) -> Path:
    from synthfr.utils.io import atomic_write_text

    return atomic_write_text(path, document)
