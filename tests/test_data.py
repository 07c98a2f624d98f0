"""make_dataset and CSV loading."""

import pytest
import torch

from kanlab.data import load_csv_dataset, make_dataset, parse_ranges


def test_formula_dataset_is_seeded_and_correct():
    a = make_dataset("exp(sin(pi*x)+y**2)", n_train=50, n_test=20, seed=3, dtype=torch.float64)
    b = make_dataset("exp(sin(pi*x)+y**2)", n_train=50, n_test=20, seed=3, dtype=torch.float64)
    c = make_dataset("exp(sin(pi*x)+y**2)", n_train=50, n_test=20, seed=4, dtype=torch.float64)
    assert a["names"] == ["x", "y"]
    assert torch.equal(a["train_input"], b["train_input"]) and not torch.equal(a["train_input"], c["train_input"])
    x, y = a["train_input"][:, 0], a["train_input"][:, 1]
    torch.testing.assert_close(a["train_label"][:, 0], torch.exp(torch.sin(torch.pi * x) + y**2))
    assert a["test_input"].shape == (20, 2) and a["train_label"].shape == (50, 1)


def test_ranges_and_callable():
    d = make_dataset("log(1+x)", ranges={"x": (0, 3)}, n_train=200, n_test=0, seed=0)
    assert d["train_input"].min() >= 0 and d["train_input"].max() <= 3 and d["train_input"].max() > 2.5
    d = make_dataset(lambda x: x.sum(1), ranges=(-2, 2), n_var=3, n_train=10, n_test=5)
    assert d["train_input"].shape == (10, 3) and d["names"] == ["x1", "x2", "x3"]
    assert parse_ranges("x=-1:1,y=0:2", ["x", "y"]) == [(-1.0, 1.0), (0.0, 2.0)]


def test_global_rng_untouched():
    state = torch.random.get_rng_state()
    make_dataset("x*y", n_train=10, n_test=10, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("formula,ranges,match", [
    ("", None, "non-empty"), ("x +* y", None, "cannot parse"), ("3", None, "no variables"),
    ("log(x)", {"x": (-1, 1)}, "NaN or infinite"), ("x*y", {"z": (0, 1)}, "unknown variables"),
    ("x*y", "x=1:0", "low < high"), ("x", "x=a:b", "must be numbers"),
])
def test_bad_formulas_and_ranges(formula, ranges, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(formula, ranges=ranges, n_train=10, n_test=10)


def test_csv_loading_split_and_errors(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{i},{i * 2},{i * 3}" for i in range(10)) + "\n")
    d = load_csv_dataset(path, "y", seed=0)
    assert d["names"] == ["a", "b"] and len(d["train_input"]) == 8 and len(d["test_input"]) == 2
    torch.testing.assert_close(d["train_label"][:, 0], d["train_input"][:, 0] * 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"row 3, column 'y' is not a number"):
        load_csv_dataset(bad, "y")
    bad.write_text("a,y\n1,2\n3,\n")
    with pytest.raises(ValueError, match="missing a value"):
        load_csv_dataset(bad, "y")
    with pytest.raises(ValueError, match="not in"):
        load_csv_dataset(path, "zz")
    with pytest.raises(ValueError, match="does not exist"):
        load_csv_dataset(tmp_path / "none.csv", "y")
