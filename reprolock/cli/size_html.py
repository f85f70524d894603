"""The size report as one self-contained HTML page: a treemap of the image's bytes by layer
and package (inline SVG, laid out here), and the tables of the text report.

Nothing is fetched: no script, no font, no image; the page's Content-Security-Policy
forbids every load, so even a value that slipped past escaping could not reach the
network.  Deterministic: the same report gives the same bytes.
"""

from __future__ import annotations

import colorsys
import html
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reprolock.cli.size_text import human, step
from reprolock.inventory.size import Cell, SizeReport

WIDTH, HEIGHT = 1200, 640  # the treemap's viewBox
_HEADER = 18  # a layer's label strip, when the layer is tall enough
_PAD = 2
_ROWS = 50  # rows per table


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


def squarify(values: Sequence[float], area: Rect) -> list[Rect]:
    """Rectangles for ``values`` (positive, largest first) filling ``area``, as square as
    the squarified treemap of Bruls, Huizing and van Wijk lays them out."""
    total = sum(values)
    if total <= 0 or area.w <= 0 or area.h <= 0:
        return [Rect(area.x, area.y, 0, 0) for _ in values]
    scale = area.w * area.h / total
    scaled = [v * scale for v in values]
    out: list[Rect] = []
    x, y, w, h = area.x, area.y, area.w, area.h
    i = 0
    while i < len(scaled):
        short = min(w, h)
        row = [scaled[i]]
        i += 1
        while i < len(scaled) and _worst([*row, scaled[i]], short) <= _worst(row, short):
            row.append(scaled[i])
            i += 1
        size = sum(row)
        if w >= h:  # a column at the left
            width = size / h if h else 0
            offset = y
            for value in row:
                out.append(Rect(x, offset, width, value / width if width else 0))
                offset += out[-1].h
            x, w = x + width, w - width
        else:  # a row at the top
            height = size / w if w else 0
            offset = x
            for value in row:
                out.append(Rect(offset, y, value / height if height else 0, height))
                offset += out[-1].w
            y, h = y + height, h - height
    return out


def _worst(row: list[float], short: float) -> float:
    """The worst aspect ratio of ``row`` laid along a side of length ``short``."""
    total = sum(row)
    if total <= 0 or short <= 0 or min(row) <= 0:
        return float("inf")
    return max(max(row) * short**2 / total**2, total**2 / (short**2 * min(row)))


def colour(group: str) -> str:
    """A fill per kind (apt blue, Python green, caches orange, wasted red, the rest grey),
    its shade from the name, so neighbours differ and reruns match."""
    kind, _, name = group.partition(" ")
    if group == "wasted":
        return "#d9534f"
    if group == "smaller":
        return "#d8d8d8"
    if kind == "data":
        return "#8e5cc4"
    hue = {"apt": 210, "python": 130, "cache": 30}.get(kind)
    light = 0.45 + zlib.crc32(name.encode()) % 25 / 100
    red, green, blue = colorsys.hls_to_rgb((hue or 0) / 360, light, 0.0 if hue is None else 0.55)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))


def treemap(report: SizeReport) -> str:
    """The SVG: one rectangle per layer (by the bytes its files hold), each split by
    package (`Cell`); every rectangle says what it is in its ``<title>`` (a tooltip)."""
    by_layer: dict[int, list[Cell]] = {}
    for cell in report.cells:
        by_layer.setdefault(cell.layer, []).append(cell)
    layers = sorted(by_layer.items(), key=lambda kv: (-sum(c.bytes for c in kv[1]), kv[0]))
    sizes = [sum(c.bytes for c in cells) for _, cells in layers]
    parts = [
        f'<svg id="treemap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="the image\'s bytes by layer and package">'
    ]
    steps = {layer.index: layer.step for layer in report.layers}
    for (index, cells), box in zip(layers, squarify(sizes, Rect(0, 0, WIDTH, HEIGHT)), strict=True):
        total = sum(c.bytes for c in cells)
        label = f"layer {index}: {human(total)} — {step(steps.get(index), 200)}"
        parts.append(
            f'<g class="layer" data-layer="{index}"><title>{html.escape(label)}</title>'
            f'<rect class="layer-box" x="{box.x:.2f}" y="{box.y:.2f}" width="{box.w:.2f}" '
            f'height="{box.h:.2f}"/>'
        )
        header = _HEADER if box.h > 3 * _HEADER and box.w > 60 else 0
        if header:
            parts.append(_text(box.x + 4, box.y + 13, box.w - 8, label, "layer-label"))
        inner = Rect(
            box.x + _PAD, box.y + header + _PAD, box.w - 2 * _PAD, box.h - header - 2 * _PAD
        )
        for cell, rect in zip(cells, squarify([c.bytes for c in cells], inner), strict=True):
            parts.append(_cell(cell, rect))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _cell(cell: Cell, rect: Rect) -> str:
    what = {"wasted": "shadowed or deleted by later layers", "smaller": "smaller groups"}.get(
        cell.group, cell.group
    )
    title = f"{what}: {human(cell.bytes)} (layer {cell.layer})"
    out = (
        f'<g class="cell"><title>{html.escape(title)}</title>'
        f'<rect class="cell-box" data-group="{html.escape(cell.group)}" x="{rect.x:.2f}" '
        f'y="{rect.y:.2f}" width="{max(rect.w - 1, 0):.2f}" height="{max(rect.h - 1, 0):.2f}" '
        f'fill="{colour(cell.group)}"/>'
    )
    if rect.w > 50 and rect.h > 16:
        out += _text(
            rect.x + 3, rect.y + 12, rect.w - 6, f"{what} {human(cell.bytes)}", "cell-label"
        )
    return out + "</g>"


def _text(x: float, y: float, width: float, text: str, css: str) -> str:
    """A label cut to what fits (about 6.5 px a character at 11 px)."""
    room = max(int(width / 6.5), 0)
    shown = text if len(text) <= room else text[: max(room - 1, 0)] + "…"
    return f'<text class="{css}" x="{x:.2f}" y="{y:.2f}">{html.escape(shown)}</text>'


def _table(title: str, head: Sequence[str], rows: Iterable[Sequence[str]], css: str) -> str:
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    if not body:
        return ""
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        f'<section class="{css}"><h2>{html.escape(title)}</h2>'
        f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></section>"
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.summary{color:#444;margin:0 0 12px}
#treemap{width:100%;height:auto;display:block;border:1px solid #999}
.layer-box{fill:#f4f4f4;stroke:#333;stroke-width:1.5}
.layer-label{font:bold 11px system-ui,sans-serif;fill:#111}
.cell-label{font:11px system-ui,sans-serif;fill:#fff;paint-order:stroke;stroke:#0008;
stroke-width:2px;pointer-events:none}
table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left;vertical-align:top}
td:first-child{text-align:right;white-space:nowrap}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
"""


def render_html(report: SizeReport, image: str) -> str:
    """The whole page."""
    summary = f"{human(report.total)} in the filesystem, {human(report.stored)} in the layers" + (
        f", {human(report.wasted)} of it shadowed or deleted later" if report.wasted else ""
    )
    legend = "".join(
        f'<span><i style="background:{colour(g)}"></i>{html.escape(t)}</span>'
        for g, t in (
            ("apt x", "apt package"),
            ("python x", "Python package"),
            ("cache x", "package cache"),
            ("data x", "data file"),
            ("other x", "no package"),
            ("wasted", "shadowed or deleted later"),
            ("smaller", "smaller groups"),
        )
    )
    sections = [
        _table(
            "Layers",
            ("bytes", "layer", "wasted", "step"),
            (
                (
                    human(x.bytes),
                    str(x.index),
                    human(x.wasted) if x.wasted else "",
                    step(x.step, 200),
                )
                for x in report.layers
            ),
            "layers",
        ),
        _table(
            "Packages",
            ("bytes", "package", "version", "environment", "layers"),
            (
                (
                    human(p.bytes),
                    f"{p.kind} {p.name}",
                    p.version,
                    p.env,
                    ",".join(map(str, p.layers)),
                )
                for p in report.packages[:_ROWS]
            ),
            "packages",
        ),
        _table(
            "Duplicate libraries",
            ("beyond the largest", "library", "copies"),
            (
                (
                    human(d.wasted),
                    d.name,
                    "; ".join(f"{c.path} ({human(c.size)}, layer {c.layer})" for c in d.copies),
                )
                for d in report.duplicates[:_ROWS]
            ),
            "duplicates",
        ),
        _table(
            "Data files",
            ("bytes", "path", "layer", "why"),
            ((human(f.size), f.path, str(f.layer), f.why) for f in report.data_files[:_ROWS]),
            "data-files",
        ),
        _table(
            "Wasted",
            ("bytes", "path", "written by", "how"),
            (
                (
                    human(w.size),
                    w.path,
                    f"layer {w.layer}",
                    w.how + ("" if w.by is None else f" by layer {w.by}"),
                )
                for w in report.waste
            ),
            "waste",
        ),
        _table(
            "Package caches",
            ("bytes", "cache", "files"),
            ((human(c.bytes), c.name, str(c.files)) for c in report.caches),
            "caches",
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{html.escape('reprolock size: ' + image)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>{html.escape(image)}</h1>"
        f'<p class="summary">{html.escape(summary)}</p>'
        f'<p class="legend">{legend}</p>{treemap(report)}' + "".join(sections) + "</body></html>\n"
    )
