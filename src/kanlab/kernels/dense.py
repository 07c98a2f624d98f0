"""Dense reference contraction: one GEMM over the packed ``in·K`` axis (the efficient-kan formulation)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["contract_dense", "edge_contributions"]


def contract_dense(values: Tensor, weight: Tensor) -> Tensor:
    """``values (*, in, K)``, ``weight (out, in, K)`` → ``(*, out)``."""
    lead = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1])
    out = flat @ weight.reshape(weight.shape[0], -1).t()
    return out.reshape(*lead, weight.shape[0])


def edge_contributions(values: Tensor, weight: Tensor) -> Tensor:
    """Per-edge outputs: ``values (*, in, K)``, ``weight (out, in, K)`` → ``(*, out, in)``."""
    return (values.unsqueeze(-3) * weight).sum(-1)
