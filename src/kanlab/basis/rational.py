"""Safe Padé (rational) basis, the GR-KAN form of the Kolmogorov–Arnold Transformer (KAT)::

    φ(x) = P(x) / Q(x),   P(x) = Σ_{k=0}^{m} a_k x^k,   Q(x) = 1 + |Σ_{j=1}^{n} b_j x^j|

``Q >= 1`` everywhere, so there are no poles.  To fit the basis contract the numerator is spread over
``K = m + 1`` values ``x^k / Q(x)``: the layer's coefficients ``coef[o, i, k]`` are the numerator
coefficients ``a_k`` of edge ``(o, i)``, while the denominator is a learnable Parameter ``denominator``:

* per input (default): ``(in, n)`` — shared by the edges leaving one input;
* grouped (``groups=g``): ``(g, n)`` — consecutive blocks of ``in / g`` inputs share one (KAT's group-wise
  rational);
* per edge (``per_edge=True``): ``(out, in, n)`` — every edge has its own; then ``K = out·(m + 1)`` and
  value ``o·(m + 1) + k`` of input ``i`` is ``x^k / Q_{o,i}(x)`` (a full ``coef`` may mix the denominators
  of sibling edges; ``coef`` restricted to block ``o`` for output ``o`` is the exact per-edge form).

The denominator starts at ``b = (0, …, 0, 1)``, i.e. ``Q = 1 + |x|^n``, so for ``m <= n + 1`` the initial edge
functions grow at most linearly.  Inputs are clipped to ``±input_clip`` before the powers are taken, so the
values are finite (never NaN) for any input; beyond the clip they are constant.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Basis, register_basis
from .checks import check_float, check_int

__all__ = ["Rational"]


@register_basis("rational")
class Rational(Basis):
    """Rational functions ``x^k / (1 + |Σ_j b_j x^j|)``, ``k = 0 … m``.

    Arguments:
        in_features: number of input features (or None to bind later).
        numerator_degree: ``m >= 0``.
        denominator_degree: ``n >= 1``.
        groups: share one denominator among blocks of ``in / groups`` inputs (must divide ``in``);
            None: one per input.
        per_edge: one denominator per edge ``(out, in)`` (needs ``out_features``; excludes ``groups``).
        input_clip: inputs are clipped to ``[−input_clip, input_clip]``.
    Shape:
        ``(*, in)`` → ``(*, in, m + 1)`` (``(*, in, out·(m + 1))`` with ``per_edge``).
    """

    domain = ("any real input: P/Q with Q = 1 + |Σ b_j x^j| >= 1 (no poles); inputs beyond ±input_clip are "
              "clipped, so values are finite and never NaN")

    def __init__(self, in_features: int | None = None, *, numerator_degree: int = 5,
                 denominator_degree: int = 4, groups: int | None = None, per_edge: bool = False,
                 input_clip: float = 1e3, out_features: int | None = None, device=None, dtype=None) -> None:
        self.numerator_degree = check_int("numerator_degree", numerator_degree, 0)
        self.denominator_degree = check_int("denominator_degree", denominator_degree, 1)
        if groups is not None:
            check_int("groups", groups, 1)
        if not isinstance(per_edge, bool):
            raise ValueError(f"per_edge must be True or False, got {per_edge!r}")
        if per_edge and groups is not None:
            raise ValueError("choose either groups (shared denominators) or per_edge=True, not both")
        self.groups = groups
        self.per_edge = per_edge
        self.input_clip = check_float("input_clip", input_clip, greater_than=0.0)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    def _build(self, device=None, dtype=None) -> None:
        n = self.denominator_degree
        if self.per_edge:
            if self.out_features is None:
                raise ValueError("Rational(per_edge=True) needs out_features (one denominator per edge)")
            shape: tuple[int, ...] = (self.out_features, self.in_features, n)
        elif self.groups is not None:
            if self.in_features % self.groups:
                raise ValueError(f"groups={self.groups} must divide in_features={self.in_features}")
            shape = (self.groups, n)
        else:
            shape = (self.in_features, n)
        self.denominator = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.denominator.zero_()
            self.denominator[..., -1] = 1.0

    @property
    def num_functions(self) -> int:
        m1 = self.numerator_degree + 1
        if self.per_edge:
            if self.out_features is None:
                raise RuntimeError("Rational(per_edge=True) has K = out·(m + 1); bind it first")
            return self.out_features * m1
        return m1

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, numerator_degree={self.numerator_degree}, "
                f"denominator_degree={self.denominator_degree}, groups={self.groups}, per_edge={self.per_edge}")

    def config(self) -> dict[str, Any]:
        return {"numerator_degree": self.numerator_degree, "denominator_degree": self.denominator_degree,
                "groups": self.groups, "per_edge": self.per_edge, "input_clip": self.input_clip}

    def _powers(self, x: Tensor, degree: int) -> Tensor:
        """``(*, in)`` → ``(*, in, degree + 1)``: ``x^0 … x^degree``."""
        out = [torch.ones_like(x)]
        for _ in range(degree):
            out.append(out[-1] * x)
        return torch.stack(out, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, K)``."""
        self._check_input(x)
        x = x.clamp(-self.input_clip, self.input_clip)
        powers = self._powers(x, max(self.numerator_degree, self.denominator_degree))
        numer = powers[..., : self.numerator_degree + 1]  # (*, in, m+1)
        pden = powers[..., 1: self.denominator_degree + 1]  # (*, in, n)
        b = self.denominator.to(x.dtype)
        if self.per_edge:
            q = 1 + (pden.unsqueeze(-3) * b).sum(-1).abs()  # (*, out, in)
            values = numer.unsqueeze(-2) / q.transpose(-1, -2).unsqueeze(-1)  # (*, in, out, m+1)
            return values.flatten(-2)
        if self.groups is not None:
            b = b.repeat_interleave(self.in_features // self.groups, dim=0)  # (in, n)
        q = 1 + (pden * b).sum(-1).abs()  # (*, in)
        return numer / q.unsqueeze(-1)
