"""The spline tour (`kanlab splines`): the page is self-contained and small, it behaves in headless Chromium
(real mouse drags: Catmull–Rom moves locally, the natural cubic globally), and its numbers are those of
``kanlab.splines``.  Also runs ``examples/spline_tour.py``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from browser_support import open_page
from kanlab.cli import main
from kanlab.splines import bezier, bspline_basis, catmull_rom, natural_cubic, uniform_knots
from kanlab.tour import MAX_PAGE_BYTES, render_page

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


@pytest.fixture
def page_file(tmp_path) -> Path:
    out = tmp_path / "tour.html"
    assert main(["splines", "--out", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------------------------------------
# the file
# ----------------------------------------------------------------------------------------------------------

def test_page_is_small_and_self_contained(page_file):
    html = page_file.read_text(encoding="utf-8")
    assert html == render_page()
    assert len(html.encode("utf-8")) < MAX_PAGE_BYTES
    assert "%%" not in html  # every placeholder was filled
    # nothing fetched from anywhere: no external scripts, styles, images, fonts or imports
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", html, re.I)
    assert not re.search(r"@import|url\(|fetch\(|XMLHttpRequest|import\(", html)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace name is not a request


def test_command_default_name_and_bad_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["splines"]) == 0
    written = tmp_path / "kanlab-splines.html"
    assert written.is_file()
    assert str(written) in capsys.readouterr().out
    assert main(["splines", "--out", str(tmp_path / "tour.txt")]) == 2
    assert ".html" in capsys.readouterr().err
    assert main(["splines", "--out", str(tmp_path / "nested" / "dir" / "t.html")]) == 0


# ----------------------------------------------------------------------------------------------------------
# in the browser
# ----------------------------------------------------------------------------------------------------------

def pieces_changed(x: np.ndarray, before: np.ndarray, after: np.ndarray, xk: np.ndarray) -> list[bool]:
    """For each interval [xk_i, xk_{i+1}]: did the sampled curve change at any sample strictly inside it?"""
    diff = np.abs(after - before)
    return [bool((diff[(x > a) & (x < b)] > 0).any()) for a, b in zip(xk[:-1], xk[1:])]


def drag(page, index: int, dx: float, dy: float) -> None:
    """Drag control point ``index`` by (dx, dy) screen pixels with real mouse events."""
    box = page.locator(f"[data-point='{index}']").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + dx / 2, cy + dy / 2, steps=4)
    page.mouse.move(cx + dx, cy + dy, steps=4)
    page.mouse.up()


@pytest.mark.browser
def test_dragging_a_point_moves_catmull_rom_locally_and_the_natural_cubic_everywhere(page_file, tmp_path):
    with open_page(page_file, width=1280, height=960) as (page, console):
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        assert page.evaluate("performance.getEntriesByType('resource').length") == 0  # nothing fetched
        state0 = page.evaluate("window.splineTour.state()")
        n, j = state0["n"], 3
        assert n == 8 and state0["lastDrag"] is None
        before = page.evaluate("window.splineTour.samples()")

        drag(page, j, 0, -90)  # 90 px up

        state = page.evaluate("window.splineTour.state()")
        after = page.evaluate("window.splineTour.samples()")
        page.screenshot(path=str(tmp_path / "spline-tour.png"), full_page=True)

        d = state["lastDrag"]
        assert d["index"] == j and d["to"][1] > d["from"][1] + 0.3 and d["to"][0] == d["from"][0]
        moved = np.array(state["points"])
        assert moved[j, 1] == pytest.approx(d["to"][1])
        assert np.array_equal(np.delete(moved, j, axis=0), np.delete(np.array(state0["points"]), j, axis=0))

        # from the sampled curves themselves
        xk = moved[:, 0]
        x = np.array(after["x"])
        assert np.array_equal(x, before["x"])
        cr = pieces_changed(x, np.array(before["catmullRom"]), np.array(after["catmullRom"]), xk)
        nat = pieces_changed(x, np.array(before["natural"]), np.array(after["natural"]), xk)
        assert cr == [i in range(j - 2, j + 2) for i in range(n - 1)]  # the 4 pieces around P3 only
        assert all(nat)  # every piece
        # ... and as the page reports it (what the halos and the piece rows show)
        assert d["changed"]["catmullRom"] == cr
        assert d["changed"]["natural"] == [True] * (n - 1)
        assert d["changed"]["bspline"] == [True, True, True, True, False]  # B3 lives on [1, 5]
        assert d["changed"]["bezier"] == [True]
        assert page.locator("#piece-rows [data-curve='catmullRom'] .piece.on").count() == 4
        assert page.locator("#main-plot path.halo").count() == 1 + 4 + (n - 1) + 4

        # continuity readout: C¹ for Catmull–Rom, C² for the natural cubic and the cubic B-spline
        cont = state["continuity"]
        assert [e["cls"] for e in cont["natural"]] == [2] * (n - 2)
        assert [e["cls"] for e in cont["bspline"]] == [2] * (n - 4)
        assert all(e["cls"] >= 1 for e in cont["catmullRom"]) and any(e["cls"] == 1 for e in cont["catmullRom"])
        assert page.locator("[data-continuity='natural'] .badge").all_inner_texts() == ["C²"] * (n - 2)

        # the curves can be switched off and on
        page.locator(".chip[data-curve='bezier'] input").uncheck()
        assert page.locator("#main-plot path.curve[data-curve='bezier']").count() == 0
        page.locator(".chip[data-curve='bezier'] input").check()
        assert page.locator("#main-plot path.curve[data-curve='bezier']").count() == 1

        errors = [m for m in console if m[0] in ("error", "pageerror")]
        assert errors == []
    assert (tmp_path / "spline-tour.png").stat().st_size > 20_000


@pytest.mark.browser
def test_page_curves_agree_with_kanlab_splines(page_file):
    rng = np.random.default_rng(0)
    cases = []
    for n in (5, 8, 12):
        x = np.cumsum(np.r_[rng.uniform(-0.5, 0.5), rng.uniform(0.3, 1.7, size=n - 1)])
        cases.append(np.stack([x, rng.uniform(-1, 3, size=n)], axis=1))
    with open_page(page_file) as (page, console):
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        exported = [page.evaluate("p => window.splineTour.samples(p)", pts.tolist()) for pts in cases]
        page.evaluate("p => window.splineTour.setPoints(p)", cases[1].tolist())
        assert np.array_equal(np.array(page.evaluate("window.splineTour.state()")["points"]), cases[1])
        errors = [m for m in console if m[0] in ("error", "pageerror")]
    assert errors == []
    for pts, s in zip(cases, exported):
        n = len(pts)
        P, xk, yk = t64(pts), t64(pts[:, 0]), t64(pts[:, 1])
        assert np.array_equal(s["points"], pts)
        x = t64(s["x"])
        np.testing.assert_allclose(s["catmullRom"], catmull_rom(P)(x).numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(s["natural"], natural_cubic(xk, yk)(x).numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(s["bezier"], bezier(P, t64(s["t"])).numpy(), rtol=0, atol=1e-9)
        # the B-spline: a KAN grid, grid_size n-3 and order 3 on [1, n-2]
        knots = uniform_knots(n - 3, 3, (1.0, n - 2.0), dtype=F64)
        assert s["order"] == 3
        np.testing.assert_allclose(s["knots"], knots.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(s["bspline"], (bspline_basis(t64(s["u"]), knots, 3) @ P).numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(s["basis"], bspline_basis(t64(s["basisU"]), knots, 3).numpy(), rtol=0, atol=1e-9)
        assert len(s["x"]) >= 24 * (n - 1) and len(s["u"]) >= 24 * (n - 3) and len(s["basisU"]) > 8 * n


# ----------------------------------------------------------------------------------------------------------
# the static figures
# ----------------------------------------------------------------------------------------------------------

def test_example_script_writes_the_figures(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("spline_tour_example", ROOT / "examples" / "spline_tour.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.main([str(tmp_path / "figs"), "--dpi", "40"])
    names = sorted(p.name for p in paths)
    assert names == ["bspline_basis.png", "local_vs_global.png", "partition_of_unity.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000
    # the figure's pieces agree with the page's: 4 of 7 (Catmull–Rom), 7 of 7 (natural), 4 of 5 (B-spline)
    curves = module.moved_curves(module.tour_points(), 3, 0.8)
    counts = {k: sum(pieces_changed(x, b, a, brk)) for k, (x, b, a, brk) in curves.items()}
    assert counts == {"catmull_rom": 4, "natural": 7, "bspline": 4}
