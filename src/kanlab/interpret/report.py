"""A self-contained HTML report of a KAN: one file, no network access, no external scripts or fonts.

    kanlab.report(model, "report.html", data=x, history=history)     # or: kanlab report RUN_DIR

The page shows the network with every edge drawn as its learned curve (opacity by importance; pruned edges
dashed, symbolic edges green with their formula), the symbolic formula of the whole model when there is one,
a table of edges by importance, the training curves, and the KAN-vs-MLP comparison when present.  Hovering
an edge (or focusing it with the keyboard) shows its curve enlarged with axes; clicking pins it.

Edge curves come from :meth:`KANLinear.edge_outputs` over the range of values that reach each layer;
importance is the mean ``|φ|`` over the data (or, without data, over uniform samples of the input grid
range).  Symbolic formulas are used only when :mod:`kanlab.interpret.symbolic` is importable and the layers
report symbolic edges; everything else works without it.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from .report_svg import PAGE_CSS, PAGE_JS, edge_data_json, esc, fmt, line_chart_svg, network_svg

__all__ = ["report", "collect_edges", "model_formulas", "edge_formulas", "render_html"]

MAX_EDGES_DRAWN = 4000


# ---- data from the model ---------------------------------------------------------------------------------
def _input_box(model: nn.Module) -> Tensor:
    """``(in, 2)`` low/high of each input: the first layer's grid range, or [-1, 1]."""
    layer = model.layers[0]
    basis = layer.basis
    n_in = layer.in_features
    grid = getattr(basis, "grid", None)
    order = getattr(basis, "order", None)
    if isinstance(grid, Tensor) and grid.dim() == 2 and isinstance(order, int) and grid.shape[1] > 2 * order + 1:
        lo, hi = grid[:, order].double(), grid[:, grid.shape[1] - order - 1].double()
        return torch.stack([lo, hi], dim=1).cpu()
    rng = getattr(basis, "grid_range", None)
    if isinstance(rng, (tuple, list)) and len(rng) == 2:
        return torch.tensor([[float(rng[0]), float(rng[1])]] * n_in, dtype=torch.float64)
    return torch.tensor([[-1.0, 1.0]] * n_in, dtype=torch.float64)


def _samples(model: nn.Module, data: Any, max_rows: int = 2000) -> tuple[Tensor, bool]:
    """Inputs to evaluate the model on: the given data (subsampled) or uniform samples of the input box."""
    p = next(model.parameters())
    if data is not None:
        if isinstance(data, Mapping):
            data = data.get("train_input")
        x = torch.as_tensor(data)
        if x.dim() != 2 or x.shape[1] != model.layers[0].in_features:
            raise ValueError(f"report data must have shape (N, {model.layers[0].in_features}), got "
                             f"{tuple(x.shape)}")
        if len(x) > max_rows:
            x = x[torch.linspace(0, len(x) - 1, max_rows).long()]
        return x.to(dtype=p.dtype, device=p.device), True
    box = _input_box(model)
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(512, box.shape[0], generator=gen, dtype=torch.float64)
    return (box[:, 0] + u * (box[:, 1] - box[:, 0])).to(dtype=p.dtype, device=p.device), False


def _node_rows(model: nn.Module, names: Sequence[str] | None, output_names: Sequence[str] | None) -> list[dict]:
    pairs = getattr(model, "width_pairs", None) or [(w, 0) for w in model.widths]
    rows = []
    for r, (n_sum, n_mult) in enumerate(pairs):
        n = n_sum + n_mult
        if r == 0:
            labels = list(names) if names else [f"x{k + 1}" for k in range(n)]
        elif r == len(pairs) - 1:
            labels = list(output_names) if output_names else (["out"] if n == 1 else [f"out{k + 1}" for k in range(n)])
        else:
            labels = [""] * n
        rows.append({"labels": labels, "kinds": ["sum"] * n_sum + ["mult"] * n_mult})
    for l in range(len(pairs) - 1):
        n_sum, n_mult = pairs[l + 1]
        rows[l]["targets"] = [j if j < n_sum else n_sum + (j - n_sum) // 2 for j in range(n_sum + 2 * n_mult)]
    return rows


def _node_name(rows: list[dict], r: int, k: int) -> str:
    label = rows[r]["labels"][k] if k < len(rows[r]["labels"]) else ""
    return label or f"h{r}.{k + 1}"


@torch.no_grad()
def collect_edges(model: nn.Module, data: Any = None, *, names: Sequence[str] | None = None,
                  output_names: Sequence[str] | None = None, n_points: int = 64) -> tuple[list[dict], list[dict]]:
    """Node rows and one record per edge: ``id, l, i, j, name, input, xs, ys (n_points), raw_importance
    (mean |φ|), importance (0..1 within its layer), state, formula``."""
    if not hasattr(model, "layers") or not hasattr(model, "layer_inputs"):
        raise TypeError(f"the report needs a kanlab KAN (layers of KANLinear), got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        x, _ = _samples(model, data)
        inputs = model.layer_inputs(x)
        rows = _node_rows(model, names, output_names)
        formulas = edge_formulas(model, names)
        edges = []
        for l, layer in enumerate(model.layers):
            z = inputs[l]
            lo, hi = z.min(dim=0).values, z.max(dim=0).values
            same = hi - lo <= 1e-9
            lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
            t = torch.linspace(0, 1, n_points, dtype=z.dtype, device=z.device)[:, None]
            grid = lo + (hi - lo) * t  # (n_points, in)
            curves = layer.edge_outputs(grid).double().cpu()  # (n_points, out, in)
            scale = layer.edge_outputs(z).abs().mean(dim=0).double().cpu()  # (out, in)
            top = float(scale.max()) if scale.numel() else 0.0
            mask = layer.mask.cpu()
            sym = getattr(layer, "symbolic_mask", torch.zeros_like(layer.mask)).cpu()
            grid_c = grid.double().cpu()
            for j in range(layer.out_features):
                tgt = rows[l]["targets"][j]
                for i in range(layer.in_features):
                    state = "pruned" if mask[j, i] == 0 else ("symbolic" if sym[j, i] != 0 else "numeric")
                    src, dst = _node_name(rows, l, i), _node_name(rows, l + 1, tgt)
                    edges.append({
                        "id": f"{l}-{j}-{i}", "l": l, "i": i, "j": j, "state": state,
                        "name": f"φ[{l}]({src} → {dst}{'' if tgt == j else f' #{j + 1}'})",
                        "input": src, "xs": grid_c[:, i].tolist(), "ys": curves[:, j, i].tolist(),
                        "raw_importance": float(scale[j, i]),
                        "importance": float(scale[j, i]) / top if top > 0 else 0.0,
                        "formula": formulas.get((l, j, i)),
                    })
        return rows, edges
    finally:
        model.train(was_training)


# ---- symbolic formulas (optional, duck-typed) ------------------------------------------------------------
def _symbolic_module():
    try:
        return importlib.import_module("kanlab.interpret.symbolic")
    except ImportError:
        return None


def _has_symbolic_edges(model: nn.Module) -> bool:
    return any(bool((getattr(layer, "symbolic_mask", torch.zeros(1)) != 0).any()) for layer in model.layers)


def _affine_text(entry: Mapping[str, Any]) -> str | None:
    """``a*f(b*x+c)+d`` from a JSON-safe symbolic-edge record (best effort over likely field names)."""
    fn = next((entry[k] for k in ("formula", "expr", "expression") if isinstance(entry.get(k), str)), None)
    if fn is not None:
        return fn
    name = next((entry[k] for k in ("fn", "name", "function", "primitive") if isinstance(entry.get(k), str)), None)
    if name is None:
        return None
    aff = entry.get("affine") or entry.get("params")
    if isinstance(aff, (list, tuple)) and len(aff) == 4 and all(isinstance(v, (int, float)) for v in aff):
        a, b, c, d = aff
        return f"{fmt(float(a))}*{name}({fmt(float(b))}*x + {fmt(float(c))}) + {fmt(float(d))}"
    return f"{name}(x)"


def edge_formulas(model: nn.Module, names: Sequence[str] | None = None) -> dict[tuple[int, int, int], str]:
    """``{(l, j, i): text}`` for symbolic edges: from ``kanlab.interpret.symbolic.edge_formula(model, l, i, j)``
    when that exists, else from the layers' JSON-safe extra state; empty without symbolic edges."""
    if not _has_symbolic_edges(model):
        return {}
    out: dict[tuple[int, int, int], str] = {}
    mod = _symbolic_module()
    fn = getattr(mod, "edge_formula", None) if mod is not None else None
    for l, layer in enumerate(model.layers):
        sym = getattr(layer, "symbolic_mask", None)
        if sym is None:
            continue
        for j, i in (sym != 0).nonzero().tolist():
            text = None
            if callable(fn):
                try:
                    text = str(fn(model, l, i, j))
                except Exception:  # noqa: BLE001 - an optional extra must never break the report
                    text = None
            if text:
                out[(l, j, i)] = text
        if hasattr(layer, "get_extra_state"):
            try:
                state = layer.get_extra_state()
            except Exception:  # noqa: BLE001
                state = None
            records = state.get("edges") if isinstance(state, Mapping) else state
            if isinstance(records, Sequence) and not isinstance(records, (str, bytes)):
                for rec in records:
                    if not isinstance(rec, Mapping):
                        continue
                    j = rec.get("out", rec.get("j"))
                    i = rec.get("in", rec.get("i"))
                    text = _affine_text(rec)
                    if isinstance(j, int) and isinstance(i, int) and text and (l, j, i) not in out:
                        out[(l, j, i)] = text
    return out


def model_formulas(model: nn.Module, names: Sequence[str] | None = None) -> list[str] | None:
    """The whole model's formula (one string per output) from ``kanlab.interpret.symbolic.formula`` when it is
    available and the model has symbolic edges; None otherwise."""
    mod = _symbolic_module()
    fn = getattr(mod, "formula", None) if mod is not None else None
    if not callable(fn) or not _has_symbolic_edges(model):
        return None
    try:
        value = fn(model, list(names) if names else None)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


# ---- the page --------------------------------------------------------------------------------------------
def _history_dict(history: Any) -> dict[str, list] | None:
    if history is None:
        return None
    if hasattr(history, "as_dict"):
        history = history.as_dict()
    if not isinstance(history, Mapping) or not history.get("train_loss"):
        return None
    return {k: list(v) for k, v in history.items() if isinstance(v, (list, tuple))}


def _history_section(history: dict[str, list] | None) -> str:
    if not history:
        return '<p class="muted">No training history was given.</p>'
    steps = list(range(1, len(history["train_loss"]) + 1))
    series = [{"name": "train", "x": steps, "y": history["train_loss"], "color": "#3b6fd8"}]
    if any(isinstance(v, (int, float)) and math.isfinite(v) for v in history.get("test_loss", [])):
        series.append({"name": "test", "x": steps, "y": history["test_loss"], "color": "#e8590c"})
    markers = []
    grids = history.get("grid_size") or []
    for k, g in enumerate(grids):
        if k == 0 or g != grids[k - 1]:
            markers.append((k + 1, f"G={g}"))
    return line_chart_svg(series, x_label="step", y_label="loss (RMSE for MSE fits)", markers=markers)


def _comparison_rows(comparison: Any, result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if comparison is not None:
        rows = comparison.get("rows") if isinstance(comparison, Mapping) else comparison
        return [dict(r) for r in rows or []]
    if result and "mlp_test_rmse" in result:
        return [{"model": "KAN", "width": result.get("width"), "n_params": result.get("n_params"),
                 "train_rmse": result.get("train_rmse"), "test_rmse": result.get("test_rmse"),
                 "seconds": result.get("seconds")},
                {"model": "MLP", "width": result.get("mlp_width"), "n_params": result.get("mlp_n_params"),
                 "train_rmse": result.get("mlp_train_rmse"), "test_rmse": result.get("mlp_test_rmse"),
                 "seconds": result.get("mlp_seconds")}]
    return []


def _comparison_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = [c for c in ("model", "width", "grid_size", "n_params", "train_rmse", "test_rmse", "seconds")
            if any(c in r for r in rows)]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{esc(fmt(r.get(c)))}</td>' if isinstance(r.get(c), (int, float)) and c != "model"
        else f"<td>{esc(r.get(c) if not isinstance(r.get(c), list) else ','.join(map(str, r.get(c))))}</td>"
        for c in cols) + "</tr>" for r in rows)
    chart = ""
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(str(r.get("model", "?")).split()[0], []).append(r)
    colors = {"KAN": "#3b6fd8", "MLP": "#e8590c"}
    series = [{"name": name, "x": [r.get("n_params") for r in fam], "y": [r.get("test_rmse") for r in fam],
               "color": colors.get(name, "#555"), "dots": True}
              for name, fam in families.items()]
    if sum(len(f) for f in families.values()) >= 2:
        chart = line_chart_svg(series, x_label="parameters", y_label="test RMSE", log_x=True, log_y=True,
                               css_class="chart scaling")
    return (f'<section id="comparison"><h2>KAN vs MLP</h2>{chart}'
            f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>')


def render_html(*, title: str, summary: list[tuple[str, Any]], rows: list[dict], edges: list[dict],
                formulas: list[str] | None, history: dict | None, comparison: list[dict],
                output_names: Sequence[str]) -> str:
    """Assemble the page from collected data (see :func:`report`)."""
    drawn = edges if len(edges) <= MAX_EDGES_DRAWN else sorted(edges, key=lambda e: -e["raw_importance"])[
        :MAX_EDGES_DRAWN]
    summary_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in summary)
    if formulas:
        formula_html = "".join(f'<div class="formula">{esc(n)} = {esc(f)}</div>'
                               for n, f in zip(output_names, formulas))
    else:
        formula_html = ('<p class="muted">No symbolic formula: no edge has been snapped to a symbolic function '
                        '(see <code>kanlab.interpret.symbolic</code> / <code>kanlab fit --symbolic</code>).</p>')
    ranked = sorted(edges, key=lambda e: -e["raw_importance"])
    edge_rows = "".join(
        f'<tr><td>{esc(e["name"])}</td><td class="num">{esc(fmt(e["raw_importance"]))}</td>'
        f'<td>{esc(e["state"])}</td><td>{esc(e.get("formula") or "")}</td></tr>' for e in ranked[:200])
    more = f'<p class="muted">{len(ranked) - 200} less important edges not listed.</p>' if len(ranked) > 200 else ""
    first = ranked[0]["id"] if ranked else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{PAGE_CSS}</style></head>
<body data-first-edge="{esc(first)}">
<header><h1>{esc(title)}</h1><p>kanlab report · {esc(_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))}</p></header>
<main><div>
<section id="network"><h2>Network</h2>
<p class="muted">Each box is one edge's learned function φ; opacity shows its importance (mean |φ| on the
data). Hover or focus an edge to enlarge it, click to pin it.</p>{network_svg(rows, drawn)}</section>
<section id="formula"><h2>Symbolic formula</h2>{formula_html}</section>
<section id="training"><h2>Training</h2>{_history_section(history)}</section>
{_comparison_section(comparison)}
<section id="edges"><h2>Edges by importance</h2><table><thead><tr><th>edge</th><th>importance</th>
<th>state</th><th>formula</th></tr></thead><tbody>{edge_rows}</tbody></table>{more}</section>
</div>
<aside id="panel"><section><h2>Edge</h2><p id="edge-info" class="muted">Hover an edge of the network.</p>
<svg id="edge-plot" viewBox="0 0 340 260" width="340" height="260"></svg></section>
<section><h2>Model</h2><table>{summary_html}</table></section></aside>
</main>
<script type="application/json" id="edge-data">{edge_data_json(edges)}</script>
<script>{PAGE_JS}</script>
</body></html>
"""


def report(model: nn.Module, path: str | os.PathLike, *, data: Any = None, names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, history: Any = None, result: Mapping[str, Any] | None = None,
           comparison: Any = None, title: str | None = None, n_points: int = 64) -> Path:
    """Write a self-contained HTML report of a KAN and return its path.

    Arguments:
        model: a :class:`kanlab.KAN`.
        path: the ``.html`` file to write (a directory gets ``report.html``).
        data: inputs ``(N, n_in)`` (tensor, array, or a data dict's ``train_input``) for importance and curve
            ranges; default: uniform samples of the first layer's grid range.
        names, output_names: column names (default ``model.names`` / ``x1..``, ``out``).
        history: a :class:`~kanlab.train.History` or a dict with ``train_loss``/``test_loss``/``grid_size``.
        result: a ``kanlab fit`` result dict (metrics, ``formula``, MLP comparison, ``history``).
        comparison: rows (or ``{"rows": [...]}``) of ``model, n_params, test_rmse, ...`` as written by
            ``kanlab compare``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    names = list(names) if names is not None else getattr(model, "names", None)
    rows, edges = collect_edges(model, data, names=names, output_names=output_names, n_points=n_points)
    outputs = rows[-1]["labels"]
    formulas = model_formulas(model, names)
    if formulas is None and result and isinstance(result.get("formula"), (str, list)):
        formulas = [result["formula"]] if isinstance(result["formula"], str) else list(result["formula"])
    history = _history_dict(history if history is not None else (result or {}).get("history"))
    basis = {layer.basis.name for layer in model.layers}
    summary: list[tuple[str, Any]] = [
        ("widths", json.dumps(getattr(model, "widths", None))),
        ("basis", ", ".join(sorted(basis))),
        ("grid size", getattr(model, "grid_size", None)),
        ("parameters", sum(p.numel() for p in model.parameters() if p.requires_grad)),
        ("dtype", str(next(model.parameters()).dtype).replace("torch.", "")),
        ("inputs", ", ".join(rows[0]["labels"])),
    ]
    for key in ("train_rmse", "test_rmse", "formula_test_rmse", "seconds"):
        if result and isinstance(result.get(key), (int, float)):
            summary.append((key.replace("_", " "), float(result[key])))
    page = render_html(title=title or "KAN report", summary=summary, rows=rows, edges=edges, formulas=formulas,
                       history=history, comparison=_comparison_rows(comparison, result), output_names=outputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
