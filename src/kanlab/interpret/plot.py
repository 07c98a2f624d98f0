"""Plots of a KAN: the network diagram with every edge's learned curve, and one edge with its data.

matplotlib is imported only here and only when a plot is made; figures are built with
``matplotlib.figure.Figure`` directly (no pyplot, no global state, any backend), so ``fig.savefig("net.png")``
works headless and Jupyter shows the returned figure.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .attribution import _check_model, attribute, capture_layer_inputs

__all__ = ["plot", "plot_edge", "edge_curve", "default_inputs"]


def default_inputs(model, n: int = 512) -> Tensor:
    """Inputs spread uniformly over the first layer's grid range (used when no data are given)."""
    first = model.layers[0]
    p = next(model.parameters())
    lo, hi = getattr(first.basis, "grid_range", (-1.0, 1.0))
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(n, model.in_features, generator=gen, dtype=torch.float64)
    return (lo + (hi - lo) * u).to(device=p.device, dtype=p.dtype)


@torch.no_grad()
def edge_curve(model, l: int, i: int, j: int, h: Tensor, n: int = 100) -> tuple[Tensor, Tensor]:
    """``(t, φ(t))``: edge ``(l, i, j)`` evaluated on ``n`` points spanning its inputs ``h[:, i]``."""
    layer = model.layers[l]
    lo, hi = float(h[:, i].min()), float(h[:, i].max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    t = torch.linspace(lo, hi, n, dtype=h.dtype, device=h.device)
    inp = h[:1].expand(n, -1).clone()
    inp[:, i] = t
    return t.cpu(), layer.edge_outputs(inp)[:, j, i].cpu()


def _edge_label(layer, j: int, i: int) -> str:
    return layer.symbolic_name(j, i)


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _sub_outputs(model, k: int, xs: list[float]) -> list[float]:
    """x positions of the KAN-layer outputs feeding node layer ``k`` (mult nodes take two, side by side)."""
    n_sum, n_mult = model.width_pairs[k]
    out = list(xs[:n_sum])
    for m in range(n_mult):
        cx = xs[n_sum + m]
        out += [cx - 0.015, cx + 0.015]
    return out


def plot(model, x: Tensor | None = None, *, names: Sequence[str] | None = None,
         output_names: Sequence[str] | None = None, beta: float = 3.0, figsize: tuple | None = None,
         title: str | None = None):
    """The network diagram: nodes per layer (inputs at the bottom), every active edge drawn as its learned
    curve in a small box between the two nodes it joins, edge opacity by importance (``tanh(beta·score)``),
    symbolic edges titled with their function, multiplication nodes marked ``×``.

    Arguments:
        x: inputs ``(N, n_inputs)`` for the curves' ranges and the importance (default: uniform over the
            first layer's grid range).
        names, output_names: labels of the inputs and outputs (default: ``model.names`` or ``x1, ...``;
            ``y1, ...``).
    Returns a ``matplotlib.figure.Figure``; its edge boxes are the axes with ``gid`` ``"edge l,i,j"``.
    """
    _check_model(model)
    x = default_inputs(model) if x is None else x
    names = list(names or getattr(model, "names", None) or [f"x{k + 1}" for k in range(model.in_features)])
    if len(names) != model.in_features:
        raise ValueError(f"need {model.in_features} input names, got {len(names)}")
    output_names = list(output_names or [f"y{k + 1}" for k in range(model.out_features)])
    attr = attribute(model, x)
    inputs = capture_layer_inputs(model, x)
    n_layers = len(model.layers)
    widest = max(sum(p) for p in model.width_pairs)
    edges_per_layer = [int((layer.mask > 0).sum()) for layer in model.layers]
    fig = _figure(figsize or (max(4.0, 1.3 * max(widest, max(edges_per_layer, default=1))), 2.4 * n_layers + 1))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.35, n_layers + 0.35)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    node_x = []
    for k, (n_sum, n_mult) in enumerate(model.width_pairs):
        n = n_sum + n_mult
        xs = [(m + 0.5) / n for m in range(n)]
        node_x.append(xs)
        for m, cx in enumerate(xs):
            if m < n_sum:
                ax.scatter([cx], [k], s=60, c="black", zorder=3, gid=f"node {k},{m}")
            else:
                ax.scatter([cx], [k], s=90, c="white", edgecolors="black", zorder=3, gid=f"node {k},{m}")
                ax.text(cx, k, "×", ha="center", va="center", fontsize=9, zorder=4)
    for m, name in enumerate(names):
        ax.text(node_x[0][m], -0.2, name, ha="center", va="top", fontsize=11, gid="input-name")
    for m, name in enumerate(output_names):
        ax.text(node_x[-1][m], n_layers + 0.2, name, ha="center", va="bottom", fontsize=11, gid="output-name")
    box_h = 0.5
    for l, layer in enumerate(model.layers):
        active = [(j, i) for j in range(layer.out_features) for i in range(layer.in_features) if layer.mask[j, i] > 0]
        targets = _sub_outputs(model, l + 1, node_x[l + 1])
        score = attr.edge_score[l]
        n_e = max(len(active), 1)
        box_w = min(0.8 / n_e, 0.18)
        for e, (j, i) in enumerate(active):
            bx = (e + 0.5) / n_e
            alpha = float(math.tanh(beta * float(score[j, i]))) if math.isfinite(float(score[j, i])) else 1.0
            alpha = max(alpha, 0.08)
            y0, y1 = l + 0.5 - box_h / 2, l + 0.5 + box_h / 2
            color = "tab:red" if layer.symbolic_name(j, i) else "black"
            ax.plot([node_x[l][i], bx], [l, y0], color=color, alpha=alpha, lw=1)
            ax.plot([bx, targets[j]], [y1, l + 1], color=color, alpha=alpha, lw=1)
            # the box, in figure coordinates
            fx0, fy0 = ax.transData.transform((bx - box_w / 2, y0))
            fx1, fy1 = ax.transData.transform((bx + box_w / 2, y1))
            inv = fig.transFigure.inverted()
            (px0, py0), (px1, py1) = inv.transform((fx0, fy0)), inv.transform((fx1, fy1))
            sub = fig.add_axes((px0, py0, px1 - px0, py1 - py0))
            sub.set_gid(f"edge {l},{i},{j}")
            t, v = edge_curve(model, l, i, j, inputs[l])
            sub.plot(t.numpy(), v.numpy(), color=color, alpha=alpha, lw=1.5)
            sub.set_xticks([])
            sub.set_yticks([])
            for spine in sub.spines.values():
                spine.set_alpha(alpha)
            label = _edge_label(layer, j, i)
            if label:
                sub.set_title(label, fontsize=8, color="tab:red", pad=2)
    return fig


def plot_edge(model, l: int, i: int, j: int, x: Tensor | None = None, *, bins: int = 30,
              figsize: tuple = (4.0, 3.5)):
    """Edge ``(l, i, j)``'s function over the range of its inputs, with the histogram of those inputs
    below it.  Returns a ``Figure`` with two axes (curve, histogram)."""
    _check_model(model)
    if not 0 <= l < len(model.layers):
        raise IndexError(f"layer {l} does not exist: the model has {len(model.layers)} KAN layers")
    layer = model.layers[l]
    if not (0 <= i < layer.in_features and 0 <= j < layer.out_features):
        raise IndexError(f"edge (l={l}, i={i}, j={j}) does not exist: layer {l} has {layer.in_features} inputs "
                         f"and {layer.out_features} outputs")
    x = default_inputs(model) if x is None else x
    h = capture_layer_inputs(model, x)[l]
    t, v = edge_curve(model, l, i, j, h, n=200)
    fig = _figure(figsize)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    name = layer.symbolic_name(j, i)
    top.plot(t.numpy(), v.numpy(), color="tab:red" if name else "tab:blue")
    top.set_ylabel(f"φ[{l}]({j},{i})")
    top.set_title(f"edge l={l}, i={i} → j={j}" + (f": {name}" if name else ""))
    bottom.hist(h[:, i].detach().cpu().numpy(), bins=bins, color="gray")
    bottom.set_xlabel(f"input {i} of layer {l}")
    bottom.set_ylabel("count")
    return fig
