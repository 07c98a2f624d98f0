"""Legendre polynomials ``P_0 … P_d`` of ``tanh(x)``, by Bonnet's recurrence
``(n + 1)·P_{n+1}(t) = (2n + 1)·t·P_n(t) − n·P_{n−1}(t)``.  Values lie in ``[−1, 1]`` for every real input."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import register_basis
from .polynomial import PolynomialBasis

__all__ = ["Legendre"]


@register_basis("legendre")
class Legendre(PolynomialBasis):
    """Legendre polynomials ``P_0 … P_degree`` of the squashed input.

    Arguments:
        in_features: number of input features (or None to bind later).
        degree: highest degree ``d >= 0``.
        squash: ``"tanh"`` (default) or ``"clamp"``: how inputs are mapped into ``[-1, 1]``.
    Shape:
        ``(*, in)`` → ``(*, in, d + 1)``.
    """

    def polynomials(self, t: Tensor) -> Tensor:
        out = [torch.ones_like(t)]
        if self.degree >= 1:
            out.append(t)
        for n in range(1, self.degree):
            out.append(((2 * n + 1) * t * out[-1] - n * out[-2]) / (n + 1))
        return torch.stack(out, dim=-1)
