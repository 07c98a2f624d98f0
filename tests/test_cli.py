"""The kanlab command line: fit / predict / demo, the --json contract, and exit status 2 on bad input."""

import json
import subprocess
import sys

import pytest
import sympy

from kanlab.cli import main


def run_cli(*args):
    return main(list(args))


def test_fit_formula_writes_json_and_checkpoint(tmp_path, capsys):
    out, js = tmp_path / "run", tmp_path / "r.json"
    code = run_cli("fit", "--formula", "x*y", "--width", "2,2,1", "--grids", "3,5", "--steps", "3",
                   "--n-train", "200", "--n-test", "100", "--out", str(out), "--json", str(js), "--compare-mlp")
    assert code == 0
    result = json.loads(js.read_text())
    for key in ("train_rmse", "test_rmse", "n_params", "seconds", "width", "mlp_test_rmse", "mlp_n_params"):
        assert key in result
    assert result["width"] == [2, 2, 1]
    assert abs(result["mlp_n_params"] - result["n_params"]) / result["n_params"] < 0.15
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert "test RMSE" in capsys.readouterr().out


def test_fit_csv_then_predict(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    rows = ["a,b,target"] + [f"{i / 50:.4f},{(i % 7) / 7:.4f},{(i / 50) * 2 + (i % 7) / 7:.6f}" for i in range(60)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m"
    assert run_cli("fit", "--data", str(csv), "--target", "target", "--grids", "3", "--steps", "5",
                   "--out", str(out)) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["names"] == ["a", "b"] and cfg["model"]["widths"] == [2, 5, 1]  # default [n, 2n+1, 1]
    new = tmp_path / "new.csv"
    new.write_text("b,a\n0.5,0.2\n0.1,0.9\n")  # columns matched by name, not position
    pred = tmp_path / "p.csv"
    assert run_cli("predict", str(out), "--data", str(new), "--out", str(pred)) == 0
    lines = pred.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 3
    assert abs(float(lines[1]) - (0.2 * 2 + 0.5)) < 0.1


@pytest.mark.parametrize("args,match", [
    (["fit"], "--formula"),
    (["fit", "--formula", "x*y", "--basis", "nope"], "unknown basis"),
    (["fit", "--formula", "x*y", "--width", "2,a,1"], "--width"),
    (["fit", "--formula", "x*y", "--width", "3,5,1"], "input columns"),
    (["fit", "--formula", "x*y", "--grids", "3,-5"], "--grids"),
    (["fit", "--formula", "x*y", "--steps", "0"], "positive integer"),
    (["fit", "--formula", "x*y", "--optimizer", "magic"], "optimizer"),
    (["fit", "--formula", "log(x)", "--ranges", "x=-1:1"], "NaN or infinite"),
    (["fit", "--formula", "x*y", "--bogus"], "unrecognized"),
    (["fit", "--data", "/nonexistent.csv", "--target", "y"], "does not exist"),
    (["fit", "--data", "x.csv"], "--target"),
    (["predict", "/nonexistent", "--data", "x.csv"], "not a directory"),
    (["nosuchcommand"], "invalid choice"),
    ([], "choose a command"),
])
def test_bad_arguments_exit_2_with_one_line(args, match, capsys):
    assert run_cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_csv_with_bad_cell_exits_2(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("a,y\n1,2\n2,nan\n")
    assert run_cli("fit", "--data", str(csv), "--target", "y", "--steps", "1") == 2
    assert "not finite" in capsys.readouterr().err


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "kanlab", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "demo" in res.stdout and "fit" in res.stdout


@pytest.mark.slow
def test_demo_kan_beats_mlp_by_10x(tmp_path, capsys):
    assert run_cli("demo", "--out", str(tmp_path)) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["mlp_test_rmse"] >= 10 * result["test_rmse"]
    assert "MLP" in capsys.readouterr().out


@pytest.mark.slow
def test_grid_extension_reaches_1e5(tmp_path):
    js = tmp_path / "out.json"
    assert run_cli("fit", "--formula", "exp(sin(pi*x)+y**2)", "--width", "2,5,1", "--grids", "3,5,10,20,50",
                   "--json", str(js)) == 0
    result = json.loads(js.read_text())
    assert result["test_rmse"] <= 1e-5, result["staircase"]
    sympy.sympify("x")  # sympy is importable (formula output relies on it)
