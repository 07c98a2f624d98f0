"""Natural cubic spline basis: learnable values at the knots, C², global.

An edge function is the natural cubic spline through ``(t_j, c_j)`` (second derivative zero at both end
knots), exactly :func:`kanlab.splines.natural_cubic`.  The construction is linear in the values, so the curve
is ``Σ_j c_j N_j(x)`` with the *cardinal* natural splines ``N_j`` (the spline through the unit data ``e_j``);
the layer's coefficients ``coef[o, i, :]`` are the knot values of edge ``(o, i)`` and ``K = G + 1``.

Global control: every ``N_j`` is non-zero on (almost) the whole range, so moving one knot value moves the
whole curve — the contrast to the local :class:`~kanlab.basis.hermite.CatmullRom` basis.  No ``local()``.

Outside the grid range the spline continues linearly with its end slope; since the second derivative is zero
at the end knots this continuation keeps the curve C² everywhere.  Values grow at most linearly, never NaN.

The piecewise-polynomial coefficients of the cardinal splines are a computed, non-persistent buffer
``table (in, G, 4, G + 1)``, rebuilt from the knots whenever they change (also after ``load_state_dict``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..splines import natural_cubic
from .base import register_basis
from .knot_grid import KnotGridBasis, locate

__all__ = ["NaturalCubic"]


@register_basis("natural_cubic")
class NaturalCubic(KnotGridBasis):
    """Cardinal natural cubic splines on ``grid_size + 1`` knots per input feature.

    Arguments:
        in_features: number of input features (or None to bind later).
        grid_size: number of intervals ``G >= 1`` (``G + 1`` knots and basis functions).
        grid_range: ``(low, high)`` of the initial uniform knots.
        grid_eps: mix used by :meth:`update_grid` (``1`` uniform over the data range, ``0`` data quantiles).
    Shape:
        input ``(*, in)`` → output ``(*, in, G + 1)``.
    """

    domain = ("any real input: a C² natural cubic spline on the grid range, continued linearly (C²) beyond "
              "it; global support, never NaN")

    @property
    def num_functions(self) -> int:
        return self.grid_size + 1

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, grid_size={self.grid_size}, grid_range={self.grid_range}, "
                f"grid_eps={self.grid_eps}")

    def _build(self, device=None, dtype=None) -> None:
        super()._build(device=device, dtype=dtype)
        n = self.grid_size + 1
        self.register_buffer("table", torch.empty(self.in_features, n - 1, 4, n, device=device, dtype=dtype),
                             persistent=False)

    def _grid_changed(self) -> None:
        """Rebuild the cardinal-spline coefficients ``table`` from ``grid`` (in float64)."""
        if self.grid.device.type == "meta":
            return
        knots = self.grid.detach().to(torch.float64)
        n = knots.shape[1]
        eye = torch.eye(n, dtype=torch.float64, device=knots.device)
        rows = [natural_cubic(knots[i], eye).coeffs.permute(1, 0, 2) for i in range(self.in_features)]
        self.table = torch.stack(rows).to(self.grid.dtype).contiguous()  # (in, n-1, 4, n)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._grid_changed()

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, G + 1)``."""
        self._check_input(x)
        flat = x.reshape(-1, self.in_features)
        t = self.grid.to(x.dtype)
        j, xc = locate(flat, t)
        u = (xc - torch.gather(t.t(), 0, j))[..., None]  # (N, in, 1)
        excess = (flat - xc)[..., None]
        feature = torch.arange(self.in_features, device=x.device)
        rows = self.table.to(x.dtype)[feature, j]  # (N, in, 4, K)
        # contiguous copies rather than unbind() views: aot_autograd's backward rejects views of the gather
        a, b, c, d = (rows.select(-2, i).contiguous() for i in range(4))  # each (N, in, K)
        value = a + u * (b + u * (c + u * d))
        slope = b + u * (2 * c + 3 * u * d)
        return (value + excess * slope).reshape(*x.shape, self.num_functions)
