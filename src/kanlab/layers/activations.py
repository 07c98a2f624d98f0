"""Named base activations ``b(x)`` for the residual branch of a KAN edge (JSON-safe names, no lambdas)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BASE_ACTIVATIONS", "get_activation"]


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x)


def _identity(x: Tensor) -> Tensor:
    return x


BASE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "gelu": F.gelu,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "identity": _identity,
    "zero": _zero,
}


def get_activation(name: str | None) -> Callable[[Tensor], Tensor]:
    """The activation registered under ``name`` (``None`` means ``"zero"``: no base branch)."""
    key = "zero" if name is None else name
    if key not in BASE_ACTIVATIONS:
        raise ValueError(f"unknown base_activation {name!r}; choose one of: {', '.join(sorted(BASE_ACTIVATIONS))}")
    return BASE_ACTIVATIONS[key]
