"""Jacobi polynomials ``P_n^{(α, β)}`` (``n = 0 … d``) of ``tanh(x)``, orthogonal on ``[−1, 1]`` for the weight
``(1 − t)^α (1 + t)^β``.  ``α = β = 0`` gives Legendre, ``α = β = −1/2`` Chebyshev (up to normalisation).

Recurrence (DLMF 18.9.2), for ``n >= 1`` with ``s = 2n + α + β``::

    2(n+1)(n+α+β+1)·s·P_{n+1} = (s+1)·[(s+2)·s·t + α² − β²]·P_n − 2(n+α)(n+β)(s+2)·P_{n−1}

with ``P_0 = 1`` and ``P_1 = (α + 1) + (α + β + 2)(t − 1)/2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import register_basis
from .checks import check_float
from .polynomial import PolynomialBasis

__all__ = ["Jacobi"]


@register_basis("jacobi")
class Jacobi(PolynomialBasis):
    """Jacobi polynomials ``P_0^{(α,β)} … P_degree^{(α,β)}`` of the squashed input.

    Arguments:
        in_features: number of input features (or None to bind later).
        degree: highest degree ``d >= 0``.
        alpha, beta: the Jacobi parameters, both ``> −1``.
        squash: ``"tanh"`` (default) or ``"clamp"``: how inputs are mapped into ``[-1, 1]``.
    Shape:
        ``(*, in)`` → ``(*, in, d + 1)``.
    """

    def __init__(self, in_features: int | None = None, *, degree: int = 5, alpha: float = 1.0,
                 beta: float = 1.0, squash: str = "tanh", out_features: int | None = None, device=None,
                 dtype=None) -> None:
        self.alpha = check_float("alpha", alpha, greater_than=-1.0)
        self.beta = check_float("beta", beta, greater_than=-1.0)
        super().__init__(in_features, degree=degree, squash=squash, out_features=out_features, device=device,
                         dtype=dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self.alpha}, beta={self.beta}"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "beta": self.beta}

    def polynomials(self, t: Tensor) -> Tensor:
        a, b = self.alpha, self.beta
        out = [torch.ones_like(t)]
        if self.degree >= 1:
            out.append((a + 1) + (a + b + 2) * (t - 1) / 2)
        for n in range(1, self.degree):
            s = 2 * n + a + b
            lead = 2 * (n + 1) * (n + a + b + 1) * s
            c1 = (s + 1) * (s + 2) * s / lead
            c0 = (s + 1) * (a * a - b * b) / lead
            c2 = 2 * (n + a) * (n + b) * (s + 2) / lead
            out.append((c1 * t + c0) * out[-1] - c2 * out[-2])
        return torch.stack(out, dim=-1)
