"""Edge, node and input-feature importance of a KAN, from activations captured with forward hooks.

Scores follow KAN 2.0 (Liu et al., 2024): the *edge scale* ``E[l][j, i]`` is the standard deviation of edge
``φ_{l,j,i}(x_i)`` over the data.  Attribution flows back from the outputs (score 1 each): a node passes its
score to its incoming edges in proportion to their scales, ``B[l][j, i] = A_{l+1, j} · E[l][j, i] / Σ_i
E[l][j, i]``, and a node's score is the sum over its outgoing edges, ``A_{l, i} = Σ_j B[l][j, i]``.  A
multiplication node hands half of its score to each of its two factors.  Scores are therefore relative
(the input scores sum to the number of outputs) and thresholds such as ``1e-2`` mean the same thing for
every data set.

Index convention (as in the KAN papers): edge ``(l, i, j)`` goes from node ``i`` of layer ``l`` to node ``j``
of layer ``l + 1``; tensors are stored ``[j, i]`` (out, in), like ``nn.Linear`` weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["capture_layer_inputs", "edge_activations", "Attribution", "attribute", "feature_scores"]


def _check_model(model: nn.Module) -> None:
    from ..models.kan import KAN

    if not isinstance(model, KAN):
        raise TypeError(f"interpretation needs a kanlab.KAN model, got {type(model).__name__}")


def _check_x(model: nn.Module, x: Tensor) -> Tensor:
    if isinstance(x, dict):
        x = x.get("train_input")
    if not isinstance(x, Tensor):
        raise TypeError("x must be a tensor of inputs (N, n_features) or a data dict with 'train_input'")
    if x.dim() != 2 or x.shape[1] != model.in_features:
        raise ValueError(f"x must have shape (N, {model.in_features}), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError("need at least 2 samples to measure activations")
    p = next(model.parameters())
    x = x.to(device=p.device, dtype=p.dtype)
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return x


@torch.no_grad()
def capture_layer_inputs(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Run ``model`` on ``x`` and return the input of every KAN layer (``len(model.layers)`` tensors
    ``(N, in_l)``), captured by temporary forward hooks (nothing is cached on the model)."""
    _check_model(model)
    x = _check_x(model, x)
    captured: list[Tensor | None] = [None] * len(model.layers)
    handles = []

    def make_hook(l: int):
        def hook(module, args, output):
            captured[l] = args[0].detach()

        return hook

    try:
        for l, layer in enumerate(model.layers):
            handles.append(layer.register_forward_hook(make_hook(l)))
        was_training = model.training
        model.eval()
        model(x)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return captured  # type: ignore[return-value]


@torch.no_grad()
def edge_activations(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Every edge's output on ``x``: one ``(N, out_l, in_l)`` tensor per layer (pruned edges are 0)."""
    inputs = capture_layer_inputs(model, x)
    return [layer.edge_outputs(h) * layer.mask for layer, h in zip(model.layers, inputs)]


@dataclass
class Attribution:
    """Importance scores of one model on one data set.

    Attributes:
        edge_scale: per layer ``(out_l, in_l)``: std of each edge's output (``E``).
        edge_score: per layer ``(out_l, in_l)``: attribution of each edge (``B``).
        node_score: per node layer ``(n_nodes,)``, input layer first, outputs last (``A``).
        sub_node_score: per KAN layer ``(out_l,)``: score of each layer *output* before multiplication
            nodes combine pairs of them.
    """

    edge_scale: list[Tensor]
    edge_score: list[Tensor]
    node_score: list[Tensor]
    sub_node_score: list[Tensor]

    @property
    def input_score(self) -> Tensor:
        """``(n_inputs,)`` attribution of each input feature."""
        return self.node_score[0]


def _split_mult(model, l: int, score: Tensor) -> Tensor:
    """Node scores of layer ``l + 1`` → scores of the ``n_sum + 2·n_mult`` outputs of KAN layer ``l``."""
    n_sum, n_mult = model.width_pairs[l + 1]
    if n_mult == 0:
        return score
    mult = score[n_sum:].repeat_interleave(2) / 2
    return torch.cat([score[:n_sum], mult])


@torch.no_grad()
def attribute(model: nn.Module, x: Tensor) -> Attribution:
    """Edge scales, edge scores and node scores of ``model`` on inputs ``x (N, in)`` (see the module doc)."""
    acts = edge_activations(model, x)
    scales = [a.std(dim=0) for a in acts]
    n_layers = len(model.layers)
    node = [None] * (n_layers + 1)
    sub = [None] * n_layers
    edge = [None] * n_layers
    node[n_layers] = torch.ones(model.out_features, dtype=scales[0].dtype, device=scales[0].device)
    for l in range(n_layers - 1, -1, -1):
        out_score = _split_mult(model, l, node[l + 1])
        sub[l] = out_score
        e = scales[l]
        total = e.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, e / total.clamp_min(1e-300), torch.zeros_like(e))
        edge[l] = share * out_score[:, None]
        node[l] = edge[l].sum(dim=0)
    return Attribution(edge_scale=scales, edge_score=edge, node_score=node, sub_node_score=sub)


def feature_scores(model: nn.Module, x: Tensor) -> Tensor:
    """``(n_inputs,)`` importance of every input feature (propagated back from the outputs)."""
    return attribute(model, x).input_score
