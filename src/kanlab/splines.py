"""The spline mathematics of kanlab, as pure tensor functions.

Everything here is stateless and differentiable with autograd (including double backward):

* :func:`bspline_basis` / :func:`bspline_basis_derivative` — Cox–de Boor recursion for any order and any
  non-decreasing knot vector (repeated knots allowed; ``0/0`` is read as ``0``);
* :func:`bezier` — Bézier curves by de Casteljau's algorithm;
* :func:`cubic_hermite` / :func:`catmull_rom` — the C¹ piecewise cubic through given points, with given
  slopes or Catmull–Rom (finite-difference) tangents;
* :func:`natural_cubic` — the C² interpolating cubic with zero second derivative at both ends
  (tridiagonal solve).

The interpolating constructors return a :class:`PiecewiseCubic`, a callable spline: ``s = natural_cubic(xk,
yk); s(x)``.  Outside ``[xk[0], xk[-1]]`` a :class:`PiecewiseCubic` continues the end polynomials (as
``scipy.interpolate.CubicSpline`` does by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "bspline_basis",
    "bspline_basis_derivative",
    "uniform_knots",
    "bezier",
    "PiecewiseCubic",
    "cubic_hermite",
    "catmull_rom",
    "catmull_rom_slopes",
    "natural_cubic",
]


def _as_tensor(a, like: Tensor | None = None) -> Tensor:
    if isinstance(a, Tensor):
        return a
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    return torch.as_tensor(a, dtype=dtype, device=device)


def _check_knots(knots: Tensor, order: int) -> None:
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be a non-negative integer, got {order!r}")
    if knots.dim() not in (1, 2):
        raise ValueError(f"knots must be 1-D (shared) or 2-D (one row per feature), got shape {tuple(knots.shape)}")
    if knots.shape[-1] < order + 2:
        raise ValueError(
            f"a B-spline of order {order} needs at least {order + 2} knots, got {knots.shape[-1]}"
        )
    # data-dependent check: skipped while torch.compile/torch.export trace (module grids are sorted by design)
    if not torch.compiler.is_compiling() and bool((knots[..., 1:] < knots[..., :-1]).any()):
        raise ValueError("knots must be non-decreasing")


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0`` and ``0`` where ``den == 0`` (the Cox–de Boor convention)."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)), torch.zeros_like(num))


def _order0(x: Tensor, t: Tensor) -> Tensor:
    """Indicator functions of the half-open knot intervals ``[t_i, t_{i+1})``.

    ``x`` has shape ``(..., 1)`` and ``t`` broadcasts against it with the knot index last.  The right end of
    the knot vector is closed: ``x == t[-1]`` belongs to the last interval of positive length.
    """
    left, right = t[..., :-1], t[..., 1:]
    inside = (x >= left) & (x < right)
    # Close the right end: the last non-degenerate interval also takes x == t[-1].
    last = t[..., -1:]
    nondegenerate = right > left
    # index of the last interval of positive length, per knot row
    idx = torch.arange(left.shape[-1], device=t.device)
    last_nd = torch.where(nondegenerate, idx, torch.full_like(idx, -1)).amax(dim=-1, keepdim=True)
    at_end = (x == last) & (idx == last_nd)
    return (inside | at_end).to(x.dtype)


def _basis_tables(x: Tensor, knots: Tensor, order: int) -> list[Tensor]:
    """All B-spline tables of orders 0..order: entry p has shape ``(*x.shape, M - p - 1)``."""
    if knots.dim() == 1:
        xe = x.unsqueeze(-1)  # (..., 1)
        t = knots
    else:
        if x.shape[-1] != knots.shape[0]:
            raise ValueError(
                f"x has {x.shape[-1]} features in its last dimension but knots has {knots.shape[0]} rows"
            )
        xe = x.unsqueeze(-1)  # (..., F, 1)
        t = knots  # (F, M)
    tables = [_order0(xe, t)]
    b = tables[0]
    for p in range(1, order + 1):
        t_i = t[..., : -(p + 1)]
        t_ip = t[..., p:-1]
        t_i1 = t[..., 1:-p]
        t_ip1 = t[..., p + 1 :]
        left = _safe_div(xe - t_i, t_ip - t_i) * b[..., :-1]
        right = _safe_div(t_ip1 - xe, t_ip1 - t_i1) * b[..., 1:]
        b = left + right
        tables.append(b)
    return tables


def bspline_basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """B-spline basis functions by the Cox–de Boor recursion.

    Arguments:
        x: points, any shape ``(*S)``; with 2-D ``knots`` the last dimension of ``x`` is the feature axis.
        knots: non-decreasing knot vector ``(M,)`` shared by all points, or ``(F, M)`` one row per feature.
        order: polynomial degree ``k >= 0`` (``3`` is cubic).

    Returns:
        ``(*S, M - k - 1)``: the value of each basis function at each point.  Inside ``[t_k, t_{M-k-1}]`` the
        values are non-negative and sum to one; outside the knot span ``[t_0, t_{M-1}]`` they are all zero.
    """
    knots = _as_tensor(knots, x if isinstance(x, Tensor) else None)
    x = _as_tensor(x, knots)
    _check_knots(knots, order)
    return _basis_tables(x, knots.to(x.dtype), order)[-1]


def bspline_basis_derivative(x: Tensor, knots: Tensor, order: int, n: int = 1) -> Tensor:
    """``n``-th derivative of every B-spline basis function (shape as :func:`bspline_basis`).

    Uses ``B'_{i,k} = k/(t_{i+k}-t_i) B_{i,k-1} - k/(t_{i+k+1}-t_{i+1}) B_{i+1,k-1}`` applied ``n`` times
    (terms with a zero denominator vanish).  For ``n > order`` the result is zero.
    """
    knots = _as_tensor(knots, x if isinstance(x, Tensor) else None)
    x = _as_tensor(x, knots)
    _check_knots(knots, order)
    if n < 0:
        raise ValueError(f"derivative order must be >= 0, got {n}")
    knots = knots.to(x.dtype)
    if n == 0:
        return bspline_basis(x, knots, order)
    n_out = knots.shape[-1] - order - 1
    if n > order:
        return torch.zeros(*x.shape, n_out, dtype=x.dtype, device=x.device)
    tables = _basis_tables(x, knots, order - n)
    # d holds coefficients mapping lower-order basis values to the derivative, built from the top down:
    # start with the basis of order (order - n) and apply the derivative rule n times, order increasing.
    d = tables[-1]
    t = knots
    for p in range(order - n + 1, order + 1):
        t_i = t[..., : -(p + 1)]
        t_ip = t[..., p:-1]
        t_i1 = t[..., 1:-p]
        t_ip1 = t[..., p + 1 :]
        a = _safe_div(torch.full_like(t_ip, float(p)), t_ip - t_i)
        c = _safe_div(torch.full_like(t_ip1, float(p)), t_ip1 - t_i1)
        d = a * d[..., :-1] - c * d[..., 1:]
    return d


def uniform_knots(grid_size: int, order: int, grid_range=(-1.0, 1.0), *, dtype=None, device=None) -> Tensor:
    """Uniform knot vector with ``grid_size`` intervals on ``grid_range``, extended by ``order`` knots on
    each side, so that ``grid_size + order`` basis functions form a partition of unity on the range.

    Returns: ``(grid_size + 2*order + 1,)``.
    """
    if grid_size < 1:
        raise ValueError(f"grid_size must be >= 1, got {grid_size}")
    lo, hi = float(grid_range[0]), float(grid_range[1])
    if not hi > lo:
        raise ValueError(f"grid_range must satisfy low < high, got {grid_range}")
    h = (hi - lo) / grid_size
    idx = torch.arange(-order, grid_size + order + 1, dtype=dtype or torch.get_default_dtype(), device=device)
    return lo + idx * h


def bezier(control_points: Tensor, t: Tensor) -> Tensor:
    """Bézier curve by de Casteljau's algorithm.

    Arguments:
        control_points: ``(n + 1,)`` or ``(n + 1, D)`` control points.
        t: parameters in ``[0, 1]``, any shape ``(*S)``.

    Returns:
        ``(*S)`` for 1-D control points, ``(*S, D)`` otherwise.
    """
    p = _as_tensor(control_points)
    t = _as_tensor(t, p)
    if p.dim() not in (1, 2) or p.shape[0] < 1:
        raise ValueError(f"control_points must have shape (n+1,) or (n+1, D), got {tuple(p.shape)}")
    scalar = p.dim() == 1
    pts = p[:, None] if scalar else p  # (n+1, D)
    tt = t.unsqueeze(-1).unsqueeze(-1)  # (*S, 1, 1)
    cur = pts.expand(*t.shape, *pts.shape)  # (*S, n+1, D)
    while cur.shape[-2] > 1:
        cur = (1 - tt) * cur[..., :-1, :] + tt * cur[..., 1:, :]
    out = cur[..., 0, :]
    return out[..., 0] if scalar else out


@dataclass
class PiecewiseCubic:
    """A piecewise cubic ``s(x) = a_i + b_i·u + c_i·u² + d_i·u³`` with ``u = x - x_i`` on ``[x_i, x_{i+1}]``.

    Attributes:
        xk: ``(n,)`` strictly increasing breakpoints.
        coeffs: ``(4, n - 1, *V)`` coefficients ``a, b, c, d`` per interval (``V`` = value shape).
    Beyond the ends, the first and last polynomials continue.
    """

    xk: Tensor
    coeffs: Tensor

    def _locate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n_int = self.xk.shape[0] - 1
        idx = torch.searchsorted(self.xk.contiguous(), x.detach().contiguous(), right=True) - 1
        idx = idx.clamp(0, n_int - 1)
        u = x - self.xk[idx]
        return idx, u

    def __call__(self, x: Tensor, nu: int = 0) -> Tensor:
        """Evaluate the spline (or its ``nu``-th derivative, ``nu <= 3``) at ``x`` of shape ``(*S)``.

        Returns ``(*S, *V)``.
        """
        x = _as_tensor(x, self.xk)
        idx, u = self._locate(x)
        a, b, c, d = (self.coeffs[j][idx] for j in range(4))  # (*S, *V)
        extra = a.dim() - u.dim()
        u = u.reshape(*u.shape, *([1] * extra))
        if nu == 0:
            return a + u * (b + u * (c + u * d))
        if nu == 1:
            return b + u * (2 * c + 3 * u * d)
        if nu == 2:
            return 2 * c + 6 * u * d
        if nu == 3:
            return 6 * d + 0 * u
        if nu > 3:
            return torch.zeros_like(a + 0 * u)
        raise ValueError(f"derivative order must be >= 0, got {nu}")

    def derivative(self, x: Tensor, nu: int = 1) -> Tensor:
        """The ``nu``-th derivative at ``x`` (see :meth:`__call__`)."""
        return self(x, nu)


def _check_points(xk: Tensor, yk: Tensor) -> None:
    if xk.dim() != 1 or xk.shape[0] < 2:
        raise ValueError(f"xk must be 1-D with at least 2 points, got shape {tuple(xk.shape)}")
    if yk.shape[0] != xk.shape[0]:
        raise ValueError(f"yk must have {xk.shape[0]} rows like xk, got shape {tuple(yk.shape)}")
    if bool((xk[1:] <= xk[:-1]).any()):
        raise ValueError("xk must be strictly increasing")


def cubic_hermite(xk: Tensor, yk: Tensor, slopes: Tensor | None = None) -> PiecewiseCubic:
    """The C¹ piecewise cubic through ``(xk, yk)`` with the given slopes (Catmull–Rom tangents if None).

    Arguments:
        xk: ``(n,)`` strictly increasing.
        yk: ``(n, *V)`` values.
        slopes: ``(n, *V)`` derivatives at the knots, or None for :func:`catmull_rom_slopes`.
    """
    xk = _as_tensor(xk)
    yk = _as_tensor(yk, xk)
    _check_points(xk, yk)
    m = catmull_rom_slopes(xk, yk) if slopes is None else _as_tensor(slopes, yk)
    if m.shape != yk.shape:
        raise ValueError(f"slopes must have the shape of yk {tuple(yk.shape)}, got {tuple(m.shape)}")
    h = (xk[1:] - xk[:-1]).reshape(-1, *([1] * (yk.dim() - 1)))
    y0, y1, m0, m1 = yk[:-1], yk[1:], m[:-1], m[1:]
    delta = (y1 - y0) / h
    a = y0
    b = m0
    c = (3 * delta - 2 * m0 - m1) / h
    d = (m0 + m1 - 2 * delta) / (h * h)
    return PiecewiseCubic(xk, torch.stack([a, b, c, d]))


def catmull_rom_slopes(xk: Tensor, yk: Tensor) -> Tensor:
    """Catmull–Rom tangents: central differences ``(y_{i+1} - y_{i-1}) / (x_{i+1} - x_{i-1})`` inside,
    one-sided differences at the two ends.  Returns ``(n, *V)``."""
    xk = _as_tensor(xk)
    yk = _as_tensor(yk, xk)
    shape = (-1, *([1] * (yk.dim() - 1)))
    if xk.shape[0] == 2:
        s = (yk[1] - yk[0]) / (xk[1] - xk[0])
        return torch.stack([s, s])
    inner = (yk[2:] - yk[:-2]) / (xk[2:] - xk[:-2]).reshape(shape)
    first = (yk[1] - yk[0]) / (xk[1] - xk[0])
    last = (yk[-1] - yk[-2]) / (xk[-1] - xk[-2])
    return torch.cat([first[None], inner, last[None]])


def catmull_rom(xk: Tensor, yk: Tensor | None = None) -> PiecewiseCubic:
    """Catmull–Rom spline through points: ``catmull_rom(points)`` with ``points`` of shape ``(n, 2)`` holding
    ``(x, y)`` pairs (strictly increasing ``x``), or ``catmull_rom(xk, yk)``.  C¹, local: moving one point
    changes the curve on at most the four intervals around it."""
    if yk is None:
        pts = _as_tensor(xk)
        if pts.dim() != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must have shape (n, 2), got {tuple(pts.shape)}")
        xk, yk = pts[:, 0], pts[:, 1]
    return cubic_hermite(xk, yk, None)


def natural_cubic(xk: Tensor, yk: Tensor) -> PiecewiseCubic:
    """The natural cubic spline through ``(xk, yk)``: C², second derivative zero at both ends.

    Solves the tridiagonal system for the knot second derivatives ``M`` (Thomas algorithm, batched over the
    value shape).  Global: moving one point changes the curve everywhere.

    Arguments:
        xk: ``(n,)`` strictly increasing, ``n >= 2``.
        yk: ``(n, *V)``.
    """
    xk = _as_tensor(xk)
    yk = _as_tensor(yk, xk)
    _check_points(xk, yk)
    n = xk.shape[0]
    vshape = (-1, *([1] * (yk.dim() - 1)))
    h = (xk[1:] - xk[:-1]).reshape(vshape)  # (n-1, 1...)
    delta = (yk[1:] - yk[:-1]) / h  # (n-1, *V)
    if n == 2:
        m = torch.zeros_like(yk)
    else:
        # unknowns M_1..M_{n-2};  h_{i-1} M_{i-1} + 2(h_{i-1}+h_i) M_i + h_i M_{i+1} = 6(delta_i - delta_{i-1})
        sub = h[1:-1]  # coefficient of M_{i-1} for rows i=2..n-2 (length n-3)
        diag = 2 * (h[:-1] + h[1:])  # (n-2)
        sup = h[1:-1]
        rhs = 6 * (delta[1:] - delta[:-1])  # (n-2, *V)
        cp: list[Tensor] = []
        dp: list[Tensor] = []
        for i in range(n - 2):
            if i == 0:
                denom = diag[0]
                cp.append(sup[0] / denom if n - 2 > 1 else torch.zeros_like(denom))
                dp.append(rhs[0] / denom)
            else:
                denom = diag[i] - sub[i - 1] * cp[i - 1]
                cp.append(sup[i] / denom if i < n - 3 else torch.zeros_like(denom))
                dp.append((rhs[i] - sub[i - 1] * dp[i - 1]) / denom)
        sol = [dp[-1]]
        for i in range(n - 4, -1, -1):
            sol.append(dp[i] - cp[i] * sol[-1])
        inner = torch.stack(sol[::-1])
        zero = torch.zeros_like(yk[:1])
        m = torch.cat([zero, inner, zero])
    a = yk[:-1]
    b = delta - h * (2 * m[:-1] + m[1:]) / 6
    c = m[:-1] / 2
    d = (m[1:] - m[:-1]) / (6 * h)
    return PiecewiseCubic(xk, torch.stack([a, b, c, d]))
