"""Shared base of the orthogonal-polynomial families (Chebyshev, Legendre, Gram, Jacobi).

The input is first mapped into ``[-1, 1]`` — by ``tanh`` (default: smooth, every real input is valid, far
inputs saturate) or by clamping (identity inside ``[-1, 1]``, constant outside) — and the polynomials of
degree ``0 … degree`` are evaluated there by their three-term recurrence (never through ``acos``/``cos``, so
no NaN at ``±1``).  ``K = degree + 1``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from .base import Basis
from .checks import check_choice, check_int

__all__ = ["PolynomialBasis", "SQUASHES"]


def _clamp_unit(x: Tensor) -> Tensor:
    return x.clamp(-1.0, 1.0)


#: input maps into [-1, 1], by name (names are stored in configs, never functions)
SQUASHES: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "clamp": _clamp_unit}


class PolynomialBasis(Basis):
    """Polynomials ``P_0 … P_degree`` of the squashed input: ``(*, in)`` → ``(*, in, degree + 1)``.

    Subclasses implement :meth:`polynomials` (the recurrence on ``t`` in ``[-1, 1]``).
    """

    domain = ("any real input: x is squashed into [-1, 1] (tanh by default, or clamped) before the "
              "recurrence, so values stay bounded and never NaN; far inputs saturate to constants")

    def __init__(self, in_features: int | None = None, *, degree: int = 5, squash: str = "tanh",
                 out_features: int | None = None, device=None, dtype=None) -> None:
        self.degree = check_int("degree", degree, 0)
        self.squash = check_choice("squash", squash, list(SQUASHES))
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    @property
    def num_functions(self) -> int:
        return self.degree + 1

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, degree={self.degree}, squash={self.squash!r}"

    def config(self) -> dict[str, Any]:
        return {"degree": self.degree, "squash": self.squash}

    def polynomials(self, t: Tensor) -> Tensor:
        """``t (*, in)`` in ``[-1, 1]`` → ``(*, in, degree + 1)``."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, degree + 1)``."""
        self._check_input(x)
        return self.polynomials(SQUASHES[self.squash](x))
