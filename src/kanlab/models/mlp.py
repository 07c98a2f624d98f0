"""Plain MLP baselines, sized to match a KAN's parameter count for honest comparisons."""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from ..layers.activations import get_activation

__all__ = ["MLP", "matched_mlp"]


class _Act(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = get_activation(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class MLP(nn.Module):
    """Multi-layer perceptron: ``Linear → act → … → Linear``.

    Arguments:
        widths: nodes per layer, input first, e.g. ``[2, 16, 16, 1]``.
        activation: a base-activation name (``"silu"``, ``"tanh"``, ``"relu"``, ...).
    Shape:
        ``(*, widths[0])`` → ``(*, widths[-1])``.
    """

    def __init__(self, widths: Sequence[int], activation: str = "silu", *, device=None, dtype=None) -> None:
        super().__init__()
        if len(widths) < 2 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be at least two positive integers, got {list(widths)!r}")
        self.widths = list(widths)
        self.activation = activation
        mods: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            mods.append(nn.Linear(a, b, device=device, dtype=dtype))
            mods.append(_Act(activation))
        self.net = nn.Sequential(*mods[:-1])

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def mlp_params(n_in: int, hidden: int, n_out: int, depth: int) -> int:
    """Parameter count of an MLP with ``depth`` hidden layers of width ``hidden``."""
    if depth == 0:
        return (n_in + 1) * n_out
    return (n_in + 1) * hidden + (depth - 1) * (hidden + 1) * hidden + (hidden + 1) * n_out


def matched_mlp(n_in: int, n_out: int, n_params: int, depth: int = 2, activation: str = "silu",
                **factory) -> MLP:
    """An MLP with ``depth`` equal hidden layers whose parameter count is as close as possible to
    ``n_params``."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    best, best_gap = 1, math.inf
    for h in range(1, 4096):
        gap = abs(mlp_params(n_in, h, n_out, depth) - n_params)
        if gap < best_gap:
            best, best_gap = h, gap
        if mlp_params(n_in, h, n_out, depth) > n_params:
            break
    return MLP([n_in] + [best] * depth + [n_out], activation=activation, **factory)
