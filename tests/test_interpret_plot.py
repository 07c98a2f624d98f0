"""Plots: structure (axes, curves, labels), never pixels; headless (matplotlib Figure, no pyplot)."""


import pytest
import torch

import kanlab
from kanlab.interpret import plot, plot_edge


def _model():
    model = kanlab.KAN([2, (2, 1), 1], grid_size=5, dtype=torch.float64)
    model.layers[0].set_symbolic(0, 0, "sin", (1.0, 3.0, 0.0, 0.0))
    model.layers[0].mask[3, 1] = 0  # a pruned edge is not drawn
    return model


def _x():
    return 2 * torch.rand(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1


def _edge_axes(fig):
    return {ax.get_gid(): ax for ax in fig.axes if (ax.get_gid() or "").startswith("edge ")}


def test_network_plot_structure():
    from matplotlib.figure import Figure

    model = _model()
    fig = plot(model, _x(), names=["alpha", "beta"], output_names=["f"])
    assert isinstance(fig, Figure)
    edges = _edge_axes(fig)
    n_active = sum(int((layer.mask > 0).sum()) for layer in model.layers)
    assert len(edges) == n_active == 2 * 4 - 1 + 3
    assert "edge 0,1,3" not in edges  # the masked edge
    for ax in edges.values():  # one learned curve per box, with real data in it
        (line,) = ax.get_lines()
        assert len(line.get_xdata()) == 100
    assert edges["edge 0,0,0"].get_title() == "sin"  # symbolic edges are labelled
    assert edges["edge 0,1,0"].get_title() == ""
    main = fig.axes[0]
    texts = [t.get_text() for t in main.texts]
    assert {"alpha", "beta", "f", "×"} <= set(texts)  # names and the multiplication node


def test_plot_without_data_and_savefig_headless(tmp_path):
    fig = plot(kanlab.KAN([1, 2, 1], grid_size=4))
    out = tmp_path / "net.png"
    fig.savefig(out, dpi=40)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_edge_opacity_follows_importance():
    model = kanlab.KAN([2, 1], grid_size=5, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].coef[0, 1] *= 1e-4
        model.layers[0].base_weight[0, 1] = 0
    edges = _edge_axes(plot(model, _x()))
    strong = edges["edge 0,0,0"].get_lines()[0].get_alpha()
    weak = edges["edge 0,1,0"].get_lines()[0].get_alpha()
    assert strong > 0.5 > weak


def test_plot_edge_has_curve_and_histogram():
    model = _model()
    fig = plot_edge(model, 0, 1, 0, _x(), bins=12)
    curve_ax, hist_ax = fig.axes
    (line,) = curve_ax.get_lines()
    assert len(line.get_xdata()) == 200
    assert len(hist_ax.patches) == 12
    assert sum(p.get_height() for p in hist_ax.patches) == 200
    assert "sin" in plot_edge(model, 0, 0, 0, _x()).axes[0].get_title()
    with pytest.raises(IndexError, match="does not exist"):
        plot_edge(model, 0, 5, 0)


def test_plot_validates_names():
    with pytest.raises(ValueError, match="2 input names"):
        plot(kanlab.KAN([2, 1], grid_size=3), names=["only"])
