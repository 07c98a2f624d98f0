"""The symbolic primitive library and the per-edge fit (registry-driven: a new primitive is tested too)."""

import math

import pytest
import sympy
import torch

from kanlab.interpret.symbolic import fit_primitive, get_primitive, list_primitives, rank_primitives
from kanlab.interpret.symbolic.library import Primitive, register_primitive

REQUIRED = ["x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "sqrt", "1/sqrt", "exp", "log", "sin", "cos", "tan",
            "tanh", "sigmoid", "asin", "acos", "atan", "atanh", "abs", "sign", "gaussian", "cosh", "sinh", "0"]


def _inside(prim: Primitive, n: int = 64) -> torch.Tensor:
    """Points strictly inside the primitive's domain (and away from its pole)."""
    lo, hi, _, _ = prim.domain
    lo = max(lo, -2.0) + (0.05 if math.isfinite(prim.domain[0]) else 0)
    hi = min(hi, 2.0) - (0.05 if math.isfinite(prim.domain[1]) else 0)
    z = torch.linspace(lo, hi, n, dtype=torch.float64)
    if prim.excluded is not None:
        z = z[(z - prim.excluded).abs() > 0.1]
    return z


def test_library_has_the_required_primitives():
    assert set(REQUIRED) <= set(list_primitives())


@pytest.mark.parametrize("name", list_primitives())
def test_torch_and_sympy_agree_inside_the_domain(name):
    prim = get_primitive(name)
    z = _inside(prim)
    s = sympy.Symbol("z")
    ref = sympy.lambdify(s, prim.sympy(s), modules="numpy")
    expected = torch.as_tensor(ref(z.numpy()) + 0 * z.numpy(), dtype=torch.float64)
    torch.testing.assert_close(prim.torch_fn(z), expected, rtol=1e-10, atol=1e-12)
    assert prim.valid(z).all()


@pytest.mark.parametrize("name", list_primitives())
def test_safe_version_is_finite_everywhere_and_exact_inside(name):
    prim = get_primitive(name)
    wide = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    assert torch.isfinite(prim.safe(wide)).all()
    z = _inside(prim)
    torch.testing.assert_close(prim.safe(z), prim.torch_fn(z))


def test_unknown_primitive_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown symbolic function 'arcsin'"):
        get_primitive("arcsin")
    with pytest.raises(ValueError, match="already registered"):
        register_primitive(get_primitive("sin"))


# (name, a, b, c, d, x-range): y = a·f(b·x + c) + d must be recovered with R² ≈ 1 and ranked first
CASES = [
    ("x^2", 1.3, 1.0, -0.2, -0.5, (-1, 1)),
    ("x^3", -0.7, 1.0, 0.3, 0.1, (-1, 1)),
    ("1/x", 2.0, 1.0, 1.5, 0.0, (-1, 1)),
    ("sqrt", 1.0, 1.0, 1.0, 0.0, (0, 3)),
    ("exp", 2.0, 1.5, 0.0, 1.0, (-0.5, 2)),
    ("log", 1.0, 1.0, 1.0, 0.0, (0, 3)),
    ("sin", 0.7, math.pi, 0.0, 0.1, (-1, 1)),
    ("tanh", 1.0, 2.0, 0.0, 0.0, (-1, 1)),
    ("gaussian", 1.0, 2.0, 0.0, 0.0, (-1, 1)),
    ("atan", 1.0, 3.0, -0.5, 0.0, (-1, 1)),
    ("asin", 1.0, 0.8, 0.1, 0.0, (-1, 1)),
]


@pytest.mark.parametrize("name,a,b,c,d,span", CASES)
def test_fit_recovers_known_edges(name, a, b, c, d, span):
    x = torch.linspace(*span, 300, dtype=torch.float64)
    prim = get_primitive(name)
    y = a * prim.torch_fn(b * x + c) + d
    fit = fit_primitive(x, y, name)
    assert fit.r2 > 1 - 1e-9
    pred = fit.a * prim.torch_fn(fit.b * x + fit.c) + fit.d
    torch.testing.assert_close(pred, y, rtol=1e-4, atol=1e-4)
    ranked = rank_primitives(x, y)
    # the generating primitive, or an exactly equivalent one (sin/cos, tanh/sigmoid), is ranked first
    assert ranked[0].r2 > 1 - 1e-8
    assert ranked[0].complexity <= prim.complexity


def test_fit_respects_the_domain():
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    y = torch.log(x + 1.5)
    for name in ("log", "sqrt", "1/sqrt", "asin", "atanh"):
        fit = fit_primitive(x, y, name)
        if math.isfinite(fit.r2):
            prim = get_primitive(name)
            assert prim.valid(fit.b * x + fit.c).all(), name


def test_constant_edge_and_bad_samples():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)
    fit = fit_primitive(x, torch.full_like(x, 3.0), "sin")
    assert fit.a == 0 and fit.d == pytest.approx(3.0)
    with pytest.raises(ValueError, match="NaN"):
        fit_primitive(x, x * float("nan"), "x")
    with pytest.raises(ValueError, match="same length"):
        fit_primitive(x, x[:10], "x")


def test_simpler_primitive_wins_when_both_fit():
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    ranked = rank_primitives(x, 3 * x + 1)
    assert ranked[0].name == "x"
    ranked = rank_primitives(x, (x - 0.2) ** 2)
    assert ranked[0].name == "x^2"
