"""Gaussian radial basis functions (FastKAN, DeepOKAN): ``B_k(x) = exp(-((x - μ_k) / h)²)``.

Centres sit on a uniform grid over ``grid_range`` (optionally learnable, per feature); the width ``h`` is the
grid spacing (times ``width_scale``).  Outside the range the values decay to zero smoothly (never NaN), so a
KAN edge falls back to its base branch far from the data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Basis, register_basis

__all__ = ["RBF"]


@register_basis("rbf")
class RBF(Basis):
    """Gaussian RBF basis with ``num_centers`` centres per input feature.

    Arguments:
        in_features: number of input features (or None to bind later).
        num_centers: ``K >= 1`` centres.
        grid_range: ``(low, high)``: the first and last centre.
        learnable_centers: make the centres a Parameter ``(in, K)``.
        width_scale: multiplies the spacing to give the Gaussian width.
    Shape:
        ``(*, in)`` → ``(*, in, K)``.
    """

    domain = "any real input; values decay to 0 away from the centres (exp(-z²), never NaN)"

    def __init__(self, in_features: int | None = None, *, num_centers: int = 8,
                 grid_range: tuple[float, float] = (-1.0, 1.0), learnable_centers: bool = False,
                 width_scale: float = 1.0, out_features: int | None = None, device=None, dtype=None) -> None:
        if not isinstance(num_centers, int) or isinstance(num_centers, bool) or num_centers < 1:
            raise ValueError(f"num_centers must be an integer >= 1, got {num_centers!r}")
        lo, hi = (float(v) for v in grid_range)
        if not (hi > lo and abs(lo) < float("inf") and abs(hi) < float("inf")):
            raise ValueError(f"grid_range must be finite with low < high, got {tuple(grid_range)!r}")
        if not width_scale > 0:
            raise ValueError(f"width_scale must be > 0, got {width_scale!r}")
        self.num_centers = num_centers
        self.grid_range = (lo, hi)
        self.learnable_centers = bool(learnable_centers)
        self.width_scale = float(width_scale)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    def _build(self, device=None, dtype=None) -> None:
        centers = torch.empty(self.in_features, self.num_centers, device=device, dtype=dtype)
        if self.learnable_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)

    def reset_parameters(self) -> None:
        lo, hi = self.grid_range
        with torch.no_grad():
            row = torch.linspace(lo, hi, self.num_centers, dtype=torch.float64)
            self.centers.copy_(row.to(self.centers.dtype).expand(self.in_features, -1))

    @property
    def num_functions(self) -> int:
        return self.num_centers

    @property
    def width(self) -> float:
        lo, hi = self.grid_range
        spacing = (hi - lo) / max(self.num_centers - 1, 1)
        return spacing * self.width_scale

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_centers={self.num_centers}, grid_range={self.grid_range}, "
                f"learnable_centers={self.learnable_centers}")

    def config(self) -> dict[str, Any]:
        return {"num_centers": self.num_centers, "grid_range": list(self.grid_range),
                "learnable_centers": self.learnable_centers, "width_scale": self.width_scale}

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, K)``."""
        self._check_input(x)
        z = (x.unsqueeze(-1) - self.centers.to(x.dtype)) / self.width
        return torch.exp(-z * z)
