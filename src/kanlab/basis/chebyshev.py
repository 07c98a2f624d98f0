"""Chebyshev polynomials of the first kind (ChebyKAN): ``T_0 … T_d`` of ``tanh(x)``.

Evaluated by the recurrence ``T_{n+1}(t) = 2t·T_n(t) − T_{n−1}(t)`` — never as ``cos(n·acos t)``, whose
gradient is infinite (NaN) at ``t = ±1``.  Values lie in ``[−1, 1]`` for every real input.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import register_basis
from .polynomial import PolynomialBasis

__all__ = ["Chebyshev"]


@register_basis("chebyshev")
class Chebyshev(PolynomialBasis):
    """Chebyshev polynomials ``T_0 … T_degree`` of the squashed input.

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
        for _ in range(2, self.degree + 1):
            out.append(2 * t * out[-1] - out[-2])
        return torch.stack(out, dim=-1)
