"""KAN vs MLP at equal budget: the rows, the table, the plot and ``kanlab compare``."""

from __future__ import annotations

import json

import pytest
import torch

import kanlab
from kanlab.cli import main
from kanlab.scaling import compare_kan_mlp, format_table, plot_scaling, scaling_exponent


@pytest.fixture(scope="module")
def rows():
    data = kanlab.make_dataset("sin(pi*x)", n_train=120, n_test=60, seed=0, dtype=torch.float64)
    return compare_kan_mlp(data, kan_width=[1, 2, 1], grids=[3, 6], mlp_hidden=[2, 5], steps=3)


def _kan_params(widths, grid, order=3):
    """Per edge: G+k coefficients, a base weight and a spline scale; a bias per node."""
    return sum(a * b * (grid + order + 2) + b for a, b in zip(widths[:-1], widths[1:]))


def test_rows_cover_both_families_with_equal_budget(rows):
    kan = [r for r in rows if r["model"] == "KAN"]
    mlp = [r for r in rows if r["model"] == "MLP"]
    assert [r["grid_size"] for r in kan] == [3, 6]
    assert [r["n_params"] for r in kan] == [_kan_params([1, 2, 1], 3), _kan_params([1, 2, 1], 6)]
    assert [r["n_params"] for r in mlp] == [2 * 2 + 3 * 2 + 3, 2 * 5 + 6 * 5 + 6]
    assert [r["steps"] for r in kan] == [3, 6] and all(r["steps"] == 6 for r in mlp)
    assert all(r["test_rmse"] > 0 for r in rows)
    assert kan[1]["test_rmse"] < kan[0]["test_rmse"]  # grid extension helps on a smooth 1-D function


def test_table_and_exponent():
    fake = [{"model": "KAN", "width": [1, 1], "n_params": n, "train_rmse": 1.0, "test_rmse": 5.0 * n ** -4.0,
             "steps": 1, "seconds": 0.0} for n in (10, 20, 40)]
    assert scaling_exponent(fake, "KAN") == pytest.approx(-4.0)
    assert scaling_exponent(fake, "MLP") != scaling_exponent(fake, "MLP")  # nan without rows
    table = format_table(fake)
    assert table.splitlines()[0].startswith("| model | width | grid | params")
    assert "KAN -4.00" in table


def test_plot_is_a_png(rows, tmp_path):
    path = plot_scaling(rows, tmp_path / "sub" / "scaling.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_cli_compare_writes_table_json_and_plot(tmp_path, capsys):
    code = main(["compare", "--formula", "x*y", "--n-train", "60", "--n-test", "30", "--width", "2,2,1",
                 "--grids", "2,3", "--mlp-hidden", "3", "--steps", "2", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| KAN |" in out and "| MLP |" in out
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert len(saved["rows"]) == 3 and saved["data"] == "x*y"
    assert (tmp_path / "compare.png").exists() and (tmp_path / "compare.md").exists()
    assert main(["compare", "--formula", "x*y", "--grids", "0"]) == 2
