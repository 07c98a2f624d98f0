"""A lean full-batch LBFGS trainer for the interpretation workflow.

:func:`kanlab.fit` is the general loop; the science workflow needs something narrower and faster: the
sparsity penalty computed from the same edge outputs as the prediction (one basis evaluation per layer,
not two), an optional subset of parameters (e.g. only the symbolic constants), and no callbacks.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["forward_with_penalty", "train_lbfgs"]


def forward_with_penalty(model, x: Tensor, *, lamb_l1: float = 1.0, lamb_entropy: float = 2.0
                         ) -> tuple[Tensor, Tensor]:
    """Model output ``(N, out)`` and the KAN sparsity penalty (L1 of the mean absolute edge activations
    plus their entropy, per layer), from one pass over the edges."""
    penalty = x.new_zeros(())
    h = x
    for l, layer in enumerate(model.layers):
        edges = layer.edge_outputs(h)  # (N, out, in)
        scale = edges.abs().mean(dim=0)
        l1 = scale.sum()
        p = scale / (l1 + 1e-12)
        penalty = penalty + lamb_l1 * l1 - lamb_entropy * (p * torch.log2(p + 1e-4)).sum()
        out = edges.sum(-1)
        if layer.bias is not None:
            out = out + layer.bias
        h = model._nodes(l, out)
    return h, penalty


def train_lbfgs(model, x: Tensor, y: Tensor, *, steps: int, lamb: float = 0.0, lamb_l1: float = 1.0,
                lamb_entropy: float = 2.0, params: Iterable[nn.Parameter] | None = None,
                update_grid_every: int | None = None, stop_grid_update: int = 0, max_iter: int = 20) -> float:
    """Train ``model`` in place on ``(x, y)`` with full-batch LBFGS; returns the final training RMSE.

    Arguments:
        steps: LBFGS steps (each up to ``max_iter`` iterations).
        lamb: sparsity regularisation strength (0 = plain MSE).
        params: parameters to train (default: all that require grad).
        update_grid_every, stop_grid_update: adapt the grids to the data every N steps before that step.
    A step that makes the loss non-finite is undone and training stops.
    """
    model.train()

    def make_opt():
        ps = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
        return torch.optim.LBFGS(ps, lr=1.0, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe",
                                 tolerance_grad=1e-32, tolerance_change=1e-32)

    params = list(params) if params is not None else None
    opt = make_opt()

    def closure():
        opt.zero_grad(set_to_none=True)
        if lamb > 0:
            pred, pen = forward_with_penalty(model, x, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy)
            loss = torch.mean((pred - y) ** 2) + lamb * pen
        else:
            loss = torch.mean((model(x) - y) ** 2)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    for s in range(steps):
        if update_grid_every and s % update_grid_every == 0 and s < stop_grid_update and params is None:
            model.update_grid(x)
            opt = make_opt()
        saved = {k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, Tensor)}
        loss = opt.step(closure)
        if loss is None or not math.isfinite(float(loss.detach())) or not all(
                torch.isfinite(p).all() for p in model.parameters()):
            model.load_state_dict(saved, strict=False)
            break
    model.eval()
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def _last_layer_design(model, x: Tensor) -> tuple[Tensor, list[Tensor], int, bool]:
    """Inputs of the last layer and, per output, the least-squares design matrix of its numeric edges
    (basis values, base activation, a ones column for the bias).  Differentiable in the earlier layers."""
    from ..layers.activations import get_activation

    layer = model.layers[-1]
    h = x
    for l, lay in enumerate(model.layers[:-1]):
        h = model._nodes(l, lay(h))
    n = h.shape[0]
    basis = layer.basis(h)  # (N, in, K)
    k = basis.shape[-1]
    feats = [basis]
    use_base = layer.base_activation != "zero"
    if use_base:
        feats.append(get_activation(layer.base_activation)(h).unsqueeze(-1))
    phi = torch.cat(feats, dim=-1)  # (N, in, K(+1))
    designs = []
    for j in range(layer.out_features):
        active = (layer.numeric_mask()[j] > 0).nonzero().flatten()
        cols = phi[:, active].reshape(n, -1)
        if layer.bias is not None:
            cols = torch.cat([cols, torch.ones(n, 1, dtype=cols.dtype, device=cols.device)], dim=1)
        designs.append(cols)
    return h, designs, k, use_base


def _ls_solve(a: Tensor, target: Tensor, ridge: float) -> Tensor:
    gram = a.t() @ a
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    gram = gram + ridge * gram.diagonal().mean().detach().clamp_min(1e-300) * eye
    return torch.linalg.solve(gram, a.t() @ target)


def projected_mse(model, x: Tensor, y: Tensor, *, ridge: float = 1e-9) -> Tensor:
    """Training MSE when the last layer's numeric edges and bias take their least-squares values for the
    current earlier layers: differentiable in the earlier layers (variable projection)."""
    h, designs, _, _ = _last_layer_design(model, x)
    layer = model.layers[-1]
    target = y.to(h.dtype)
    sym = layer._symbolic_forward(h)
    if sym is not None:
        target = target - sym
    total = h.new_zeros(())
    for j, a in enumerate(designs):
        sol = _ls_solve(a, target[:, j], ridge)
        total = total + torch.mean((a @ sol - target[:, j]) ** 2)
    return total / len(designs)


@torch.no_grad()
def solve_last_layer(model, x: Tensor, y: Tensor, *, ridge: float = 1e-9) -> float | None:
    """Refit the numeric edges (base weights, spline coefficients) and bias of the last KAN layer by linear
    least squares, holding everything before it fixed.  Returns the new training MSE, or None when the last
    node layer has multiplication nodes (the output is then not linear in the last layer)."""
    if model.width_pairs[-1][1]:
        return None
    layer = model.layers[-1]
    h, designs, k, use_base = _last_layer_design(model, x)
    target = y.to(torch.float64).clone()
    sym = layer._symbolic_forward(h)
    if sym is not None:
        target = target - sym.to(torch.float64)
    mse_out = []
    for j, a in enumerate(designs):
        a = a.to(torch.float64)
        active = (layer.numeric_mask()[j] > 0).nonzero().flatten()
        sol = _ls_solve(a, target[:, j], ridge)
        mse_out.append(float(torch.mean((a @ sol - target[:, j]) ** 2)))
        n_w = len(active) * (k + int(use_base))
        w = sol[:n_w].reshape(len(active), -1)
        layer.coef[j, active] = w[:, :k].to(layer.coef.dtype)
        layer.spline_scaler[j, active] = 1.0
        if use_base:
            layer.base_weight[j, active] = w[:, k].to(layer.base_weight.dtype)
        if layer.bias is not None:
            layer.bias[j] = sol[-1].to(layer.bias.dtype)
    return sum(mse_out) / len(mse_out)
