"""Symbolic edges in KANLinear/KAN, formulas (with multiplication nodes), exporters, checkpoints."""

import math

import pytest
import sympy
import torch

import kanlab
from kanlab.interpret.symbolic import (NotSymbolicError, fix_symbolic, formula, nice_number, raw_formula,
                                       snap_constants, suggest_symbolic, to_latex, to_numpy, to_torch,
                                       unfix_symbolic)
from kanlab.layers import KANLinear


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _x(n=200, d=2, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)


def test_symbolic_edge_replaces_the_spline_exactly():
    layer = KANLinear(2, 3, grid_size=5, dtype=torch.float64)
    x = _x()
    before = layer.edge_outputs(x)
    layer.set_symbolic(1, 0, "sin", (2.0, 3.0, 0.5, -1.0))
    out = layer.edge_outputs(x)
    torch.testing.assert_close(out[:, 1, 0], 2.0 * torch.sin(3.0 * x[:, 0] + 0.5) - 1.0)
    keep = torch.ones(3, 2, dtype=torch.bool)
    keep[1, 0] = False
    torch.testing.assert_close(out[:, keep], before[:, keep])  # other edges untouched
    torch.testing.assert_close(layer(x), out.sum(-1) + layer.bias)  # forward == Σ edges + bias
    assert layer.symbolic_mask[1, 0] == 1 and layer.numeric_mask()[1, 0] == 0


def test_affine_constants_are_trainable_only_when_an_edge_is_symbolic():
    layer = KANLinear(2, 1, grid_size=5)
    n0 = sum(p.numel() for p in layer.parameters())
    assert "symbolic_affine" in dict(layer.named_buffers())
    layer.set_symbolic(0, 1, "x^2", (1.0, 1.0, 0.0, 0.0))
    assert "symbolic_affine" in dict(layer.named_parameters())
    assert sum(p.numel() for p in layer.parameters()) == n0 + 2 * 4
    x = _x()
    loss = layer(x).pow(2).mean()
    loss.backward()
    assert layer.symbolic_affine.grad[0, 1].abs().sum() > 0
    layer.set_symbolic(0, 1, None)
    assert "symbolic_affine" in dict(layer.named_buffers())
    assert sum(p.numel() for p in layer.parameters()) == n0


def test_symbolic_layer_is_safe_outside_the_domain_and_validates_input():
    layer = KANLinear(1, 1, grid_size=3)
    layer.set_symbolic(0, 0, "log", (1.0, 1.0, 0.0, 0.0))
    assert torch.isfinite(layer(torch.tensor([[-5.0], [0.0], [2.0]]))).all()
    with pytest.raises(ValueError, match="unknown symbolic function"):
        layer.set_symbolic(0, 0, "arcsin")
    with pytest.raises(IndexError):
        layer.set_symbolic(3, 0, "sin")
    with pytest.raises(ValueError, match="4 finite numbers"):
        layer.set_symbolic(0, 0, "sin", (1.0, float("nan"), 0.0, 0.0))


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    model = kanlab.KAN([2, 3, 1], grid_size=5, dtype=torch.float64)
    model.layers[0].set_symbolic(2, 1, "exp", (0.5, -1.0, 0.2, 0.1))
    model.layers[1].set_symbolic(0, 0, "tanh", (1.5, 2.0, 0.0, 0.0))
    x = _x()
    clone = kanlab.KAN([2, 3, 1], grid_size=5, dtype=torch.float64)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(x), model(x))
    assert clone.layers[0].symbolic_name(2, 1) == "exp"
    from kanlab.io import load, save

    save(model, tmp_path / "ck", names=["a", "b"])
    loaded = load(tmp_path / "ck")
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.layers[1].symbolic_name(0, 0) == "tanh"
    assert "symbolic_affine" in dict(loaded.layers[1].named_parameters())  # trainable after loading
    assert loaded.n_params == model.n_params


def _symbolic_model():
    """[2, (1, 1), 1]: f = 2·(x + y²) + 3·sin(x)·exp(y) + 1 (mult node = sin(x)·exp(y))."""
    model = kanlab.KAN([2, (1, 1), 1], grid_size=3, dtype=torch.float64)
    l0, l1 = model.layers
    with torch.no_grad():
        l0.bias.zero_()
        l1.bias.fill_(1.0)
    l0.set_symbolic(0, 0, "x", (1, 1, 0, 0))
    l0.set_symbolic(0, 1, "x^2", (1, 1, 0, 0))
    l0.set_symbolic(1, 0, "sin", (1, 1, 0, 0))
    l0.mask[1, 1] = 0
    l0.mask[2, 0] = 0
    l0.set_symbolic(2, 1, "exp", (1, 1, 0, 0))
    l1.set_symbolic(0, 0, "x", (2, 1, 0, 0))
    l1.set_symbolic(0, 1, "x", (3, 1, 0, 0))
    return model


def test_formula_understands_multiplication_nodes():
    model = _symbolic_model()
    x, y = sympy.symbols("x y")
    (expr,) = formula(model, ["x", "y"])
    assert sympy.simplify(expr - (2 * (x + y ** 2) + 3 * sympy.sin(x) * sympy.exp(y) + 1)) == 0
    pts = _x(50)
    torch.testing.assert_close(to_torch(expr, ["x", "y"])(pts), model(pts)[:, 0])
    f = to_numpy(expr, ["x", "y"])
    torch.testing.assert_close(torch.as_tensor(f(pts[:, 0].numpy(), pts[:, 1].numpy())), model(pts)[:, 0])
    assert "e^{y}" in to_latex(expr) and "\\sin" in to_latex(expr)
    assert sympy.sympify(str(expr)) == expr  # the string form parses back


def test_formula_snaps_near_constants_and_rounds_the_rest():
    model = kanlab.KAN([1, 1], grid_size=3, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].bias.fill_(0.12345678)
    model.layers[0].set_symbolic(0, 0, "sin", (2.0000001, math.pi + 1e-7, 0.0, 0.0))
    (expr,) = formula(model, ["t"], digits=3)
    t = sympy.Symbol("t")
    assert expr.has(sympy.pi) and expr.has(sympy.sin(sympy.pi * t))
    (c,) = expr.atoms(sympy.Float)
    assert str(c) == "0.123" and float(c) == pytest.approx(0.123, rel=1e-4)


def test_edge_formula_for_reports():
    from kanlab.interpret.symbolic import edge_formula

    model = _symbolic_model()
    model.names = ["u", "v"]
    assert str(edge_formula(model, 0, 0, 1)) == "sin(u)"
    assert str(edge_formula(model, 1, 1, 0)) == "3*h1_1"
    model.layers[0].set_symbolic(0, 0, None)
    assert edge_formula(model, 0, 0, 0) is None


def test_formula_refuses_numeric_edges():
    model = kanlab.KAN([2, 2, 1], grid_size=3)
    model.layers[0].set_symbolic(0, 0, "x")
    with pytest.raises(NotSymbolicError, match="still numeric"):
        raw_formula(model)
    with pytest.raises(ValueError, match="need 2 input names"):
        formula(_symbolic_model(), ["x"])


def test_nice_numbers():
    assert nice_number(2.0000001) == 2
    assert nice_number(0.3333334) == sympy.Rational(1, 3)
    assert nice_number(math.pi / 2 + 1e-7) == sympy.pi / 2
    assert nice_number(0.123456) is None
    assert nice_number(1e-6) == 0


def test_snap_constants_keeps_what_the_data_need():
    x = _x(400, 1)
    y = torch.exp(0.37 * x[:, 0]) + 2 * x[:, 0]
    t = sympy.Symbol("t")
    noisy = 1.0000002 * sympy.exp(0.3700001 * t) + 1.9999999 * t + 1e-6
    res = snap_constants(noisy, ["t"], x, y)
    # 1, 2 and 0 are snapped; 0.37 is not near a nice value and the data need it
    assert res.expr.has(sympy.exp) and sympy.Integer(2) * t in sympy.Add.make_args(res.expr)
    assert any(abs(float(f) - 0.37) < 1e-6 for f in res.expr.atoms(sympy.Float))
    assert res.rmse < 1e-10


def test_suggest_and_fix_symbolic_on_a_trained_edge():
    data = kanlab.make_dataset("sin(pi*x)", n_train=300, n_test=10, seed=0, dtype=torch.float64)
    model = kanlab.KAN([1, 1], grid_size=10, dtype=torch.float64)
    kanlab.fit(model, data, steps=15, progress=False)
    best = suggest_symbolic(model, 0, 0, 0, data["train_input"])
    assert best[0].name in ("sin", "cos") and best[0].r2 > 0.9999
    fit = fix_symbolic(model, 0, 0, 0, "sin", data["train_input"])
    assert abs(abs(fit.b) - math.pi) < 1e-2
    assert model.layers[0].symbolic_name(0, 0) == "sin"
    err = torch.sqrt(torch.mean((model(data["train_input"]) - data["train_label"]) ** 2))
    assert err < 1e-2
    unfix_symbolic(model, 0, 0, 0)
    assert model.layers[0].symbolic_name(0, 0) == ""
    with pytest.raises(IndexError, match="does not exist"):
        suggest_symbolic(model, 0, 1, 0, data["train_input"])


def test_auto_symbolic_with_lookahead_recovers_a_chain():
    """sqrt(1 + x²) through [1, 1, 1]: the split of the chain is arbitrary; lookahead picks x² then sqrt."""
    from kanlab.interpret.pipeline import discover_formula

    data = kanlab.make_dataset("sqrt(1+x**2)", ranges="x=-2:2", n_train=600, n_test=200, seed=0,
                               dtype=torch.float64)
    res = discover_formula([1, 1, 1], data, seed=0)
    x = sympy.Symbol("x")
    assert sympy.simplify(res.expr - sympy.sqrt(1 + x ** 2)) == 0
    assert res.rel_test_rmse < 1e-8 and res.rel_train_rmse < 1e-8


def test_kan_methods_delegate_to_the_free_functions():
    data = kanlab.make_dataset("x**2+y", n_train=300, n_test=10, seed=0, dtype=torch.float64)
    x, y = data["train_input"], data["train_label"]
    model = kanlab.KAN([2, 3, 1], grid_size=5, dtype=torch.float64)
    kanlab.fit(model, data, steps=10, progress=False)
    assert model.attribute(x).input_score.shape == (2,)
    small = model.prune(x, threshold=0.0)
    assert small is not model and small.widths == [2, 3, 1]
    assert model.suggest_symbolic(0, 0, 0, x, top=2)[0].name
    model.auto_symbolic(x, y)
    assert all(layer.has_symbolic for layer in model.layers)
    (expr,) = model.formula(["x", "y"])
    assert expr.free_symbols == {sympy.Symbol("x"), sympy.Symbol("y")}
    assert len([a for a in model.plot(x).axes if (a.get_gid() or "").startswith("edge")]) == 9
    assert kanlab.formula is formula
