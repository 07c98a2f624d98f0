"""Inline SVG drawings and the page assets of the HTML report (no external resources, no JS libraries).

Pure functions from plain Python data (lists of floats, dicts) to SVG/HTML strings; :mod:`.report` gathers
the data from a model.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Sequence

__all__ = ["network_svg", "line_chart_svg", "edge_data_json", "PAGE_CSS", "PAGE_JS", "esc", "fmt"]


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers as short strings (``1.23e-04``); other values as text; nan/None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.{digits - 1}e}"
    return str(value)


def _polyline(xs: Sequence[float], ys: Sequence[float], box: tuple[float, float, float, float],
              x_range: tuple[float, float], y_range: tuple[float, float]) -> str:
    x0, y0, w, h = box
    lo_x, hi_x = x_range
    lo_y, hi_y = y_range
    sx = w / (hi_x - lo_x) if hi_x > lo_x else 0.0
    sy = h / (hi_y - lo_y) if hi_y > lo_y else 0.0
    pts = []
    for x, y in zip(xs, ys):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        px = x0 + (x - lo_x) * sx if sx else x0 + w / 2
        py = y0 + h - (y - lo_y) * sy if sy else y0 + h / 2
        pts.append(f"{px:.1f},{py:.1f}")
    return " ".join(pts)


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def network_svg(layers: list[dict[str, Any]], edges: list[dict[str, Any]], width: int = 960) -> str:
    """The network: node rows bottom (inputs) to top (outputs); every edge ``(l, j, i)`` drawn as its curve in
    a small box between the rows, joined to its input and output nodes; opacity by importance.

    ``layers[r]`` (one per node row) holds ``labels`` and ``kinds`` (``"sum"``/``"mult"``); for a KAN layer
    ``l``, ``layers[l]["targets"][j]`` is the node of row ``l + 1`` that output ``j`` feeds.
    ``edges`` entries carry ``id, l, i, j, xs, ys, importance (0..1), state ("numeric"/"symbolic"/"pruned"),
    formula``.
    """
    row_gap, box_row, margin = 150, 60, 40
    n_rows = len(layers)
    height = margin * 2 + (n_rows - 1) * row_gap + 30
    node_y = [height - margin - r * row_gap for r in range(n_rows)]

    def node_x(row: int, k: int) -> float:
        n = len(layers[row]["labels"])
        return width * (k + 0.5) / n

    by_layer: dict[int, list[dict[str, Any]]] = {}
    for e in edges:
        by_layer.setdefault(e["l"], []).append(e)
    parts = [f'<svg class="network" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="network diagram">']
    boxes: list[str] = []  # drawn after every wire, so that no wire covers a box
    for l, group in sorted(by_layer.items()):
        group = sorted(group, key=lambda e: (e["i"], e["j"]))
        n = len(group)
        size = max(10.0, min(54.0, width / max(n, 1) * 0.8))
        by = node_y[l] - row_gap / 2 - size / 2
        targets = layers[l]["targets"]
        for k, e in enumerate(group):
            bx = width * (k + 0.5) / n - size / 2
            op = 0.12 + 0.88 * max(0.0, min(1.0, e["importance"]))
            if e["state"] == "pruned":
                op = 0.08
            cls = f'edge edge-{e["state"]}'
            xi, yi = node_x(l, e["i"]), node_y[l]
            tgt = targets[e["j"]]
            xo, yo = node_x(l + 1, tgt), node_y[l + 1]
            rng_y = _range(e["ys"])
            line = _polyline(e["xs"], e["ys"], (bx + 3, by + 3, size - 6, size - 6), _range(e["xs"]), rng_y)
            title = f'{e["name"]}: importance {fmt(e["raw_importance"])}'
            if e.get("formula"):
                title += f' · {e["formula"]}'
            parts.append(
                f'<g class="wire wire-{e["state"]}" data-for="{esc(e["id"])}" style="opacity:{op:.3f}">'
                f'<line x1="{xi:.1f}" y1="{yi:.1f}" x2="{bx + size / 2:.1f}" y2="{by + size:.1f}"/>'
                f'<line x1="{bx + size / 2:.1f}" y1="{by:.1f}" x2="{xo:.1f}" y2="{yo:.1f}"/></g>')
            boxes.append(
                f'<g class="{cls}" data-id="{esc(e["id"])}" tabindex="0" style="opacity:{op:.3f}">'
                f'<title>{esc(title)}</title>'
                f'<rect x="{bx:.1f}" y="{by:.1f}" width="{size:.1f}" height="{size:.1f}" rx="3"/>'
                f'<polyline points="{line}"/></g>')
    parts.extend(boxes)
    for r, row in enumerate(layers):
        for k, (label, kind) in enumerate(zip(row["labels"], row["kinds"])):
            x, y = node_x(r, k), node_y[r]
            if kind == "mult":
                parts.append(f'<g class="node mult"><circle cx="{x:.1f}" cy="{y:.1f}" r="9"/>'
                             f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">×</text></g>')
            else:
                parts.append(f'<g class="node"><circle cx="{x:.1f}" cy="{y:.1f}" r="6"/></g>')
            if label:
                dy = 22 if r == 0 else -14
                parts.append(f'<text class="node-label" x="{x:.1f}" y="{y + dy:.1f}" '
                             f'text-anchor="middle">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart_svg(series: list[dict[str, Any]], *, x_label: str, y_label: str, log_x: bool = False,
                   log_y: bool = True, markers: Sequence[tuple[float, str]] = (), width: int = 640,
                   height: int = 300, css_class: str = "chart") -> str:
    """A line chart of ``series`` (``{"name", "x", "y", "color", "dots"}``) with axes, ticks and a legend.
    ``markers`` are vertical dashed lines ``(x, label)`` (e.g. grid-extension stages)."""
    left, right, top, bottom = 70, 20, 20, 45
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    ty = (lambda v: math.log10(v)) if log_y else (lambda v: v)

    def ok(v: Any, log: bool) -> bool:
        return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not log)

    xs_all = [tx(x) for s in series for x, y in zip(s["x"], s["y"]) if ok(x, log_x) and ok(y, log_y)]
    ys_all = [ty(y) for s in series for x, y in zip(s["x"], s["y"]) if ok(x, log_x) and ok(y, log_y)]
    x_rng, y_rng = _range(xs_all), _range(ys_all)
    box = (left, top, width - left - right, height - top - bottom)
    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
           f'<rect class="frame" x="{left}" y="{top}" width="{box[2]}" height="{box[3]}"/>']

    def px(v: float) -> float:
        return left + (v - x_rng[0]) / (x_rng[1] - x_rng[0]) * box[2]

    def py(v: float) -> float:
        return top + box[3] - (v - y_rng[0]) / (y_rng[1] - y_rng[0]) * box[3]

    for axis, (lo, hi), log in (("x", x_rng, log_x), ("y", y_rng, log_y)):
        ticks = _ticks(lo, hi, log)
        for t in ticks:
            label = _tick_label(10 ** t if log else t)
            if axis == "x":
                out.append(f'<line class="tick" x1="{px(t):.1f}" y1="{top + box[3]}" x2="{px(t):.1f}" '
                           f'y2="{top + box[3] + 4}"/><text x="{px(t):.1f}" y="{top + box[3] + 17}" '
                           f'text-anchor="middle">{label}</text>')
            else:
                out.append(f'<line class="grid" x1="{left}" y1="{py(t):.1f}" x2="{left + box[2]}" '
                           f'y2="{py(t):.1f}"/><text x="{left - 6}" y="{py(t) + 4:.1f}" '
                           f'text-anchor="end">{label}</text>')
    for x, label in markers:
        if ok(x, log_x) and x_rng[0] <= tx(x) <= x_rng[1]:
            out.append(f'<line class="marker" x1="{px(tx(x)):.1f}" y1="{top}" x2="{px(tx(x)):.1f}" '
                       f'y2="{top + box[3]}"/><text class="marker-label" x="{px(tx(x)) + 3:.1f}" '
                       f'y="{top + 12}">{esc(label)}</text>')
    for k, s in enumerate(series):
        pts = [(px(tx(x)), py(ty(y))) for x, y in zip(s["x"], s["y"]) if ok(x, log_x) and ok(y, log_y)]
        color = s.get("color", "#333")
        if len(pts) > 1:
            out.append(f'<polyline class="series" stroke="{color}" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        if s.get("dots"):
            out.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{color}"/>' for a, b in pts)
        out.append(f'<text x="{left + box[2] - 8}" y="{top + 16 + 16 * k}" fill="{color}" text-anchor="end">'
                   f'— {esc(s["name"])}</text>')
    out.append(f'<text x="{left + box[2] / 2:.0f}" y="{height - 6}" text-anchor="middle">{esc(x_label)}</text>')
    out.append(f'<text transform="translate(14,{top + box[3] / 2:.0f}) rotate(-90)" text-anchor="middle">'
               f'{esc(y_label)}</text></svg>')
    return "".join(out)


def _tick_label(value: float) -> str:
    return f"{value:g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.0e}"


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Tick positions in plot coordinates (log10 of the value for log axes)."""
    if log:
        first, last = math.ceil(lo), math.floor(hi)
        if last - first >= 2:
            step = max(1, (last - first) // 6 + 1)
            return [float(t) for t in range(first, last + 1, step)]
        nice = [math.log10(m * 10.0 ** e) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
        inside = [t for t in nice if lo <= t <= hi]
        if len(inside) >= 2:
            return inside
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 5)) if span > 0 else 1.0
    for m in (1, 2, 5, 10):
        if span / (step * m) <= 6:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step) + 1)]


PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1e0;font-size:13px}
main{display:grid;grid-template-columns:minmax(0,1fr) 380px;gap:18px;padding:18px 24px}
section{background:#fff;border:1px solid #e1e5ec;border-radius:8px;padding:12px 16px;margin-bottom:18px}
h2{font-size:16px;margin:0 0 10px}
.formula{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f1f4f9;padding:8px;border-radius:4px;
 overflow-x:auto;white-space:pre-wrap}
.network line{stroke:#3b6fd8;stroke-width:1.3}.network rect{fill:#fff;stroke:#3b6fd8;stroke-width:1.2}
.network polyline{fill:none;stroke:#111;stroke-width:1.5;pointer-events:none}
.network .edge{cursor:pointer}.network .edge:hover rect,.network .edge.selected rect{stroke:#e8590c;stroke-width:2.5}
.network .edge:focus{outline:none}.network .edge-symbolic rect{stroke:#2b8a3e;fill:#ebfbee}
.network .wire{pointer-events:none}.network .wire-symbolic line{stroke:#2b8a3e}
.network .wire-pruned line{stroke-dasharray:3 3}.network .wire.selected line{stroke:#e8590c;stroke-width:2.2}
.node circle{fill:#1d2330}.node.mult circle{fill:#fff;stroke:#1d2330;stroke-width:1.5}
.node text,.node-label{font-size:12px}
#panel{position:sticky;top:12px;align-self:start}
#panel svg{background:#fff}#panel .empty{color:#6b7385;font-size:13px}
.chart text,#panel text{font-size:11px;fill:#39404d}.chart .frame,#panel .frame{fill:none;stroke:#c3c9d4}
.chart .grid,#panel .grid{stroke:#eef0f4}.chart .tick{stroke:#8a92a3}.chart .series{fill:none;stroke-width:1.8}
.chart .marker{stroke:#aab;stroke-dasharray:4 3}.chart .marker-label{fill:#667;font-size:10px}
#panel .curve{fill:none;stroke:#e8590c;stroke-width:2}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eceff3;
 text-align:left}th{background:#f1f4f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7385;font-size:13px}
"""

PAGE_JS = """
(function () {
  "use strict";
  var edges = JSON.parse(document.getElementById("edge-data").textContent);
  var panel = document.getElementById("edge-plot");
  var info = document.getElementById("edge-info");
  var pinned = null;
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function num(v) { return typeof v === "number" && isFinite(v); }
  function range(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (num(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (!isFinite(lo)) { return [0, 1]; }
    if (hi - lo < 1e-12 * Math.max(1, Math.abs(lo))) { lo -= 0.5; hi += 0.5; }
    var pad = 0.06 * (hi - lo);
    return [lo - pad, hi + pad];
  }
  function label(v) { if (!num(v)) { return "\u2013"; } return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : (+v.toPrecision(3)).toString(); }
  function show(id) {
    var e = edges[id];
    if (!e) { return; }
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    var W = 340, H = 260, L = 52, R = 10, T = 12, B = 34, w = W - L - R, h = H - T - B;
    var xr = range(e.xs), yr = range(e.ys);
    var sx = function (x) { return L + (x - xr[0]) / (xr[1] - xr[0]) * w; };
    var sy = function (y) { return T + h - (y - yr[0]) / (yr[1] - yr[0]) * h; };
    panel.appendChild(el("rect", {"class": "frame", x: L, y: T, width: w, height: h}));
    for (var k = 0; k <= 4; k++) {
      var xv = xr[0] + (xr[1] - xr[0]) * k / 4, yv = yr[0] + (yr[1] - yr[0]) * k / 4;
      panel.appendChild(el("line", {"class": "grid", x1: L, x2: L + w, y1: sy(yv), y2: sy(yv)}));
      panel.appendChild(el("text", {x: L - 5, y: sy(yv) + 4, "text-anchor": "end"}, label(yv)));
      panel.appendChild(el("text", {x: sx(xv), y: T + h + 15, "text-anchor": "middle"}, label(xv)));
    }
    if (yr[0] < 0 && yr[1] > 0) {
      panel.appendChild(el("line", {"class": "frame", x1: L, x2: L + w, y1: sy(0), y2: sy(0)}));
    }
    var pts = [];
    for (var i = 0; i < e.xs.length; i++) {
      if (num(e.xs[i]) && num(e.ys[i])) { pts.push(sx(e.xs[i]).toFixed(1) + "," + sy(e.ys[i]).toFixed(1)); }
    }
    panel.appendChild(el("polyline", {"class": "curve", points: pts.join(" ")}));
    panel.appendChild(el("text", {x: L + w / 2, y: H - 4, "text-anchor": "middle"}, e.input));
    info.textContent = e.name + " \\u2014 importance " + label(e.raw_importance) +
      (e.formula ? " \\u2014 " + e.formula : "") + (e.state !== "numeric" ? " (" + e.state + ")" : "") +
      (pinned === id ? " [pinned: click again to release]" : "");
  }
  function select(id) {
    document.querySelectorAll(".selected").forEach(function (n) { n.classList.remove("selected"); });
    if (id !== null) {
      document.querySelectorAll('[data-id="' + id + '"], [data-for="' + id + '"]').forEach(function (n) {
        n.classList.add("selected");
      });
    }
  }
  document.querySelectorAll(".network .edge").forEach(function (node) {
    var id = node.getAttribute("data-id");
    node.addEventListener("mouseenter", function () { if (pinned === null) { show(id); } });
    node.addEventListener("focus", function () { if (pinned === null) { show(id); } });
    node.addEventListener("click", function () {
      pinned = pinned === id ? null : id;
      select(pinned);
      show(id);
    });
  });
  var first = document.body.getAttribute("data-first-edge");
  if (first) { show(first); }
  document.body.setAttribute("data-ready", "1");
})();
"""


def edge_data_json(edges: list[dict[str, Any]]) -> str:
    """The edges for the page's script, keyed by id (curves rounded to 5 significant digits)."""
    def clean(v: float) -> float | None:
        return float(f"{v:.5g}") if isinstance(v, (int, float)) and math.isfinite(v) else None

    data = {e["id"]: {"name": e["name"], "input": e["input"], "xs": [clean(v) for v in e["xs"]],
                      "ys": [clean(v) for v in e["ys"]], "raw_importance": clean(e["raw_importance"]),
                      "formula": e.get("formula") or "", "state": e["state"]} for e in edges}
    # "</" must not appear inside a <script> element
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
