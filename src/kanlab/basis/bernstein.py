"""Bernstein polynomials on a range: ``b_{ν,d}(x) = C(d, ν)·s^ν·(1 − s)^{d−ν}`` with
``s = (x − low)/(high − low)`` clamped to ``[0, 1]``.

They are non-negative and sum to one, so ``Σ_ν c_ν b_{ν,d}`` is the Bézier curve with control values ``c``
(see :func:`kanlab.splines.bezier`).  Evaluated as products of repeated multiplications (no ``pow``, whose
gradient is NaN at ``0**0``), times the binomial coefficients.
Outside the range the values are constant (those of the nearest end): the edge function continues flat.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .base import Basis, register_basis
from .checks import check_int, check_range

__all__ = ["Bernstein"]


@register_basis("bernstein")
class Bernstein(Basis):
    """Bernstein basis of degree ``d`` on ``grid_range``.

    Arguments:
        in_features: number of input features (or None to bind later).
        degree: ``d >= 0``.
        grid_range: ``(low, high)``: the interval mapped onto ``[0, 1]``.
    Shape:
        ``(*, in)`` → ``(*, in, d + 1)``.
    """

    domain = ("any real input: polynomials on grid_range (non-negative, summing to 1); outside it the input "
              "is clamped, so the values stay those of the nearest end (never NaN)")

    def __init__(self, in_features: int | None = None, *, degree: int = 5,
                 grid_range: tuple[float, float] = (-1.0, 1.0), out_features: int | None = None, device=None,
                 dtype=None) -> None:
        self.degree = check_int("degree", degree, 0)
        self.grid_range = check_range("grid_range", grid_range)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    @property
    def num_functions(self) -> int:
        return self.degree + 1

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, degree={self.degree}, grid_range={self.grid_range}"

    def config(self) -> dict[str, Any]:
        return {"degree": self.degree, "grid_range": list(self.grid_range)}

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, d + 1)``."""
        self._check_input(x)
        lo, hi = self.grid_range
        s = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
        up, down = [torch.ones_like(s)], [torch.ones_like(s)]
        for _ in range(self.degree):
            up.append(up[-1] * s)  # s^ν
            down.append(down[-1] * (1 - s))  # (1 - s)^ν
        binom = torch.tensor([math.comb(self.degree, v) for v in range(self.degree + 1)], dtype=x.dtype,
                             device=x.device)
        return torch.stack(up, -1) * torch.stack(down[::-1], -1) * binom
