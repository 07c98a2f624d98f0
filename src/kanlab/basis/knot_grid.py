"""Shared machinery of the knot-based families (Catmull–Rom, natural cubic, ReLU bumps).

Each input feature ``i`` owns a row of knots ``grid[i]``: ``G + 1`` knots spanning the grid range, plus ``pad``
knots beyond each end with the end spacing (``pad = 0`` for the interpolating cubics, ``pad = order`` for
ReLU bumps).  The rows start uniform over ``grid_range``; :meth:`KnotGridBasis.update_grid` moves them to the
data's quantiles and :meth:`KnotGridBasis.refine` switches to a finer grid — both return coefficients that
keep the represented edge functions (least squares, see :func:`~kanlab.basis.refit.least_squares_refit`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Basis
from .checks import check_float, check_int, check_range
from .refit import least_squares_refit

__all__ = ["KnotGridBasis", "locate", "strictly_increasing"]


def locate(x: Tensor, knots: Tensor) -> tuple[Tensor, Tensor]:
    """Interval index and clamped input for per-feature knot rows.

    Arguments:
        x: ``(N, in)`` inputs.
        knots: ``(in, n)`` strictly increasing rows, ``n >= 2``.

    Returns:
        ``j (N, in)`` int64 in ``[0, n - 2]`` with ``knots[i, j] <= xc < knots[i, j + 1]`` (the last interval
        is closed), and ``xc (N, in)``: ``x`` clamped to ``[knots[i, 0], knots[i, -1]]`` (gradient 1 inside,
        0 outside).
    """
    n = knots.shape[1]
    j = torch.searchsorted(knots.contiguous(), x.detach().t().contiguous(), right=True).t() - 1
    j = j.clamp(0, n - 2)
    xc = torch.clamp(x, min=knots[:, 0], max=knots[:, -1])
    return j, xc


def strictly_increasing(rows: Tensor, min_gap: Tensor) -> Tensor:
    """Push knots apart so that consecutive ones differ by at least ``min_gap`` ``(in, 1)``: ``(in, n)``."""
    steps = torch.arange(rows.shape[1], dtype=rows.dtype, device=rows.device) * min_gap
    return torch.cummax(rows - steps, dim=1).values + steps


class KnotGridBasis(Basis):
    """Base of the families defined on per-feature knot rows ``grid (in, G + 1 + 2·pad)``.

    Subclasses set ``pad`` (knots beyond each end), implement ``num_functions``/``forward`` and may override
    :meth:`_grid_changed` to rebuild tables derived from the knots.
    """

    supports_grid = True
    pad: int = 0
    min_grid_size: int = 1

    def __init__(self, in_features: int | None = None, *, grid_size: int = 5,
                 grid_range: tuple[float, float] = (-1.0, 1.0), grid_eps: float = 0.02,
                 out_features: int | None = None, device=None, dtype=None) -> None:
        self.grid_size = check_int("grid_size", grid_size, self.min_grid_size)
        self.grid_range = check_range("grid_range", grid_range)
        self.grid_eps = check_float("grid_eps", grid_eps, at_least=0.0, at_most=1.0)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    # ---- allocation ----------------------------------------------------------------------------------
    def _build(self, device=None, dtype=None) -> None:
        n_knots = self.grid_size + 1 + 2 * self.pad
        self.register_buffer("grid", torch.empty(self.in_features, n_knots, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        lo, hi = self.grid_range
        with torch.no_grad():
            row = torch.linspace(lo, hi, self.grid_size + 1, dtype=torch.float64)
            interior = row.expand(self.in_features, -1)
            self.grid.copy_(self._extend(interior).to(self.grid.dtype))
        self._grid_changed()

    def _grid_changed(self) -> None:
        """Hook: rebuild anything computed from ``grid`` (called after every change of the knots)."""

    def config(self) -> dict[str, Any]:
        return {"grid_size": self.grid_size, "grid_range": list(self.grid_range), "grid_eps": self.grid_eps}

    # ---- knots ---------------------------------------------------------------------------------------
    def _extend(self, interior: Tensor) -> Tensor:
        """Interior knots ``(in, G + 1)`` → full rows ``(in, G + 1 + 2·pad)`` extended with the end spacing."""
        p = self.pad
        if p == 0:
            return interior
        h_lo = interior[:, 1:2] - interior[:, :1]
        h_hi = interior[:, -1:] - interior[:, -2:-1]
        steps = torch.arange(1, p + 1, dtype=interior.dtype, device=interior.device)
        return torch.cat([interior[:, :1] - h_lo * steps.flip(0), interior, interior[:, -1:] + h_hi * steps], 1)

    def interior_knots(self) -> Tensor:
        """The ``G + 1`` knots spanning each feature's grid range: ``(in, G + 1)``."""
        return self.grid[:, self.pad: self.grid.shape[1] - self.pad]

    def adaptive_knots(self, x: Tensor, grid_size: int | None = None) -> Tensor:
        """Interior knots fitted to samples ``x (N, in)``: ``grid_eps``·uniform + (1 − ``grid_eps``)·quantiles,
        kept strictly increasing.  Returns ``(in, grid_size + 1)`` in float64."""
        g = grid_size or self.grid_size
        xs = torch.sort(x.detach().to(torch.float64), dim=0).values  # (N, in)
        n = xs.shape[0]
        pos = torch.linspace(0, n - 1, g + 1, dtype=torch.float64, device=xs.device)
        lo_i, hi_i = pos.floor().long(), pos.ceil().long()
        frac = (pos - lo_i)[:, None]
        quantiles = (xs[lo_i] * (1 - frac) + xs[hi_i] * frac).t()  # (in, g+1)
        lo, hi = xs[0], xs[-1]
        tiny = (hi - lo) <= 1e-8 * (1 + lo.abs())
        lo = torch.where(tiny, lo - 0.5, lo)
        hi = torch.where(tiny, hi + 0.5, hi)
        a = torch.linspace(0, 1, g + 1, dtype=torch.float64, device=xs.device)
        uniform = lo[:, None] + (hi - lo)[:, None] * a
        quantiles = torch.where(tiny[:, None], uniform, quantiles)
        interior = self.grid_eps * uniform + (1 - self.grid_eps) * quantiles
        return strictly_increasing(interior, 1e-3 * (hi - lo)[:, None] / g)

    def _dense_samples(self, grid: Tensor, n: int) -> Tensor:
        """``n`` evenly spaced points over each feature's grid range: ``(n, in)``."""
        lo = grid[:, self.pad]
        hi = grid[:, grid.shape[1] - self.pad - 1]
        a = torch.linspace(0, 1, n, dtype=grid.dtype, device=grid.device)[:, None]
        return lo[None] + (hi - lo)[None] * a

    def update_grid(self, x: Tensor, coef: Tensor) -> Tensor:
        """Move the knots towards the quantiles of ``x (N, in)``; return refitted ``coef (out, in, K)``."""
        self._check_input(x)
        x = x.reshape(-1, self.in_features)
        if x.shape[0] < 2:
            raise ValueError("update_grid needs at least 2 samples")
        if not torch.isfinite(x).all():
            raise ValueError("update_grid got NaN or infinite samples")
        new_grid = self._extend(self.adaptive_knots(x)).to(self.grid.dtype)
        samples = torch.cat([x.detach().to(self.grid.dtype),
                             self._dense_samples(new_grid, 4 * self.num_functions)], dim=0)
        return self._switch(new_grid, self.grid_size, coef, samples)

    def refine(self, grid_size: int, coef: Tensor) -> Tensor:
        """Grid extension to ``grid_size`` intervals over the same range (the current knot spacing is kept by
        piecewise-linear interpolation); coefficients transferred by least squares."""
        check_int("grid_size", grid_size, self.min_grid_size)
        old = self.interior_knots().to(torch.float64)  # (in, G+1)
        g_old = old.shape[1] - 1
        u = torch.linspace(0, g_old, grid_size + 1, dtype=torch.float64, device=old.device)
        lo_i = u.floor().long().clamp(max=g_old - 1)
        frac = u - lo_i
        interior = old[:, lo_i] * (1 - frac) + old[:, lo_i + 1] * frac
        new_grid = self._extend(interior).to(self.grid.dtype)
        samples = self._dense_samples(self.grid, max(16 * (grid_size + 2 * self.pad + 1), 400))
        return self._switch(new_grid, grid_size, coef, samples)

    def _switch(self, new_grid: Tensor, grid_size: int, coef: Tensor, samples: Tensor) -> Tensor:
        with torch.no_grad():
            old_values = self.forward(samples)  # (N, in, K_old)
            self.grid_size = grid_size
            self.grid = new_grid.contiguous()
            self._grid_changed()
            new_values = self.forward(samples)  # (N, in, K_new)
        return least_squares_refit(old_values, coef, new_values)
