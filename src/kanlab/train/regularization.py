"""Sparsity regularisation of the KAN paper: L1 of mean absolute edge activations plus their entropy."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["edge_scales", "sparsity_penalty", "mask_small_edges"]


def edge_scales(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Mean absolute activation ``|φ_ji|_1`` of every edge of every KAN layer on the batch ``x``.

    Returns one ``(out, in)`` tensor per layer (differentiable).
    """
    from ..models.kan import KAN

    if not isinstance(model, KAN):
        raise TypeError("sparsity regularisation needs a kanlab.KAN model")
    scales = []
    for l, layer in enumerate(model.layers):
        edges = layer.edge_outputs(x)  # (N, out, in)
        scales.append(edges.abs().mean(dim=0))
        x = model._nodes(l, edges.sum(-1) + (layer.bias if layer.bias is not None else 0))
    return scales


def sparsity_penalty(model: nn.Module, x: Tensor, *, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
                     lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> Tensor:
    """``Σ_layers lamb_l1·Σ|φ|_1 + lamb_entropy·S(p)`` with ``p = |φ|_1 / Σ|φ|_1`` (plus optional L1 of the
    coefficients and of their differences).  Returns a scalar tensor."""
    for name, v in (("lamb_l1", lamb_l1), ("lamb_entropy", lamb_entropy), ("lamb_coef", lamb_coef),
                    ("lamb_coefdiff", lamb_coefdiff)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    total = x.new_zeros(())
    for scale in edge_scales(model, x):
        l1 = scale.sum()
        p = scale / (l1 + 1e-12)
        entropy = -(p * torch.log2(p + 1e-4)).sum()
        total = total + lamb_l1 * l1 + lamb_entropy * entropy
    if lamb_coef or lamb_coefdiff:
        for layer in model.layers:
            c = layer.coef
            if lamb_coef:
                total = total + lamb_coef * c.abs().mean(-1).sum()
            if lamb_coefdiff:
                total = total + lamb_coefdiff * c.diff(dim=-1).abs().mean(-1).sum()
    return total


@torch.no_grad()
def mask_small_edges(model: nn.Module, x: Tensor, threshold: float = 1e-2) -> int:
    """Switch off (pruning mask = 0) every edge whose mean |φ| on ``x`` is below ``threshold`` times the
    largest in its layer.  The model keeps its widths; returns the number of edges left on."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    kept = 0
    for layer, scale in zip(model.layers, edge_scales(model, x)):
        keep = (scale > threshold * scale.max()).to(layer.mask.dtype)
        layer.mask.mul_(keep)
        kept += int(layer.mask.sum())
    return kept
