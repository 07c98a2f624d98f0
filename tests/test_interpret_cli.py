"""The interpretation commands end to end, in-process: fit --symbolic/--prune, formula DIR, plot DIR."""

import json

import pytest
import sympy

from kanlab.cli import main


@pytest.fixture(scope="module")
def symbolic_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("sym")
    rc = main(["fit", "--formula", "x**2+y**2", "--symbolic", "--out", str(d / "ck"), "--json", str(d / "r.json")])
    assert rc == 0
    return d


def test_fit_symbolic_writes_the_formula_contract(symbolic_checkpoint):
    result = json.loads((symbolic_checkpoint / "r.json").read_text())
    x, y = sympy.symbols("x y")
    assert sympy.simplify(sympy.sympify(result["formula"]) - (x ** 2 + y ** 2)) == 0
    assert result["formula_test_rmse"] < 1e-8
    assert result["formula_verified"] is True
    assert result["width"] == [2, 1, 1]
    edges = result["symbolic_edges"]
    assert {(e["layer"], e["i"], e["j"]) for e in edges} == {(0, 0, 0), (0, 1, 0), (1, 0, 0)}
    assert all(0.999 < e["r2"] <= 1 and isinstance(e["expr"], str) for e in edges)
    assert result["test_rmse"] < 1e-6  # the returned (symbolic) model itself predicts the data


def test_formula_and_plot_commands(symbolic_checkpoint, capsys):
    ck = symbolic_checkpoint / "ck"
    assert main(["formula", str(ck), "--latex"]) == 0
    out = capsys.readouterr().out
    assert "f = x**2 + y**2" in out and "x^{2} + y^{2}" in out
    assert main(["formula", str(ck), "--from-model", "--python"]) == 0  # read off the symbolic edges
    out = capsys.readouterr().out
    assert "f = x**2 + y**2" in out and "def f(x, y):" in out
    # a formula stored with the checkpoint (kanlab fit writes DIR/result.json) wins, with its confidence
    result = json.loads((symbolic_checkpoint / "r.json").read_text())
    (ck / "result.json").write_text(json.dumps({**result, "formula": "x**2 + y**2 + 1/10",
                                                "formula_verified": False}))
    assert main(["formula", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "approximate" in out and "f = x**2 + y**2 + 1/10" in out
    (ck / "result.json").unlink()
    assert main(["plot", str(ck), "--out", str(symbolic_checkpoint / "net.png"), "--dpi", "30"]) == 0
    assert (symbolic_checkpoint / "net.png").read_bytes()[:4] == b"\x89PNG"


def test_formula_of_a_numeric_model_is_a_clear_usage_error(tmp_path, capsys):
    ck = tmp_path / "num"
    assert main(["fit", "--formula", "x*y", "--steps", "2", "--grids", "3", "--out", str(ck)]) == 0
    capsys.readouterr()
    assert main(["formula", str(ck)]) == 2
    err = capsys.readouterr().err
    assert "still numeric" in err and "--symbolic" in err and len(err.strip().splitlines()) == 1
    assert main(["plot", str(ck), "--out", str(tmp_path / "x.jpg")]) == 2


def test_fit_prune_shrinks_the_width(tmp_path):
    out = tmp_path / "r.json"
    rc = main(["fit", "--formula", "exp(sin(pi*x)+y**2)", "--prune", "--steps", "15", "--grids", "5",
               "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["width_before_pruning"] == [2, 5, 1]
    assert result["width"][1] < 5
    assert result["test_rmse"] < 0.1
