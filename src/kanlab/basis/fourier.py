"""Fourier basis (FourierKAN): ``cos(k·ω·x)`` and ``sin(k·ω·x)`` for ``k = 1 … G``.

No constant term (the layer's bias holds it).  Periodic with period ``2π/ω``: defined, bounded and smooth for
every real input (never NaN); it does not decay away from the data, so far inputs give periodic repeats.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Basis, register_basis
from .checks import check_float, check_int

__all__ = ["Fourier"]


@register_basis("fourier")
class Fourier(Basis):
    """Truncated Fourier series basis.

    Arguments:
        in_features: number of input features (or None to bind later).
        num_frequencies: ``G >= 1`` harmonics.
        base_frequency: ``ω > 0``, the fundamental angular frequency.
    Shape:
        ``(*, in)`` → ``(*, in, 2G)``: ``[cos(ωx), …, cos(Gωx), sin(ωx), …, sin(Gωx)]``.
    """

    domain = "any real input: bounded, smooth and periodic (period 2π/base_frequency); never NaN"

    def __init__(self, in_features: int | None = None, *, num_frequencies: int = 5, base_frequency: float = 1.0,
                 out_features: int | None = None, device=None, dtype=None) -> None:
        self.num_frequencies = check_int("num_frequencies", num_frequencies, 1)
        self.base_frequency = check_float("base_frequency", base_frequency, greater_than=0.0)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    @property
    def num_functions(self) -> int:
        return 2 * self.num_frequencies

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_frequencies={self.num_frequencies}, "
                f"base_frequency={self.base_frequency}")

    def config(self) -> dict[str, Any]:
        return {"num_frequencies": self.num_frequencies, "base_frequency": self.base_frequency}

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, 2G)``."""
        self._check_input(x)
        k = torch.arange(1, self.num_frequencies + 1, dtype=x.dtype, device=x.device) * self.base_frequency
        phase = x.unsqueeze(-1) * k
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
