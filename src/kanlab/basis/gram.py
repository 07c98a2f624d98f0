"""Gram polynomials with learnable recurrence coefficients (GRAM-KAN).

The Gram (discrete Chebyshev) polynomials are orthogonal on ``m`` equally spaced points
``t_k = −1 + 2k/(m − 1)``.  In monic form they obey ::

    p_0 = 1,   p_1 = t,   p_{n+1}(t) = t·p_n(t) − β_n·p_{n−1}(t),
    β_n = n²·(m² − n²) / ((4n² − 1)·(m − 1)²)

(``m → ∞`` gives the monic Legendre polynomials, ``β_n = n²/(4n² − 1)``).  Here the ``β_n`` are learnable,
one set per input feature — a Parameter ``beta (in, degree − 1)`` initialised with the Gram values — so each
input learns its own orthogonal family.  Inputs are squashed into ``[−1, 1]`` first (``tanh`` by default).

Monic polynomials shrink like ``2^−n`` on ``[−1, 1]``, which makes the high-degree coefficients badly scaled
for the optimiser, so the basis returns ``q_n = λ_n·p_n`` with the fixed Legendre leading coefficients
``λ_n = (2n)!/(2^n·n!²)``: values are O(1), and with the continuum ``β`` the ``q_n`` are exactly Legendre's
``P_n``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .base import register_basis
from .checks import check_int
from .polynomial import PolynomialBasis

__all__ = ["Gram"]


@register_basis("gram")
class Gram(PolynomialBasis):
    """Gram polynomials ``λ_n·p_n`` (``n = 0 … degree``) of the squashed input with learnable ``β``.

    Arguments:
        in_features: number of input features (or None to bind later).
        degree: highest degree ``d >= 0``.
        num_points: ``m``, the number of equally spaced points the initial family is orthogonal on
            (``m >= d + 1``; default ``d + 1``).
        squash: ``"tanh"`` (default) or ``"clamp"``: how inputs are mapped into ``[-1, 1]``.
    Shape:
        ``(*, in)`` → ``(*, in, d + 1)``.
    Attributes:
        beta: Parameter ``(in, max(d − 1, 0))``: ``beta[i, n − 1] = β_n`` for input ``i``.
    """

    def __init__(self, in_features: int | None = None, *, degree: int = 5, num_points: int | None = None,
                 squash: str = "tanh", out_features: int | None = None, device=None, dtype=None) -> None:
        degree = check_int("degree", degree, 0)
        if num_points is not None:
            check_int("num_points", num_points, degree + 1)
        self.num_points = num_points
        super().__init__(in_features, degree=degree, squash=squash, out_features=out_features, device=device,
                         dtype=dtype)

    def _build(self, device=None, dtype=None) -> None:
        self.beta = nn.Parameter(torch.empty(self.in_features, max(self.degree - 1, 0), device=device,
                                             dtype=dtype))

    def initial_beta(self) -> Tensor:
        """The Gram recurrence coefficients ``β_1 … β_{d−1}`` for ``m = num_points`` points (float64)."""
        m = float(self.num_points if self.num_points is not None else self.degree + 1)
        n = torch.arange(1, self.degree, dtype=torch.float64)
        return n * n * (m * m - n * n) / ((4 * n * n - 1) * (m - 1) ** 2)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.beta.copy_(self.initial_beta().to(self.beta.dtype).expand_as(self.beta))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_points={self.num_points}"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "num_points": self.num_points}

    def polynomials(self, t: Tensor) -> Tensor:
        beta = self.beta.to(t.dtype)
        out = [torch.ones_like(t)]
        if self.degree >= 1:
            out.append(t)
        for n in range(1, self.degree):
            out.append(t * out[-1] - beta[:, n - 1] * out[-2])
        return torch.stack(out, dim=-1) * self.leading_scale(t.dtype, t.device)

    def leading_scale(self, dtype=None, device=None) -> Tensor:
        """``λ_n = (2n)!/(2^n·n!²)`` for ``n = 0 … degree``: ``(degree + 1,)``."""
        lam = [math.comb(2 * n, n) / 2 ** n for n in range(self.degree + 1)]
        return torch.tensor(lam, dtype=dtype, device=device)
