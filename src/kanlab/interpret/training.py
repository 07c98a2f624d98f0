"""A lean full-batch LBFGS trainer for the interpretation workflow.

:func:`kanlab.fit` is the general loop; the science workflow needs something narrower and faster: the
sparsity penalty computed from the same edge outputs as the prediction (one basis evaluation per layer,
not two), an optional subset of parameters (e.g. only the symbolic constants), and no callbacks.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["forward_with_penalty", "train_lbfgs", "refit_symbolic_constants"]

log = logging.getLogger(__name__)


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


def _constant_slots(model) -> list[tuple[str, tuple[int, ...]]]:
    """The identifiable constants of the symbolic edges, as ``(parameter name, index)``: per active symbolic
    edge its scale ``a`` and the free ones of ``b``, ``c`` (see :class:`~.symbolic.library.Primitive`:
    ``x²`` only needs its shift, ``exp`` only its scale), and per node its bias, or, without biases, the
    offset ``d`` of its first symbolic edge (the offsets of a node add up to one constant)."""
    from .symbolic.library import get_primitive

    slots = []
    for l, layer in enumerate(model.layers):
        symbolic = "symbolic_affine" in layer._parameters
        for j in range(layer.out_features):
            offset = layer.bias is not None
            if offset:
                slots.append((f"layers.{l}.bias", (j,)))
            for i in range(layer.in_features if symbolic else 0):
                name = layer.symbolic_name(j, i)
                if not name or layer.mask[j, i] == 0:
                    continue
                free = get_primitive(name).free
                if name != "0":
                    slots += [(f"layers.{l}.symbolic_affine", (j, i, k))
                              for k, c in ((0, "a"), (1, "b"), (2, "c")) if c == "a" or c in free]
                if not offset:
                    slots.append((f"layers.{l}.symbolic_affine", (j, i, 3)))
                    offset = True
    return slots


def refit_symbolic_constants(model, x: Tensor, y: Tensor, *, iters: int = 50, rtol: float = 1e-14) -> float:
    """Levenberg–Marquardt on the constants of the symbolic edges (and the biases), minimising the MSE of
    ``model(x)`` against ``y``; numeric edges stay as they are.  Returns the final training RMSE.

    :func:`train_lbfgs` on all four constants of every edge (``a·f(b·x + c) + d``) plus the biases works on a
    redundant parametrisation (``b`` of ``x²``, all offsets of a node, the product of an inner and an outer
    scale) and, being first order, crawls on this ill-conditioned least-squares problem: it stops at a
    relative error of ~1e-6..1e-4 even when the data are reproduced exactly.  Here only the identifiable
    constants move (:func:`_constant_slots`), the Jacobian comes from forward-mode AD (one pass per
    constant), and the damped Gauss–Newton steps converge quadratically to a zero residual (and to the
    least-squares optimum otherwise); the damping takes care of the remaining products of scales.  A step
    is kept only when it lowers the error without moving an argument of a restricted primitive (sqrt, log,
    1/x, ...) out of its domain on ``x``, so the result is never worse than the start.  Stops after ``iters``
    iterations or when an accepted step gains less than ``rtol`` (relative).  A model whose forward pass
    does not support forward-mode differentiation is left unchanged.
    """
    from torch.func import functional_call, jvp

    from ..train.least_squares import levenberg_marquardt
    from .symbolic.library import get_primitive

    target = y.reshape(len(x), -1).to(x.dtype)
    slots = _constant_slots(model)
    if not slots:
        with torch.no_grad():
            return float(torch.sqrt(torch.mean((model(x) - target) ** 2)))
    named = dict(model.named_parameters())
    keys = sorted({name for name, _ in slots})
    base = {k: named[k].detach().clone() for k in keys}
    where = {k: [(n, idx) for n, (name, idx) in enumerate(slots) if name == k] for k in keys}
    # edges of restricted primitives (sqrt, log, 1/x, ...): a step must not move their arguments out of the
    # domain, where the model's clamped function and the formula part ways
    restricted = [(l, j, i, get_primitive(layer.symbolic_name(j, i)))
                  for l, layer in enumerate(model.layers) if "symbolic_affine" in layer._parameters
                  for j in range(layer.out_features) for i in range(layer.in_features)
                  if layer.mask[j, i] != 0 and layer.symbolic_name(j, i)
                  and get_primitive(layer.symbolic_name(j, i)).restricted]

    where = {k: ([n for n, _ in w], tuple(torch.tensor(col, device=base[k].device)
                                          for col in zip(*(idx for _, idx in w)))) for k, w in where.items()}

    def tensors(theta: Tensor) -> dict[str, Tensor]:
        """The parameters holding the constants, with the constants ``theta``."""
        return {k: base[k].index_put(idx, theta[pos].to(base[k])) for k, (pos, idx) in where.items()}

    def resid(theta: Tensor) -> Tensor:
        return (functional_call(model, tensors(theta), (x,)) - target).reshape(-1)

    def invalid(theta: Tensor) -> int:
        """How many arguments of restricted edges lie outside their domain (on the data)."""
        if not restricted:
            return 0
        params = tensors(theta)
        h, count = x, 0
        for l, layer in enumerate(model.layers):
            affine = params.get(f"layers.{l}.symbolic_affine", layer.symbolic_affine)
            for ll, j, i, prim in restricted:
                if ll == l:
                    z = h[:, i] * affine[j, i, 1] + affine[j, i, 2]
                    count += int((~prim.valid(z, margin=1e-9)).sum())
            sub = {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"layers.{l}.")}
            h = model._nodes(l, functional_call(layer, sub, (h,)))
        return count

    def jacobian(theta: Tensor) -> Tensor:  # forward mode: one pass per constant
        with torch.no_grad():
            return torch.stack([jvp(resid, (theta,), (eye[k],))[1] for k in range(len(slots))], dim=1)

    theta = torch.stack([named[k].detach()[idx] for k, idx in slots]).to(torch.float64)
    eye = torch.eye(len(slots), dtype=theta.dtype, device=theta.device)
    was_training = model.training
    model.eval()
    try:
        bad = invalid(theta)
        theta, _, _ = levenberg_marquardt(resid, jacobian, theta, iters=iters, rtol=rtol,
                                          accept=(lambda t: invalid(t) <= bad) if restricted else None)
    except (RuntimeError, NotImplementedError) as err:  # e.g. a kernel without forward-mode AD
        log.debug("symbolic constant refit skipped: %s", err)
    finally:
        model.train(was_training)
    with torch.no_grad():
        for k, v in tensors(theta).items():
            named[k].copy_(v.to(named[k].dtype))
        return float(torch.sqrt(torch.mean((model(x) - target) ** 2)))


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
