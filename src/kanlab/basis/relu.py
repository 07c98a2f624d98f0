"""ReLU-KAN bumps: ``R_i(x) = 16/(b_i − a_i)⁴ · (ReLU(x − a_i)·ReLU(b_i − x))²``.

Each bump is a non-negative C¹ quartic on ``[a_i, b_i]`` with peak value 1 at the midpoint and exactly zero
outside — built only from ReLUs and products, which is what makes ReLU-KAN fast on GPUs.  As in ReLU-KAN, the
supports span ``order + 1`` consecutive grid intervals: with the per-feature knot row ``t`` (``G`` intervals
on the grid range, extended by ``order`` knots on each side) bump ``i`` lives on ``[t_i, t_{i+order+1}]``, so
``K = G + order`` and at most ``order + 1`` bumps are non-zero at any input (:meth:`ReLUBumps.local`).

Outside the extended knot span every value is exactly zero (a KAN edge keeps only its base branch there);
never NaN.  The knots are a grid like the B-spline's: :meth:`update_grid` and :meth:`refine` are supported.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import register_basis
from .checks import check_int
from .knot_grid import KnotGridBasis

__all__ = ["ReLUBumps"]


@register_basis("relu")
class ReLUBumps(KnotGridBasis):
    """ReLU-KAN basis of ``grid_size + order`` squared-ReLU bumps per input feature.

    Arguments:
        in_features: number of input features (or None to bind later).
        grid_size: number of grid intervals ``G >= 1``.
        order: each bump spans ``order + 1`` intervals (``order >= 0``; ReLU-KAN's ``k``).
        grid_range: ``(low, high)`` of the initial uniform grid.
        grid_eps: mix used by :meth:`update_grid` (``1`` uniform over the data range, ``0`` data quantiles).
    Shape:
        ``(*, in)`` → ``(*, in, G + order)``; :meth:`local` gives ``(*, in, order + 1)`` values.
    """

    supports_local = True
    domain = ("any real input: C¹ bumps on the extended knot span, exactly zero beyond it (a KAN edge then "
              "keeps only its base branch); never NaN")

    def __init__(self, in_features: int | None = None, *, grid_size: int = 5, order: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), grid_eps: float = 0.02,
                 out_features: int | None = None, device=None, dtype=None) -> None:
        self.order = check_int("order", order, 0)
        self.pad = self.order
        super().__init__(in_features, grid_size=grid_size, grid_range=grid_range, grid_eps=grid_eps,
                         out_features=out_features, device=device, dtype=dtype)

    @property
    def num_functions(self) -> int:
        return self.grid_size + self.order

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, grid_size={self.grid_size}, order={self.order}, "
                f"grid_range={self.grid_range}, grid_eps={self.grid_eps}")

    def config(self) -> dict[str, Any]:
        return {**super().config(), "order": self.order}

    @staticmethod
    def _bump(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
        width = b - a
        return (torch.relu(x - a) * torch.relu(b - x)) ** 2 * (16.0 / width ** 4)

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, G + order)``."""
        self._check_input(x)
        t = self.grid.to(x.dtype)
        k, n = self.order, self.num_functions
        return self._bump(x.unsqueeze(-1), t[:, :n], t[:, k + 1: k + 1 + n])

    def local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ``order + 1`` possibly non-zero bumps and the index of the first.

        Returns ``values (*, in, order+1)`` and ``first (*, in)`` (int64), ``0 <= first <= K − order − 1``,
        such that ``forward(x)[..., first + r] == values[..., r]`` and all other values are zero.
        """
        self._check_input(x)
        k, n = self.order, self.num_functions
        flat = x.reshape(-1, self.in_features)
        t = self.grid.to(x.dtype)
        # knot interval j with t_j <= x < t_{j+1}; bumps j-k .. j cover it
        j = torch.searchsorted(t.contiguous(), flat.detach().t().contiguous(), right=True).t() - 1
        first = (j - k).clamp(0, n - k - 1)
        idx = first[..., None] + torch.arange(k + 1, device=x.device)  # (N, in, k+1)
        feature = torch.arange(self.in_features, device=x.device)[:, None]
        lo, hi = t[feature, idx], t[feature, idx + k + 1]  # (N, in, k+1)
        values = self._bump(flat.unsqueeze(-1), lo, hi)
        return values.reshape(*x.shape, k + 1), first.reshape(x.shape)
