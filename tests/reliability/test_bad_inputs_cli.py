"""Bad input at the command line: every case exits with status 2 and one line on stderr naming the problem,
before any training starts (the cases run in this process through ``kanlab.cli.main``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanlab.cli import main

CSV = {
    "good.csv": "a,b,y\n" + "".join(f"{i / 10},{(i * 7 % 10) / 10},{i / 5}\n" for i in range(10)),
    "missing.csv": "a,b,y\n1,2,3\n2,,5\n",
    "text.csv": "a,b,y\n1,two,3\n2,3,5\n",
    "ragged.csv": "a,b,y\n1,2\n",
    "empty.csv": "",
    "header_only.csv": "a,b,y\n",
    "target_only.csv": "y\n1\n2\n",
    "duplicate.csv": "a,a,y\n1,2,3\n",
    "inf.csv": "a,b,y\n1,inf,3\n2,3,5\n",
    "nan_target.csv": "a,b,y\n1,2,nan\n2,3,5\n",
    "other_columns.csv": "a,c,y\n1,2,3\n2,3,5\n",
    "one_row.csv": "a,y\n1,2\n",
    "predict_missing_col.csv": "a\n0.5\n",
}
FIT = ["fit", "--formula", "x*y", "--steps", "1", "--grids", "3", "--n-train", "20", "--n-test", "5"]
DATA = ["fit", "--steps", "1", "--grids", "3", "--data"]

# (id, arguments ({d} is the folder holding the files above), message on stderr)
CASES = [
    ("no command", [], "choose a command"),
    ("unknown command", ["train"], "invalid choice: 'train'"),
    ("fit without data", ["fit"], "give --formula EXPR or --data FILE.csv"),
    ("unknown option", [*FIT, "--epochs", "3"], "unrecognized arguments: --epochs"),
    ("formula syntax error", [*FIT, "--formula", "x**"], "cannot parse formula 'x**'"),
    ("formula NaN on range", [*FIT, "--formula", "log(x)"], "NaN or infinite values on the given ranges"),
    ("range without colon", [*FIT, "--ranges", "x=1"], "expected NAME=LOW:HIGH"),
    ("range reversed", [*FIT, "--ranges", "x=1:-1"], "low < high"),
    ("range not a number", [*FIT, "--ranges", "x=a:b"], "LOW and HIGH must be numbers"),
    ("range of unknown variable", [*FIT, "--ranges", "z=0:1"], "unknown variables ['z']"),
    ("width with a letter", [*FIT, "--width", "2,a,1"], "--width must look like 2,5,1"),
    ("width with a zero", [*FIT, "--width", "2,0,1"], "width 1 must have at least one node"),
    ("width of one layer", [*FIT, "--width", "2"], "at least an input and an output width"),
    ("width input mismatch", [*FIT, "--width", "3,5,1"], "width starts with 3 inputs but the data has 2"),
    ("width output mismatch", [*FIT, "--width", "2,3,2"], "width ends with 2 outputs but the data has 1"),
    ("grids empty", [*FIT, "--grids", ""], "--grids must be positive integers"),
    ("grids negative", [*FIT, "--grids", "3,-5"], "--grids must be positive integers"),
    ("grids not integers", [*FIT, "--grids", "3,x"], "--grids must be comma-separated integers"),
    ("steps 0", [*FIT, "--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
    ("n-train 0", [*FIT, "--n-train", "0"], "argument --n-train: expected a positive integer"),
    ("lr negative", [*FIT, "--lr", "-1"], "--lr must be a positive number"),
    ("lr NaN", [*FIT, "--lr", "nan"], "--lr must be a positive number"),
    ("lr text", [*FIT, "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    ("lamb negative", [*FIT, "--lamb", "-1"], "--lamb must be >= 0"),
    ("lamb infinite", [*FIT, "--lamb", "inf"], "--lamb must be >= 0"),
    ("seed text", [*FIT, "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    ("seed negative", [*FIT, "--seed", "-3"], "seed must be a non-negative integer"),
    ("dtype float16", [*FIT, "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    ("unknown basis", [*FIT, "--basis", "bessel"], "unknown basis 'bessel'"),
    ("unknown optimizer", [*FIT, "--optimizer", "magic"], "unknown --optimizer 'magic'"),
    ("unknown divergence policy", [*FIT, "--on-divergence", "ignore"], "argument --on-divergence: invalid choice"),
    ("learning rate that diverges", [*FIT, "--width", "2,2,1", "--optimizer", "sgd", "--lr", "100", "--steps", "5"],
     "training diverged: the model produced non-finite outputs at stage 0, step 3"),
    ("checkpoint-every 0", [*FIT, "--checkpoint-every", "0"], "argument --checkpoint-every: expected a positive"),
    ("checkpoint-every without out", [*FIT, "--checkpoint-every", "2"], "--checkpoint-every needs --out DIR"),
    ("out is a file", [*FIT, "--out", "{d}/good.csv"], "exists and is not a directory"),
    ("json in a missing folder", [*FIT, "--json", "{d}/nowhere/r.json"], "--json {d}/nowhere/r.json: cannot write"),
    ("resume a folder without checkpoint", [*FIT, "--resume", "{d}"], "no complete checkpoint"),
    ("resume a file", [*FIT, "--resume", "{d}/good.csv"], "no complete checkpoint"),
    ("target with formula", [*FIT, "--target", "y"], "--target/--test go with --data"),
    ("data without target", ["fit", "--data", "{d}/good.csv"], "--data needs --target COL"),
    ("ranges with data", [*DATA, "{d}/good.csv", "--target", "y", "--ranges", "a=0:1"],
     "--ranges goes with --formula"),
    ("data file missing", [*DATA, "{d}/nope.csv", "--target", "y"], "data file '{d}/nope.csv' does not exist"),
    ("unknown target column", [*DATA, "{d}/good.csv", "--target", "z"], "target column 'z' is not in"),
    ("CSV missing cell", [*DATA, "{d}/missing.csv", "--target", "y"], "row 3, column 'b' is missing a value"),
    ("CSV text cell", [*DATA, "{d}/text.csv", "--target", "y"], "row 2, column 'b' is not a number: 'two'"),
    ("CSV ragged row", [*DATA, "{d}/ragged.csv", "--target", "y"], "row 2 has 2 cells but the header has 3"),
    ("CSV empty", [*DATA, "{d}/empty.csv", "--target", "y"], "the file is empty"),
    ("CSV header only", [*DATA, "{d}/header_only.csv", "--target", "y"], "no data rows after the header"),
    ("CSV only the target", [*DATA, "{d}/target_only.csv", "--target", "y"], "no input columns besides the target"),
    ("CSV duplicate header", [*DATA, "{d}/duplicate.csv", "--target", "y"], "must name every column once"),
    ("CSV infinite cell", [*DATA, "{d}/inf.csv", "--target", "y"], "row 2, column 'b' is not finite: 'inf'"),
    ("CSV NaN target", [*DATA, "{d}/nan_target.csv", "--target", "y"], "row 2, column 'y' is not finite: 'nan'"),
    ("CSV binary file", [*DATA, "{d}/binary.csv", "--target", "y"], "not a UTF-8 text CSV file"),
    ("CSV one row", [*DATA, "{d}/one_row.csv", "--target", "y"], "need at least 2 rows"),
    ("test CSV other columns", [*DATA, "{d}/good.csv", "--target", "y", "--test", "{d}/other_columns.csv"],
     "differ from the training file's"),
    ("predict: not a checkpoint", ["predict", "{d}", "--data", "{d}/good.csv"], "config.json is missing"),
    ("predict: checkpoint is a file", ["predict", "{d}/good.csv", "--data", "{d}/good.csv"],
     "is a file, not a directory"),
    ("predict: missing columns", ["predict", "{d}/model", "--data", "{d}/predict_missing_col.csv"],
     "lacks the model's input columns ['b']"),
    ("predict: infinite cell", ["predict", "{d}/model", "--data", "{d}/inf.csv"], "is not finite"),
    ("predict: no --data", ["predict", "{d}/model"], "the following arguments are required: --data"),
    ("report: not a checkpoint", ["report", "{d}"], "config.json is missing"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_inputs")
    for name, text in CSV.items():
        (d / name).write_text(text)
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage\n")
    assert main(["fit", "--data", str(d / "good.csv"), "--target", "y", "--width", "2,1,1", "--grids", "3",
                 "--steps", "1", "--out", str(d / "model")]) == 0
    return d


@pytest.mark.parametrize("args, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cli_input_exits_2_with_one_line(folder, capsys, args, message):
    capsys.readouterr()
    code = main([a.replace("{d}", str(folder)) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message.replace("{d}", str(folder)) in err, err
    assert not (folder / "nowhere").exists()
