"""Each basis family against an independent formulation: scipy, numpy, closed forms, quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import legendre as npleg

from kanlab.basis import create_basis
from kanlab.layers import KANLinear
from kanlab.splines import catmull_rom

scipy_interpolate = pytest.importorskip("scipy.interpolate")
scipy_special = pytest.importorskip("scipy.special")
scipy_integrate = pytest.importorskip("scipy.integrate")

F64 = torch.float64


def bound(name: str, n_in: int = 3, n_out: int = 2, **kw):
    return create_basis(name, **kw).bind(n_in, n_out, dtype=F64)


def grid_points(lo: float = -1.0, hi: float = 1.0, n: int = 101, n_in: int = 3) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=F64)[:, None].expand(-1, n_in).contiguous()


def adapt(basis, seed: int = 0):
    """Move a grid family's knots to data quantiles (non-uniform knots for the oracles)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(300, basis.in_features, generator=g, dtype=F64) * 0.5
    basis.update_grid(x, torch.zeros(2, basis.in_features, basis.num_functions, dtype=F64))
    return basis


# ---- splines ------------------------------------------------------------------------------------------
def test_bspline_matches_scipy_design_matrix():
    basis = adapt(bound("bspline", grid_size=6, order=3))
    for i in range(3):
        t = basis.grid[i].numpy()
        x = np.linspace(t[3], t[-4], 57)[:-1]
        ref = scipy_interpolate.BSpline.design_matrix(x, t, 3).toarray()
        xs = torch.zeros(len(x), 3, dtype=F64)
        xs[:, i] = torch.from_numpy(x)
        np.testing.assert_allclose(basis(xs)[:, i].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("adaptive", [False, True])
def test_natural_cubic_matches_scipy_cubic_spline(adaptive):
    basis = bound("natural_cubic", grid_size=6)
    if adaptive:
        adapt(basis)
    x = grid_points(-2.5, 2.5, 203)
    values = basis(x)
    for i in range(3):
        knots = basis.grid[i].numpy()
        spline = scipy_interpolate.CubicSpline(knots, np.eye(len(knots)), bc_type="natural")
        xi = x[:, i].numpy()
        xc = np.clip(xi, knots[0], knots[-1])
        ref = spline(xc) + (xi - xc)[:, None] * spline(xc, 1)  # linear (C²) continuation outside
        np.testing.assert_allclose(values[:, i].numpy(), ref, atol=1e-12)


def _catmull_rom_slopes(knots: np.ndarray, y: np.ndarray) -> np.ndarray:
    m = np.empty_like(y)
    m[1:-1] = (y[2:] - y[:-2]) / (knots[2:] - knots[:-2])[:, None]
    m[0] = (y[1] - y[0]) / (knots[1] - knots[0])
    m[-1] = (y[-1] - y[-2]) / (knots[-1] - knots[-2])
    return m


@pytest.mark.parametrize("adaptive", [False, True])
def test_catmull_rom_matches_scipy_cubic_hermite(adaptive):
    basis = bound("catmull_rom", grid_size=7)
    if adaptive:
        adapt(basis)
    x = grid_points(-2.5, 2.5, 203)
    values = basis(x)
    for i in range(3):
        knots = basis.grid[i].numpy()
        eye = np.eye(len(knots))
        spline = scipy_interpolate.CubicHermiteSpline(knots, eye, _catmull_rom_slopes(knots, eye))
        xi = x[:, i].numpy()
        xc = np.clip(xi, knots[0], knots[-1])
        ref = spline(xc) + (xi - xc)[:, None] * spline(xc, 1)  # tangent-line continuation outside
        np.testing.assert_allclose(values[:, i].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("grid_size", [1, 2, 3])
def test_catmull_rom_few_knots_matches_splines_module(grid_size):
    basis = bound("catmull_rom", n_in=1, grid_size=grid_size)
    y = torch.randn(grid_size + 1, dtype=F64)
    x = torch.linspace(-1, 1, 41, dtype=F64)
    ref = catmull_rom(basis.grid[0], y)(x)
    torch.testing.assert_close(basis(x[:, None])[:, 0] @ y, ref)


def test_catmull_rom_is_local_and_natural_cubic_is_global():
    x = grid_points(-1, 1, 401, n_in=1)
    g = 10
    knots = torch.linspace(-1, 1, g + 1, dtype=F64)
    interval = torch.bucketize(x[:, 0], knots[1:-1])  # interval index of every point
    j = 5
    for name, max_intervals in (("catmull_rom", 4), ("natural_cubic", None)):
        values = bound(name, n_in=1, grid_size=g)(x)[:, 0, j]  # response to moving knot value j
        touched = set(interval[values.abs() > 1e-12].tolist())
        if max_intervals is None:
            assert len(touched) == g
        else:
            assert touched <= set(range(j - 2, j + 2)) and len(touched) == max_intervals


# ---- polynomials --------------------------------------------------------------------------------------
@pytest.mark.parametrize("squash", ["tanh", "clamp"])
def test_chebyshev_and_legendre_match_numpy_vander(squash):
    x = grid_points(-3, 3, 121)
    t = np.tanh(x.numpy()) if squash == "tanh" else np.clip(x.numpy(), -1, 1)
    for name, vander in (("chebyshev", npcheb.chebvander), ("legendre", npleg.legvander)):
        values = bound(name, degree=7, squash=squash)(x).numpy()
        np.testing.assert_allclose(values, vander(t, 7), atol=1e-12)


def test_chebyshev_gradient_is_finite_where_tanh_saturates():
    x = torch.tensor([[30.0, -30.0, 1.0]], dtype=torch.float32, requires_grad=True)
    bound_basis = create_basis("chebyshev", degree=6).bind(3)
    bound_basis(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.0, 0.0), (-0.5, 0.3), (2.5, -0.7)])
def test_jacobi_matches_scipy_eval_jacobi(alpha, beta):
    x = grid_points(-2, 2, 81)
    values = bound("jacobi", degree=6, alpha=alpha, beta=beta)(x).numpy()
    t = np.tanh(x.numpy())
    ref = np.stack([scipy_special.eval_jacobi(n, alpha, beta, t) for n in range(7)], -1)
    np.testing.assert_allclose(values, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("m", [6, 9, 20])
def test_gram_polynomials_are_orthogonal_on_their_points(m):
    degree = 5
    basis = bound("gram", n_in=1, degree=degree, num_points=m, squash="clamp")
    points = torch.linspace(-1, 1, m, dtype=F64)[:, None]
    p = basis(points)[:, 0].detach()  # (m, degree+1)
    gram = (p.t() @ p).numpy()
    off = gram - np.diag(np.diag(gram))
    assert np.abs(off).max() < 1e-12 * np.abs(gram).max()
    # leading coefficient of Legendre's P_n, (2n)!/(2^n n!^2) (fit the polynomial of the highest degree exactly)
    xs = torch.linspace(-0.9, 0.9, 40, dtype=F64)[:, None]
    top = basis(xs)[:, 0, degree].detach().numpy()
    lead = np.polynomial.polynomial.polyfit(xs[:, 0].numpy(), top, degree)[-1]
    assert abs(lead - math.comb(2 * degree, degree) / 2 ** degree) < 1e-8


def test_gram_with_continuum_beta_is_legendre():
    basis = bound("gram", degree=6, num_points=10 ** 9)  # m → ∞: β_n → n²/(4n² − 1)
    x = grid_points(-2, 2, 41)
    np.testing.assert_allclose(basis(x).detach().numpy(), npleg.legvander(np.tanh(x.numpy()), 6), atol=1e-6)


def test_gram_beta_is_learnable_per_input():
    basis = bound("gram", degree=4)
    assert basis.beta.requires_grad and basis.beta.shape == (3, 3)
    x = grid_points(-1, 1, 11)
    basis(x)[..., 1, -1].sum().backward()
    assert basis.beta.grad[1].abs().sum() > 0 and basis.beta.grad[0].abs().sum() == 0


def test_bernstein_matches_scipy_bpoly_and_is_flat_outside():
    lo, hi, d = -2.0, 3.0, 6
    x = grid_points(-4, 5, 91)
    values = bound("bernstein", degree=d, grid_range=(lo, hi))(x).numpy()
    bpoly = scipy_interpolate.BPoly(np.eye(d + 1)[:, None, :], [lo, hi])  # Bernstein basis on [lo, hi]
    ref = bpoly(np.clip(x.numpy(), lo, hi))
    np.testing.assert_allclose(values, ref, atol=1e-12)
    np.testing.assert_allclose(values.sum(-1), 1.0, atol=1e-12)


def test_fourier_closed_form():
    x = grid_points(-5, 5, 51)
    values = bound("fourier", num_frequencies=4, base_frequency=1.5)(x).numpy()
    k = 1.5 * np.arange(1, 5)
    ref = np.concatenate([np.cos(x.numpy()[..., None] * k), np.sin(x.numpy()[..., None] * k)], -1)
    np.testing.assert_allclose(values, ref, atol=1e-12)


# ---- wavelets -----------------------------------------------------------------------------------------
def _meyer_by_quadrature(t: float) -> float:
    def amplitude(w: float) -> float:
        if 2 * math.pi / 3 <= w <= 4 * math.pi / 3:
            return math.sin(math.pi / 2 * (3 * w / (2 * math.pi) - 1))
        if 4 * math.pi / 3 <= w <= 8 * math.pi / 3:
            return math.cos(math.pi / 2 * (3 * w / (4 * math.pi) - 1))
        return 0.0

    total = 0.0
    for a, b in ((2 * math.pi / 3, 4 * math.pi / 3), (4 * math.pi / 3, 8 * math.pi / 3)):
        total += scipy_integrate.quad(lambda w: amplitude(w) * math.cos(w * t), a, b, limit=200)[0]
    return total / math.pi


def _hann(t, half_width):
    return np.where(np.abs(t) < half_width, np.cos(np.pi * t / (2 * half_width)) ** 2, 0.0)


MOTHERS = {
    "mexican_hat": lambda t: 2 / (np.sqrt(3) * np.pi ** 0.25) * (1 - t ** 2) * np.exp(-t ** 2 / 2),
    "morlet": lambda t: np.cos(5.0 * t) * np.exp(-t ** 2 / 2),
    "dog": lambda t: -t * np.exp(-t ** 2 / 2),
    "shannon": lambda t: (2 * np.sinc(2 * t) - np.sinc(t)) * _hann(t, 4.0),
    "meyer": np.vectorize(_meyer_by_quadrature),
}


@pytest.mark.parametrize("name", sorted(MOTHERS))
def test_wavelets_match_closed_forms_with_per_edge_scale_and_translation(name):
    basis = bound(name, n_in=3, n_out=2)
    assert basis.num_functions == 2  # one wavelet per edge
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # make every edge different
        basis.translation.copy_(torch.randn(2, 3, generator=g, dtype=F64) * 0.5)
        basis.log_scale.copy_(torch.randn(2, 3, generator=g, dtype=F64) * 0.5)
    x = grid_points(-3, 3, 61 if name == "meyer" else 301)
    values = basis(x).detach().numpy()  # (N, in, K)
    tau, scale = basis.translation.detach().numpy(), basis.scale.detach().numpy()
    for o in range(2):
        for i in range(3):
            t = (x[:, i].numpy() - tau[o, i]) / scale[o, i]
            np.testing.assert_allclose(values[:, i, o], MOTHERS[name](t), atol=1e-10)


def test_shannon_window_acts_in_t_not_across_features():
    wide = bound("shannon", n_in=5, n_out=1, window=2.0)
    x = torch.zeros(1, 5, dtype=F64)
    # all inputs at the same scaled position give the same value whatever their feature index
    assert torch.allclose(wide(x)[0, :, 0], wide(x)[0, 0, 0].expand(5))
    # and beyond |t| >= window the value is exactly 0
    t_far = wide.translation[0, 0] + 2.0 * wide.scale[0, 0]
    assert wide(t_far.detach().expand(1, 5))[0, 0, 0] == 0


def test_wavelet_layer_with_diagonal_coefficients_is_wav_kan():
    layer = KANLinear(3, 2, basis="mexican_hat", base_activation="zero", bias=False, dtype=F64)
    w = torch.randn(2, 3, dtype=F64)
    with torch.no_grad():
        layer.coef.zero_()
        for o in range(2):
            layer.coef[o, :, o] = w[o]
        layer.spline_scaler.fill_(1.0)
    x = torch.randn(17, 3, dtype=F64)
    tau, scale = layer.basis.translation, layer.basis.scale
    t = ((x[:, None, :] - tau) / scale).detach().numpy()  # (N, out, in)
    ref = (w.numpy() * MOTHERS["mexican_hat"](t)).sum(-1)
    np.testing.assert_allclose(layer(x).detach().numpy(), ref, atol=1e-12)


# ---- rational, ReLU bumps, RBF -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["per_input", "grouped", "per_edge"])
def test_rational_matches_closed_form(mode):
    kw = {"groups": 2} if mode == "grouped" else {"per_edge": True} if mode == "per_edge" else {}
    basis = create_basis("rational", numerator_degree=3, denominator_degree=2, **kw).bind(4, 2, dtype=F64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        basis.denominator.copy_(torch.randn(basis.denominator.shape, generator=g, dtype=F64))
    x = torch.randn(50, 4, generator=g, dtype=F64) * 2
    values = basis(x).detach().numpy()
    b = basis.denominator.detach().numpy()
    xn = x.numpy()
    for i in range(4):
        for o in range(2 if mode == "per_edge" else 1):
            coeffs = b[o, i] if mode == "per_edge" else b[i // 2] if mode == "grouped" else b[i]
            q = 1 + np.abs(coeffs[0] * xn[:, i] + coeffs[1] * xn[:, i] ** 2)
            ref = np.stack([xn[:, i] ** k / q for k in range(4)], -1)
            got = values[:, i, 4 * o: 4 * o + 4] if mode == "per_edge" else values[:, i]
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_relu_bumps_closed_form():
    g, k = 4, 2
    basis = bound("relu", grid_size=g, order=k, grid_range=(0.0, 1.0))
    x = grid_points(-1, 2, 301)
    values = basis(x).numpy()
    h = 1 / g
    a = (np.arange(g + k) - k) * h
    b = a + (k + 1) * h
    xn = x.numpy()[..., None]
    ref = (np.maximum(xn - a, 0) * np.maximum(b - xn, 0)) ** 2 * 16 / ((k + 1) * h) ** 4
    np.testing.assert_allclose(values, ref, atol=1e-12)
    mid = torch.tensor((a + b) / 2)[:, None].expand(-1, 3)
    np.testing.assert_allclose(np.diagonal(basis(mid)[:, 0].numpy()), 1.0)


def test_rbf_closed_form():
    basis = bound("rbf", num_centers=6, grid_range=(-2.0, 2.0), width_scale=1.5)
    x = grid_points(-3, 3, 61)
    centres = np.linspace(-2, 2, 6)
    width = 1.5 * 4 / 5
    ref = np.exp(-(((x.numpy()[..., None] - centres) / width) ** 2))
    np.testing.assert_allclose(basis(x).numpy(), ref, atol=1e-12)


# ---- hyperparameter validation --------------------------------------------------------------------------
BAD = [
    ("bspline", {"grid_size": 0}), ("catmull_rom", {"grid_size": 0}), ("natural_cubic", {"grid_eps": 2.0}),
    ("natural_cubic", {"grid_range": (1.0, -1.0)}), ("rbf", {"num_centers": 0}),
    ("rbf", {"grid_range": (0.0, math.inf)}), ("chebyshev", {"degree": -1}), ("legendre", {"degree": 2.5}),
    ("chebyshev", {"squash": "sigmoid"}), ("gram", {"num_points": 3, "degree": 5}),
    ("jacobi", {"alpha": -1.0}), ("bernstein", {"grid_range": (0.0, 0.0)}), ("fourier", {"num_frequencies": 0}),
    ("fourier", {"base_frequency": -1.0}), ("morlet", {"omega0": 0.0}), ("shannon", {"window": -1.0}),
    ("mexican_hat", {"num_wavelets": 0}), ("meyer", {"width_scale": float("nan")}),
    ("rational", {"denominator_degree": 0}), ("rational", {"groups": 2, "per_edge": True}),
    ("relu", {"order": -1}), ("dog", {"grid_range": (1.0,)}),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{'-'.join(k)}" for n, k in BAD])
def test_bad_hyperparameters_raise_a_clear_error(name, kwargs):
    key = next(iter(kwargs))
    with pytest.raises(ValueError, match=key):
        create_basis(name, **kwargs)


def test_binding_errors_are_clear():
    with pytest.raises(ValueError, match="divide"):
        KANLinear(3, 2, basis="rational", groups=2)
    with pytest.raises(ValueError, match="out_features"):
        create_basis("morlet", in_features=3)
    layer = KANLinear(4, 3, basis="rbf", num_centers=8)
    assert layer.coef.shape == (3, 4, 8)
