"""Pruning: a new, smaller KAN without the unimportant hidden nodes, edges (and optionally inputs).

Importance comes from :func:`~kanlab.interpret.attribution.attribute` on data ``x``: hidden nodes whose
attribution score is below ``threshold`` are removed (widths shrink), edges whose score is below
``edge_threshold`` are masked.  The kept edges compute exactly the functions they computed before; what a
removed edge or node contributed on average over ``x`` is folded into the bias of the node it fed, so the
pruned model stays close to the original.  The original model is not modified.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor

from .attribution import _check_model, _check_x, attribute, edge_activations

__all__ = ["prune", "prune_inputs", "select_nodes"]


def _sliced_basis_state(basis, keep_in: Tensor, keep_out: Tensor) -> dict:
    """The basis state restricted to the kept inputs/outputs: tensors whose first dim is ``in_features`` are
    per-feature (indexed by ``keep_in``); tensors of 3+ dims starting ``(out, in)`` are per-edge."""
    old_in, old_out = basis.in_features, basis.out_features
    state = {}
    for name, t in basis.state_dict().items():
        if isinstance(t, Tensor):
            if t.dim() >= 3 and old_out is not None and tuple(t.shape[:2]) == (old_out, old_in):
                t = t[keep_out][:, keep_in]
            elif t.dim() >= 1 and t.shape[0] == old_in:
                t = t[keep_in]
            t = t.clone()
        state[name] = t
    return state


@torch.no_grad()
def select_nodes(model, keep: Sequence[Sequence[int]], *, x: Tensor | None = None,
                 edge_mask: Sequence[Tensor] | None = None):
    """A new KAN keeping, for every node layer, the node indices ``keep[k]`` (inputs first, outputs last;
    for a layer with multiplication nodes, sum nodes are ``0..n_sum-1`` and mult node ``m`` is ``n_sum + m``).

    ``edge_mask`` (optional, one ``(out, in)`` tensor per layer in the *original* indexing) masks extra edges.
    With ``x``, the mean contribution of every removed node or masked edge is folded into the next bias.
    """
    from ..basis import create_basis
    from ..models.kan import KAN

    _check_model(model)
    n_layers = len(model.layers)
    if len(keep) != n_layers + 1:
        raise ValueError(f"keep needs one index list per node layer ({n_layers + 1}), got {len(keep)}")
    if list(keep[-1]) != list(range(model.out_features)):
        raise ValueError("output nodes cannot be removed")
    pairs = model.width_pairs
    keep = [sorted(int(k) for k in ks) for ks in keep]
    new_pairs = []
    for k, ks in enumerate(keep):
        n_sum, n_mult = pairs[k]
        if any(not 0 <= v < n_sum + n_mult for v in ks) or len(set(ks)) != len(ks):
            raise ValueError(f"keep[{k}] has invalid node indices {ks} (layer has {n_sum + n_mult} nodes)")
        if not ks:
            raise ValueError(f"keep[{k}] is empty: every layer needs at least one node")
        new_pairs.append((sum(v < n_sum for v in ks), sum(v >= n_sum for v in ks)))

    def sub_outputs(k: int) -> list[int]:  # KAN-layer output indices of the kept nodes of node layer k
        n_sum, _ = pairs[k]
        out = [v for v in keep[k] if v < n_sum]
        for v in keep[k]:
            if v >= n_sum:
                m = v - n_sum
                out += [n_sum + 2 * m, n_sum + 2 * m + 1]
        # the layer output order is: kept sum nodes, then the factor pairs of the kept mult nodes
        return out

    acts = edge_activations(model, x) if x is not None else None
    first = model.layers[0]
    p = next(model.parameters())
    widths = [w if m == 0 else (w, m) for w, m in new_pairs]
    bases = []
    layer_keep = []
    for l, layer in enumerate(model.layers):
        ki = torch.tensor(keep[l], dtype=torch.long)  # inputs of KAN layer l are the nodes of node layer l
        ko = torch.tensor(sub_outputs(l + 1), dtype=torch.long)
        layer_keep.append((ki, ko))
        bases.append(create_basis(layer.basis.name, **layer.basis.config()))
    new = KAN(widths, basis=bases, base_activation=model.base_activation, bias=first.bias is not None,
              device=p.device, dtype=p.dtype)
    for l, (layer, target) in enumerate(zip(model.layers, new.layers)):
        ki, ko = layer_keep[l]
        if hasattr(layer.basis, "select"):  # a family that knows how to restrict itself
            target.basis = layer.basis.select(ki, ko)
        else:
            target.basis.load_state_dict(_sliced_basis_state(layer.basis, ki, ko))
        for name in ("base_weight", "coef", "spline_scaler", "mask", "symbolic_mask", "symbolic_affine"):
            getattr(target, name).data.copy_(getattr(layer, name).detach()[ko][:, ki])
        if layer.bias is not None:
            target.bias.data.copy_(layer.bias.detach()[ko])
        names = [[layer.symbolic_name(j, i) for i in ki.tolist()] for j in ko.tolist()]
        target.set_extra_state({"symbolic": names})
        if edge_mask is not None:
            target.mask.mul_(edge_mask[l].to(target.mask)[ko][:, ki])
        if acts is not None and layer.bias is not None:
            # fold the mean output of every edge that no longer contributes into the bias of its target
            removed = layer.mask.clone()
            removed[ko[:, None], ki[None, :]] -= target.mask
            means = (acts[l].mean(dim=0) * removed).sum(dim=1)  # (old out,)
            target.bias.data.add_(means[ko])
    if hasattr(model, "names") and model.names is not None:
        new.names = list(model.names)
    return new


@torch.no_grad()
def prune(model, x: Tensor, threshold: float = 1e-2, *, edge_threshold: float | None = None,
          nodes: bool = True, edges: bool = True):
    """Return a pruned copy of ``model`` (the original is untouched).

    Arguments:
        model: a :class:`~kanlab.KAN`.
        x: inputs ``(N, n_inputs)`` (or a data dict) on which importance is measured.
        threshold: hidden nodes with attribution score below this are removed.
        edge_threshold: edges with attribution score below this are masked (default ``threshold``).
        nodes, edges: switch node removal / edge masking off.
    """
    _check_model(model)
    x = _check_x(model, x)
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    edge_threshold = threshold if edge_threshold is None else edge_threshold
    attr = attribute(model, x)
    n_layers = len(model.layers)
    keep = [list(range(sum(model.width_pairs[0])))]
    for k in range(1, n_layers):
        score = attr.node_score[k]
        ks = [v for v in range(len(score)) if not nodes or float(score[v]) >= threshold]
        if not ks:
            ks = [int(torch.argmax(score))]
        keep.append(ks)
    keep.append(list(range(model.out_features)))
    mask = None
    if edges:
        mask = [(s >= edge_threshold).to(s.dtype) for s in attr.edge_score]
    return select_nodes(model, keep, x=x, edge_mask=mask)


@torch.no_grad()
def prune_inputs(model, x: Tensor, threshold: float = 1e-2, *, names: Sequence[str] | None = None):
    """Remove input features whose attribution score is below ``threshold``.

    Returns ``(new_model, kept)`` where ``kept`` lists the original indices of the kept inputs (feed the new
    model ``x[:, kept]``).  ``names`` (or ``model.names``) are filtered into ``new_model.names``.
    """
    _check_model(model)
    x = _check_x(model, x)
    score = attribute(model, x).input_score
    kept = [i for i in range(len(score)) if float(score[i]) >= threshold] or [int(torch.argmax(score))]
    keep = [kept] + [list(range(sum(p))) for p in model.width_pairs[1:]]
    new = select_nodes(model, keep, x=x)
    names = names if names is not None else getattr(model, "names", None)
    new.names = [names[i] for i in kept] if names is not None else None
    return new, kept
