"""kanlab.splines against independent oracles (scipy, closed forms) in float64, plus hypothesis properties.

Oracles: ``scipy.interpolate.BSpline.design_matrix`` and ``BSpline(...).derivative`` for the Cox–de Boor
basis (orders 0–5; uniform, non-uniform, clamped and repeated-interior knots), ``CubicSpline(bc_type=
"natural")``, ``CubicHermiteSpline`` with Catmull–Rom slopes, and the Bernstein closed form (and scipy's
``BPoly``) for de Casteljau's Bézier.  Properties: partition of unity and non-negativity, local support,
global influence of the natural spline, continuity at knots (measured with exact one-sided limits), and
interpolation of every control point.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanlab.splines import (
    bezier,
    bspline_basis,
    bspline_basis_derivative,
    catmull_rom,
    catmull_rom_slopes,
    cubic_hermite,
    natural_cubic,
    uniform_knots,
)

interpolate = pytest.importorskip("scipy.interpolate")

F64 = torch.float64
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# ----------------------------------------------------------------------------------------------------------
# knot vectors used by the oracle tests
# ----------------------------------------------------------------------------------------------------------

def make_knots(kind: str, k: int, rng: np.random.Generator) -> np.ndarray:
    """A knot vector of the given kind with at least a few basis functions of order ``k``."""
    if kind == "uniform":
        return uniform_knots(6, k, (-1.0, 1.0), dtype=F64).numpy()
    if kind == "nonuniform":
        return np.cumsum(np.r_[-1.0, rng.uniform(0.05, 1.0, size=2 * k + 7)])
    if kind == "clamped":  # open/clamped: end knots repeated k+1 times, non-uniform inside
        inner = np.sort(rng.uniform(0.0, 1.0, size=5))
        return np.r_[[0.0] * (k + 1), inner, [1.0] * (k + 1)]
    if kind == "repeated":  # interior knots of multiplicity 2 and k+1 (a jump for the derivative of order 0)
        base = np.cumsum(np.r_[0.0, rng.uniform(0.2, 1.0, size=2 * k + 6)])
        mid = base[len(base) // 2]
        third = base[len(base) // 3]
        return np.sort(np.r_[base, [third], [mid] * k])
    raise ValueError(kind)


KINDS = ["uniform", "nonuniform", "clamped", "repeated"]


def domain_points(t: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Points of ``[t[k], t[n]]`` (the part where the basis is complete): a grid, random points, every knot."""
    n = len(t) - k - 1
    lo, hi = t[k], t[n]
    knots_inside = t[(t >= lo) & (t <= hi)]
    return np.r_[np.linspace(lo, hi, 101), rng.uniform(lo, hi, size=100), knots_inside]


# ----------------------------------------------------------------------------------------------------------
# B-spline basis: scipy oracles
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", range(6))
def test_bspline_basis_matches_scipy_design_matrix(k, kind):
    rng = np.random.default_rng(10 * k + KINDS.index(kind))
    t = make_knots(kind, k, rng)
    x = domain_points(t, k, rng)
    expected = interpolate.BSpline.design_matrix(x, t, k).toarray()
    got = bspline_basis(t64(x), t64(t), k)
    assert got.dtype == F64 and got.shape == (len(x), len(t) - k - 1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_bspline_basis_per_feature_knots_matches_scipy(k):
    rng = np.random.default_rng(100 + k)
    rows = [make_knots(kind, k, rng) for kind in ("uniform", "nonuniform")]
    m = min(len(r) for r in rows)
    rows = [r[:m] for r in rows]
    xs = [rng.uniform(r[k], r[m - k - 1], size=50) for r in rows]
    got = bspline_basis(t64(np.stack(xs, axis=-1)), t64(np.stack(rows)), k)  # (50, 2, K)
    slope = bspline_basis_derivative(t64(np.stack(xs, axis=-1)), t64(np.stack(rows)), k)
    for f, (r, x) in enumerate(zip(rows, xs)):
        expected = interpolate.BSpline.design_matrix(x, r, k).toarray()
        np.testing.assert_allclose(got[:, f].numpy(), expected, rtol=0, atol=1e-13)
        expected_slope = interpolate.BSpline(r, np.eye(m - k - 1), k)(x, nu=1)
        np.testing.assert_allclose(slope[:, f].numpy(), expected_slope, rtol=0, atol=1e-10)


def test_bspline_basis_is_zero_outside_the_knot_span():
    t = uniform_knots(4, 3, (-1.0, 1.0), dtype=F64)
    x = torch.tensor([-10.0, t[0].item() - 1e-9, t[-1].item() + 1e-9, 7.0], dtype=F64)
    assert torch.equal(bspline_basis(x, t, 3), torch.zeros(4, len(t) - 4, dtype=F64))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", range(1, 6))
def test_bspline_derivative_matches_scipy(k, kind):
    rng = np.random.default_rng(1000 + 10 * k + KINDS.index(kind))
    t = make_knots(kind, k, rng)
    n = len(t) - k - 1
    x = rng.uniform(t[k], t[n], size=200)
    x = x[np.min(np.abs(x[:, None] - t[None, :]), axis=1) > 1e-6]  # derivatives jump at knots: stay off them
    all_basis = interpolate.BSpline(t, np.eye(n), k)  # column i of the value is B_i
    for nu in range(1, k + 1):
        expected = all_basis(x, nu=nu)  # scipy's evaluation of the nu-th derivative
        if kind != "repeated":  # .derivative() refuses knots of multiplicity k+1; elsewhere it must agree too
            np.testing.assert_allclose(all_basis.derivative(nu)(x), expected, atol=1e-9)
        got = bspline_basis_derivative(t64(x), t64(t), k, n=nu)
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-11 * scale, err_msg=f"nu={nu}")
    assert torch.equal(bspline_basis_derivative(t64(x), t64(t), k, n=k + 1), torch.zeros(len(x), n, dtype=F64))
    assert torch.equal(bspline_basis_derivative(t64(x), t64(t), k, n=0), bspline_basis(t64(x), t64(t), k))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_autograd_and_double_backward_through_bspline_basis(k):
    rng = np.random.default_rng(7 + k)
    t = t64(make_knots("nonuniform", k, rng))
    n = len(t) - k - 1
    x = t64(rng.uniform(t[k].item(), t[n].item(), size=12)).requires_grad_(True)
    c = t64(rng.normal(size=n))

    def curve(x):
        return bspline_basis(x, t, k) @ c

    # autograd's first and second derivatives equal the closed-form derivative of the basis
    (d1,) = torch.autograd.grad(curve(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(d1.detach().numpy(), (bspline_basis_derivative(x.detach(), t, k, 1) @ c).numpy(),
                               atol=1e-10)
    expected_d2 = (bspline_basis_derivative(x.detach(), t, k, 2) @ c).numpy()
    if d1.requires_grad:
        (d2,) = torch.autograd.grad(d1.sum(), x)
        np.testing.assert_allclose(d2.numpy(), expected_d2, atol=1e-9)
    else:  # order 1: piecewise linear, the first derivative does not depend on x
        assert k == 1 and not expected_d2.any()
    # numerical gradient checks (first and second order) for x and for coefficients at once
    assert torch.autograd.gradcheck(lambda x, c: bspline_basis(x, t, k) @ c, (x, c.clone().requires_grad_(True)))
    assert torch.autograd.gradgradcheck(lambda x: bspline_basis(x, t, k), (x,))


# ----------------------------------------------------------------------------------------------------------
# interpolating cubics and Bézier: scipy and closed-form oracles
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 4, 9])
@pytest.mark.parametrize("vshape", [(), (3,)])
def test_natural_cubic_matches_scipy(n, vshape):
    rng = np.random.default_rng(n)
    xk = np.cumsum(rng.uniform(0.1, 1.5, size=n))
    yk = rng.normal(size=(n, *vshape))
    oracle = interpolate.CubicSpline(xk, yk, bc_type="natural")
    s = natural_cubic(t64(xk), t64(yk))
    x = np.r_[np.linspace(xk[0] - 0.5, xk[-1] + 0.5, 301), xk]  # inside, at the knots and beyond the ends
    for nu in range(4):
        np.testing.assert_allclose(s(t64(x), nu).numpy(), oracle(x, nu), rtol=0, atol=1e-10, err_msg=f"nu={nu}")


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_catmull_rom_hermite_matches_scipy(n):
    rng = np.random.default_rng(50 + n)
    xk = np.cumsum(rng.uniform(0.1, 1.5, size=n))
    yk = rng.normal(size=n)
    # the Catmull–Rom slopes, written out independently
    if n == 2:
        m = np.full(2, (yk[1] - yk[0]) / (xk[1] - xk[0]))
    else:
        m = np.r_[(yk[1] - yk[0]) / (xk[1] - xk[0]),
                  [(yk[i + 1] - yk[i - 1]) / (xk[i + 1] - xk[i - 1]) for i in range(1, n - 1)],
                  (yk[-1] - yk[-2]) / (xk[-1] - xk[-2])]
    np.testing.assert_allclose(catmull_rom_slopes(t64(xk), t64(yk)).numpy(), m, rtol=1e-14, atol=1e-14)
    oracle = interpolate.CubicHermiteSpline(xk, yk, m)
    x = np.r_[np.linspace(xk[0] - 0.3, xk[-1] + 0.3, 301), xk]
    for s in (catmull_rom(t64(np.stack([xk, yk], axis=1))), catmull_rom(t64(xk), t64(yk)),
              cubic_hermite(t64(xk), t64(yk))):
        for nu in range(4):
            np.testing.assert_allclose(s(t64(x), nu).numpy(), oracle(x, nu), rtol=0, atol=1e-10)
    # explicit slopes, vector valued
    ys, ms = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    s = cubic_hermite(t64(xk), t64(ys), t64(ms))
    np.testing.assert_allclose(s(t64(x)).numpy(), interpolate.CubicHermiteSpline(xk, ys, ms)(x), atol=1e-10)


def bernstein_closed_form(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``Σ_i C(n, i) t^i (1 - t)^(n - i) P_i``."""
    n = len(p) - 1
    w = np.stack([math.comb(n, i) * t**i * (1 - t) ** (n - i) for i in range(n + 1)], axis=-1)  # (T, n+1)
    return w @ p


@pytest.mark.parametrize("degree", range(8))
def test_bezier_de_casteljau_matches_bernstein_form(degree):
    rng = np.random.default_rng(degree)
    t = np.r_[0.0, rng.uniform(0, 1, size=60), 1.0]
    p2 = rng.normal(size=(degree + 1, 2))
    np.testing.assert_allclose(bezier(t64(p2), t64(t)).numpy(), bernstein_closed_form(p2, t), atol=1e-13)
    p1 = p2[:, 0]
    got = bezier(t64(p1), t64(t)).numpy()
    np.testing.assert_allclose(got, bernstein_closed_form(p1, t), atol=1e-13)
    np.testing.assert_allclose(got, interpolate.BPoly(p1[:, None], [0.0, 1.0])(t), atol=1e-13)
    # shapes: any parameter shape
    assert bezier(t64(p2), t64(t).reshape(2, -1)).shape == (2, len(t) // 2, 2)
    # a Bézier curve passes through its first and last control points
    ends = bezier(t64(p2), t64([0.0, 1.0])).numpy()
    np.testing.assert_allclose(ends, p2[[0, -1]], atol=1e-15)


# ----------------------------------------------------------------------------------------------------------
# hypothesis strategies
# ----------------------------------------------------------------------------------------------------------

@st.composite
def knot_vectors(draw, max_order=5, max_multiplicity=None, min_gap=0.05):
    """(k, knots): ``n`` basis functions of order ``k``; gaps are 0 (a repeated knot) or in [min_gap, 2]."""
    k = draw(st.integers(0, max_order))
    n = draw(st.integers(k + 1, k + 7))
    mult_cap = k + 1 if max_multiplicity is None else max_multiplicity
    gaps, run = [], 1
    for _ in range(n + k):
        repeat = mult_cap > 1 and run < mult_cap and draw(st.booleans()) and draw(st.booleans())
        if repeat:
            gaps.append(0.0)
            run += 1
        else:
            gaps.append(draw(st.floats(min_gap, 2.0)))
            run = 1
    t = np.cumsum(np.r_[draw(st.floats(-3.0, 3.0)), gaps])
    if not t[n] > t[k]:  # the complete part of the basis would be empty: spread the last knots
        t[n:] += 1.0 + np.arange(len(t) - n)
    return k, t


def interval_ids(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index i of the knot interval [t_i, t_{i+1}) holding each x (for points strictly inside an interval)."""
    return np.searchsorted(t, x, side="right") - 1


def interior_samples(t: np.ndarray, per: int = 5) -> np.ndarray:
    """``per`` points strictly inside every non-degenerate knot interval of ``t``."""
    u = (np.arange(per) + 0.5) / per
    return np.concatenate([a + (b - a) * u for a, b in zip(t[:-1], t[1:]) if b > a])


# ----------------------------------------------------------------------------------------------------------
# properties of the B-spline basis
# ----------------------------------------------------------------------------------------------------------

@PROPS
@given(knot_vectors(), st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_partition_of_unity_and_non_negativity(kt, fractions):
    k, t = kt
    n = len(t) - k - 1
    lo, hi = t[k], t[n]
    x = np.r_[lo + (hi - lo) * np.asarray(fractions), lo, hi, t[(t >= lo) & (t <= hi)]]
    b = bspline_basis(t64(x), t64(t), k)
    np.testing.assert_allclose(b.sum(-1).numpy(), 1.0, rtol=0, atol=1e-12)
    # non-negative everywhere, also outside the complete part and outside the knot span
    outside = np.r_[np.linspace(t[0] - 1, t[-1] + 1, 57)]
    assert bool((b >= 0).all()) and bool((bspline_basis(t64(outside), t64(t), k) >= 0).all())


@PROPS
@given(knot_vectors(), st.data())
def test_moving_one_bspline_coefficient_changes_at_most_order_plus_one_intervals(kt, data):
    k, t = kt
    n = len(t) - k - 1
    j = data.draw(st.integers(0, n - 1))
    c = np.asarray(data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
    dc = data.draw(st.floats(0.1, 3.0)) * data.draw(st.sampled_from([-1.0, 1.0]))
    x = interior_samples(t)
    b = bspline_basis(t64(x), t64(t), k)
    c2 = c.copy()
    c2[j] += dc
    diff = np.abs((b @ t64(c2) - b @ t64(c)).numpy())
    changed = set(interval_ids(t, x[diff > 0]).tolist())
    # exactly the non-degenerate intervals of the support [t_j, t_{j+k+1}] change, and no other
    support = {i for i in range(j, j + k + 1) if t[i + 1] > t[i]}
    assert changed == support
    assert len(changed) <= k + 1


# ----------------------------------------------------------------------------------------------------------
# local vs global control of the interpolating splines
# ----------------------------------------------------------------------------------------------------------

@st.composite
def point_sets(draw, min_points=3, max_points=10):
    n = draw(st.integers(min_points, max_points))
    gaps = draw(st.lists(st.floats(0.3, 2.0), min_size=n - 1, max_size=n - 1))
    xk = np.cumsum(np.r_[draw(st.floats(-2, 2)), gaps])
    yk = np.asarray(draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
    j = draw(st.integers(0, n - 1))
    dy = draw(st.floats(0.1, 2.0)) * draw(st.sampled_from([-1.0, 1.0]))
    return xk, yk, j, dy


def changed_intervals(make, xk, yk, j, dy, tol):
    x = interior_samples(xk, per=7)
    y2 = yk.copy()
    y2[j] += dy
    diff = np.abs((make(t64(xk), t64(y2))(t64(x)) - make(t64(xk), t64(yk))(t64(x))).numpy())
    return set(interval_ids(xk, x[diff > tol]).tolist())


@PROPS
@given(point_sets())
def test_catmull_rom_is_local_natural_cubic_is_global(case):
    xk, yk, j, dy = case
    n = len(xk)
    cr = changed_intervals(catmull_rom, xk, yk, j, dy, tol=0.0)
    neighbourhood = {i for i in range(j - 2, j + 2) if 0 <= i < n - 1}
    assert cr <= neighbourhood, f"Catmull–Rom changed intervals {sorted(cr)} moving point {j}"
    assert {i for i in (j - 1, j) if 0 <= i < n - 1} <= cr  # the two pieces that touch the point do move
    nat = changed_intervals(natural_cubic, xk, yk, j, dy, tol=1e-13)
    assert nat == set(range(n - 1)), f"natural cubic changed only {sorted(nat)} of {n - 1} intervals"


# ----------------------------------------------------------------------------------------------------------
# continuity at the knots, measured with exact one-sided limits
# ----------------------------------------------------------------------------------------------------------

def left_limits(derivs, x0: float, eps: float, order: int) -> np.ndarray:
    """Limits from the left at ``x0`` of the derivatives 0..order of a piecewise polynomial of degree
    ``order``: the Taylor series of the left piece, taken at ``x0 - eps`` (exact for a polynomial)."""
    d = np.array([derivs(x0 - eps, m) for m in range(order + 1)])
    return np.array([sum(d[m + i] * eps**i / math.factorial(i) for i in range(order + 1 - m))
                     for m in range(order + 1)])


def jumps(derivs, knots, order: int) -> np.ndarray:
    """``|f^(m)(t+) - f^(m)(t-)|`` for m = 0..order at each knot: shape (len(knots), order + 1)."""
    out = []
    for t0, gap in knots:
        right = np.array([derivs(t0, m) for m in range(order + 1)])  # splines here are right-continuous
        out.append(np.abs(right - left_limits(derivs, t0, 0.25 * gap, order)))
    return np.array(out)


def bspline_curve_derivs(t, k, c):
    tt, cc = t64(t), t64(c)
    return lambda x, m: float(bspline_basis_derivative(t64([x]), tt, k, n=m)[0] @ cc)


def piecewise_derivs(s):
    return lambda x, m: float(s(t64([x]), m)[0])


def inner_knots(xk: np.ndarray, lo: float, hi: float):
    """(knot, gap to the previous distinct knot) for the distinct knots strictly inside (lo, hi)."""
    u = np.unique(xk)
    return [(u[i], u[i] - u[i - 1]) for i in range(1, len(u)) if lo < u[i] < hi]


@PROPS
@given(knot_vectors(max_order=5, min_gap=0.2), st.data())
def test_bspline_curves_are_c_k_minus_multiplicity(kt, data):
    """A spline of order k is C^(k-m) at a knot of multiplicity m: C² for cubics with simple knots."""
    k, t = kt
    n = len(t) - k - 1
    c = np.asarray(data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
    f = bspline_curve_derivs(t, k, c)
    for t0, gap in inner_knots(t, t[k], t[n]):
        mult = int(np.sum(t == t0))
        smooth = k - mult  # derivatives 0..smooth are continuous
        if smooth < 0:
            continue
        jump = jumps(f, [(t0, gap)], k)[0]
        scale = 1.0 + max(abs(f(t0, m)) for m in range(k + 1))
        assert (jump[: smooth + 1] <= 1e-8 * scale).all(), (t0, mult, jump)


def test_cubic_bspline_is_c2_but_not_c3_and_the_check_can_see_a_jump():
    t = uniform_knots(5, 3, (0.0, 1.0), dtype=F64).numpy()
    c = np.array([0.3, -1.0, 0.8, 0.1, 1.5, -0.7, 0.2, 0.9])
    j = jumps(bspline_curve_derivs(t, 3, c), inner_knots(t, t[3], t[8]), 3)
    assert j.shape == (4, 4)
    assert (j[:, :3] < 1e-8).all() and (j[:, 3] > 1.0).all()
    # a double knot makes the cubic C¹ only: the second derivative jumps there
    t2 = np.sort(np.r_[t, 0.4])
    c2 = np.r_[c, 0.5]
    j2 = jumps(bspline_curve_derivs(t2, 3, c2), [(0.4, 0.2)], 3)[0]
    assert (j2[:2] < 1e-8).all() and j2[2] > 1e-3


@PROPS
@given(point_sets(min_points=3))
def test_natural_cubic_is_c2_and_catmull_rom_is_c1(case):
    xk, yk, _, _ = case
    knots = inner_knots(xk, xk[0], xk[-1])
    scale = 1.0 + np.abs(yk).max()
    nat = natural_cubic(t64(xk), t64(yk))
    assert (jumps(piecewise_derivs(nat), knots, 3)[:, :3] <= 1e-8 * scale * 10).all()
    # natural end conditions
    np.testing.assert_allclose(nat(t64(xk[[0, -1]]), 2).numpy(), 0.0, atol=1e-9 * scale)
    cr = catmull_rom(t64(xk), t64(yk))
    assert (jumps(piecewise_derivs(cr), knots, 3)[:, :2] <= 1e-8 * scale * 10).all()


def test_catmull_rom_is_not_c2_in_general():
    xk = np.array([0.0, 1.0, 1.5, 3.0, 4.0])
    yk = np.array([0.0, 1.0, -0.5, 2.0, 0.0])
    j = jumps(piecewise_derivs(catmull_rom(t64(xk), t64(yk))), inner_knots(xk, 0.0, 4.0), 3)
    assert (j[:, :2] < 1e-9).all() and (j[:, 2] > 0.1).any()


# ----------------------------------------------------------------------------------------------------------
# interpolation of every control point
# ----------------------------------------------------------------------------------------------------------

@PROPS
@given(point_sets(min_points=2))
def test_interpolating_splines_pass_through_every_point(case):
    xk, yk, _, _ = case
    for s in (natural_cubic(t64(xk), t64(yk)), catmull_rom(t64(xk), t64(yk))):
        np.testing.assert_allclose(s(t64(xk)).numpy(), yk, rtol=0, atol=1e-12)
    slopes = np.sin(xk)
    h = cubic_hermite(t64(xk), t64(yk), t64(slopes))
    np.testing.assert_allclose(h(t64(xk)).numpy(), yk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h(t64(xk), 1).numpy(), slopes, rtol=0, atol=1e-10)


def test_natural_cubic_is_differentiable_in_the_values():
    xk = t64([0.0, 0.7, 1.1, 2.0, 3.2])
    yk = t64([0.3, -1.0, 0.5, 0.2, 1.0]).requires_grad_(True)
    x = t64(np.linspace(-0.2, 3.4, 9))
    assert torch.autograd.gradcheck(lambda y: natural_cubic(xk, y)(x), (yk,))
    assert torch.autograd.gradcheck(lambda y: catmull_rom(xk, y)(x), (yk,))


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: bspline_basis(t64([0.0]), t64([0.0, 1.0, 2.0]), -1), "order"),
    (lambda: bspline_basis(t64([0.0]), t64([0.0, 2.0, 1.0, 3.0]), 1), "non-decreasing"),
    (lambda: bspline_basis(t64([0.0]), t64([0.0, 1.0]), 1), "at least 3 knots"),
    (lambda: bspline_basis(t64([[0.0, 1.0]]), t64(np.zeros((3, 5))), 1), "features"),
    (lambda: natural_cubic(t64([0.0, 1.0, 1.0]), t64([0.0, 1.0, 2.0])), "strictly increasing"),
    (lambda: catmull_rom(t64([[0.0, 1.0, 2.0]])), r"\(n, 2\)"),
    (lambda: cubic_hermite(t64([0.0, 1.0]), t64([0.0, 1.0]), t64([1.0])), "slopes"),
    (lambda: bezier(t64(np.zeros((2, 2, 2))), t64([0.5])), "control_points"),
])
def test_bad_input_gives_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
