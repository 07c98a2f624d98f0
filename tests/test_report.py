"""The self-contained HTML report: content, offline-ness, optional symbolic formulas, the CLI, and the page in
headless Chromium (no console errors, hover/click enlarges an edge, screenshot)."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest
import torch

import kanlab
from kanlab.cli import main
from kanlab.interpret.report import collect_edges, report
from kanlab.layers import KANLinear
from kanlab.utils import seeded

from browser_support import open_page


@pytest.fixture(scope="module")
def trained():
    data = kanlab.make_dataset("exp(sin(pi*x)+y**2)", n_train=150, n_test=50, seed=0, dtype=torch.float64)
    with seeded(0):
        model = kanlab.KAN([2, (3, 1), 1], grid_size=3, dtype=torch.float64)
    history = kanlab.fit(model, data, steps=3, grids=[3, 5], seed=0)
    with torch.no_grad():
        model.layers[0].mask[1, 0] = 0.0
        model.layers[1].symbolic_mask[0, 2] = 1.0
    return model, data, history


COMPARISON = {"rows": [{"model": "KAN", "n_params": 50, "test_rmse": 1e-2}, {"model": "KAN", "n_params": 120,
                        "test_rmse": 2e-3}, {"model": "MLP", "n_params": 60, "test_rmse": 5e-2},
                       {"model": "MLP", "n_params": 240, "test_rmse": 2e-2}]}


def test_edges_curves_and_importance_match_the_layers(trained):
    model, data, _ = trained
    rows, edges = collect_edges(model, data, names=["x", "y"], n_points=20)
    assert [len(r["labels"]) for r in rows] == [2, 4, 1] and rows[1]["kinds"] == ["sum"] * 3 + ["mult"]
    assert len(edges) == 2 * 5 + 4 * 1
    e = next(e for e in edges if e["id"] == "0-3-1")
    x = torch.tensor(e["xs"], dtype=torch.float64)
    probe = torch.zeros(len(x), 2, dtype=torch.float64)
    probe[:, 1] = x
    torch.testing.assert_close(torch.tensor(e["ys"], dtype=torch.float64),
                               model.layers[0].edge_outputs(probe)[:, 3, 1].detach())
    expected = model.layers[0].edge_outputs(data["train_input"]).detach().abs().mean(0)[3, 1]
    assert e["raw_importance"] == pytest.approx(float(expected))
    assert min(e["xs"]) == pytest.approx(float(data["train_input"][:, 1].min()))
    states = {e["id"]: e["state"] for e in edges}
    assert states["0-1-0"] == "pruned" and states["1-0-2"] == "symbolic" and states["0-0-1"] == "numeric"
    assert max(e["importance"] for e in edges if e["l"] == 0) == pytest.approx(1.0)


def test_report_is_one_offline_file_with_every_section(trained, tmp_path):
    model, data, history = trained
    path = report(model, tmp_path, data=data, history=history, names=["x", "y"], comparison=COMPARISON)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://(?!www\.w3\.org/2000/svg)""", page)
    for section in ("network", "formula", "training", "comparison", "edges"):
        assert f'id="{section}"' in page
    assert page.count('class="edge edge-') == 14
    assert "G=3" in page and "G=5" in page  # grid-extension stages on the training curve
    data_json = json.loads(re.search(r'<script type="application/json" id="edge-data">(.*?)</script>', page,
                                     re.S).group(1))
    assert len(data_json) == 14 and all(len(v["xs"]) == 64 for v in data_json.values())


def test_symbolic_formulas_are_used_when_the_symbolic_module_provides_them(trained, tmp_path, monkeypatch):
    model, data, _ = trained
    fake = types.ModuleType("kanlab.interpret.symbolic")
    fake.formula = lambda m, names: ["exp(sin(pi*x) + y**2)"]
    fake.edge_formula = lambda m, l, i, j: "sin(3.14*x)" if (l, i, j) == (1, 2, 0) else None
    monkeypatch.setitem(sys.modules, "kanlab.interpret.symbolic", fake)
    page = report(model, tmp_path / "r.html", data=data, names=["x", "y"]).read_text()
    assert "out = exp(sin(pi*x) + y**2)" in page and "sin(3.14*x)" in page


def test_symbolic_edges_from_layer_extra_state(trained, tmp_path, monkeypatch):
    model, data, _ = trained
    monkeypatch.setitem(sys.modules, "kanlab.interpret.symbolic", None)  # importing it fails
    monkeypatch.setattr(KANLinear, "get_extra_state", lambda self: {"edges": [
        {"out": 0, "in": 2, "fn": "tanh", "affine": [2.0, 1.5, 0.0, -0.25]}]}, raising=False)
    _, edges = collect_edges(model, data)
    sym = next(e for e in edges if e["id"] == "1-0-2")
    assert sym["formula"] == "2*tanh(1.5*x + 0) + -0.25"
    assert report(model, tmp_path / "r.html").exists()  # and no model formula without the module


def test_cli_report_of_a_fit_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--formula", "x*y", "--n-train", "60", "--n-test", "30", "--width", "2,2,1",
                 "--grids", "3,4", "--steps", "2", "--compare-mlp", "--out", str(out)]) == 0
    (out / "compare.json").write_text(json.dumps(COMPARISON))
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "KAN vs MLP" in page and "G=4" in page
    assert main(["report", str(tmp_path / "missing")]) == 2


@pytest.mark.browser
def test_report_page_in_headless_chromium(trained, tmp_path):
    model, data, history = trained
    path = report(model, tmp_path / "report.html", data=data, history=history, names=["x", "y"],
                  comparison=COMPARISON)
    with open_page(path, width=1300, height=1000) as (page, console):
        page.wait_for_selector("body[data-ready='1']", timeout=10000)
        page.hover(".edge[data-id='0-2-0'] rect")
        assert page.inner_text("#edge-info").startswith("φ[0](x → h1.3)")
        points = page.get_attribute("#edge-plot polyline.curve", "points")
        assert len(points.split()) == 64
        page.click(".edge[data-id='1-0-1'] rect")  # pin another edge; hovering no longer changes the panel
        page.hover(".edge[data-id='0-2-0'] rect")
        assert "pinned" in page.inner_text("#edge-info") and "h1.2 → out" in page.inner_text("#edge-info")
        assert page.locator(".edge.selected").count() == 1
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    errors = [c for c in console if c[0] in ("error", "pageerror")]
    assert not errors, errors
    assert (tmp_path / "report.png").stat().st_size > 20_000
