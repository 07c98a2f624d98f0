"""Catmull–Rom (cubic Hermite) basis: learnable values at the knots, tangents from the neighbours.

An edge function is the Catmull–Rom spline through ``(t_j, c_j)``: on ``[t_j, t_{j+1}]`` the cubic Hermite
interpolant with slopes ``m_j = (c_{j+1} - c_{j-1}) / (t_{j+1} - t_{j-1})`` (one-sided differences at the two
end knots), exactly :func:`kanlab.splines.catmull_rom`.  Because that construction is linear in the values,
the curve is ``Σ_j c_j C_j(x)`` where the basis function ``C_j`` is the *cardinal* spline: the Catmull–Rom
spline through the unit data ``e_j``.  So the layer's coefficients ``coef[o, i, :]`` are the knot values of
edge ``(o, i)`` and ``K = G + 1``.

The curve is C¹ and local: on any interval only the four values ``c_{j-1} … c_{j+2}`` matter, so moving one
knot value changes the curve on at most four intervals, and :meth:`CatmullRom.local` returns just those four
basis values (the contrast to :class:`~kanlab.basis.natural_cubic.NaturalCubic`, which is C² but global).

Outside the grid range the spline continues along the tangent line of its end knot (value and slope of the
end point), so it stays C¹, grows at most linearly and is never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import register_basis
from .knot_grid import KnotGridBasis, locate

__all__ = ["CatmullRom"]


@register_basis("catmull_rom")
class CatmullRom(KnotGridBasis):
    """Cardinal Catmull–Rom splines on ``grid_size + 1`` knots per input feature.

    Arguments:
        in_features: number of input features (or None to bind later).
        grid_size: number of intervals ``G >= 1`` (``G + 1`` knots and basis functions).
        grid_range: ``(low, high)`` of the initial uniform knots.
        grid_eps: mix used by :meth:`update_grid` (``1`` uniform over the data range, ``0`` data quantiles).
    Shape:
        input ``(*, in)`` → output ``(*, in, G + 1)``; :meth:`local` gives ``(*, in, min(4, G + 1))`` values.
    """

    supports_local = True
    domain = ("any real input: C¹ piecewise cubics through the knot values on the grid range, continued "
              "along the end tangent (linearly) beyond it; never NaN")

    @property
    def num_functions(self) -> int:
        return self.grid_size + 1

    @property
    def local_width(self) -> int:
        """Number of values :meth:`local` returns: ``min(4, K)``."""
        return min(4, self.num_functions)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, grid_size={self.grid_size}, grid_range={self.grid_range}, "
                f"grid_eps={self.grid_eps}")

    # ---- evaluation ----------------------------------------------------------------------------------
    def _window(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Weights of the values ``c_{j-1} … c_{j+2}`` for ``x (N, in)``: ``(N, in, 4)`` and ``j - 1``."""
        t = self.grid.to(x.dtype)  # (in, n)
        n = t.shape[1]
        j, xc = locate(x, t)
        excess = x - xc  # distance beyond the grid range (0 inside)
        tt = t.t()

        def knot(idx: Tensor) -> Tensor:
            return torch.gather(tt, 0, idx)  # t[i, idx[a, i]]

        left = (j - 1).clamp(min=0)  # slope of knot j uses values at left .. j+1
        right1 = (j + 2).clamp(max=n - 1)  # slope of knot j+1 uses values at j .. right1
        t_j, t_j1 = knot(j), knot(j + 1)
        h = t_j1 - t_j
        u = (xc - t_j) / h
        u2 = u * u
        u3 = u2 * u
        h00 = 2 * u3 - 3 * u2 + 1
        h01 = -2 * u3 + 3 * u2
        # weights of the two slopes m_j, m_{j+1}; the linear continuation adds the excess to the end slope
        slope0 = h * (u3 - 2 * u2 + u) + excess.clamp(max=0)
        slope1 = h * (u3 - u2) + excess.clamp(min=0)
        a0 = slope0 / (t_j1 - knot(left))
        a1 = slope1 / (knot(right1) - t_j)
        zero = torch.zeros_like(h00)
        w = torch.stack([zero, h00 - a1, h01 + a0, zero], dim=-1)  # positions j-1, j, j+1, j+2
        start = j - 1
        w = w.scatter_add(-1, (left - start)[..., None], -a0[..., None])
        w = w.scatter_add(-1, (right1 - start)[..., None], a1[..., None])
        return w, start

    def local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The (at most) four non-zero basis values and the index of the first.

        Returns ``values (*, in, W)`` and ``first (*, in)`` (int64), ``W = min(4, K)``, ``0 <= first <= K - W``,
        such that ``forward(x)[..., first + r] == values[..., r]`` and all other basis values are zero.
        """
        self._check_input(x)
        flat = x.reshape(-1, self.in_features)
        w, start = self._window(flat)
        width, n = self.local_width, self.num_functions
        first = start.clamp(0, n - width)
        src = (first - start)[..., None] + torch.arange(width, device=x.device)
        ok = (src >= 0) & (src <= 3)
        values = torch.gather(w, -1, src.clamp(0, 3)) * ok.to(w.dtype)
        return values.reshape(*x.shape, width), first.reshape(x.shape)

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, G + 1)``."""
        values, first = self.local(x)
        idx = first[..., None] + torch.arange(self.local_width, device=x.device)
        out = values.new_zeros(*x.shape, self.num_functions)
        return out.scatter(-1, idx, values)
