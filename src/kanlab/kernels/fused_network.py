"""A stack of small B-spline layers as one autograd node: the ``"fused"`` kernels called back to back.

A small KAN (``[2, 5, 1]`` on a thousand points) spends as much time in per-layer Python — module calls,
input checks, the kernel switch, one ``autograd.Function`` per layer — as in its kernels.  When every layer of
a :class:`~kanlab.KAN` would take the ``"fused"`` path anyway (see :mod:`kanlab.kernels.dispatch`), and nothing
could observe the individual layer calls (no hooks, no multiplication nodes, no symbolic edges, no
overridden ``forward``), :func:`fused_network` runs the whole stack in one ``autograd.Function``: the forward
calls ``kanlab_cpp::fused_forward`` layer after layer (keeping each layer's basis windows), the backward
``kanlab_cpp::fused_backward`` in reverse.  The values and gradients are those of the per-layer fused path
(tests compare them); second derivatives re-run the layers one by one, differentiably.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn.modules import module as _module

from ..layers.activations import get_activation
from .dispatch import _exporting, _fused_act_kind, _resolve
from .fused import MODES

__all__ = ["fused_network"]


def _hooked(module: torch.nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or "forward" in module.__dict__)


def _plan(model, x: Tensor) -> Optional[list[tuple]]:
    """Per layer ``(tensors (coef, scale, base, bias), grid, order, mode, act)``, or None when the stack cannot
    run as one node (then the layers run one by one, with the same results)."""
    from ..layers.linear import KANLinear

    if (x.dim() != 2 or _exporting() or _module._global_forward_hooks
            or _module._global_forward_pre_hooks or _module._global_backward_hooks
            or _module._global_backward_pre_hooks or any(m != 0 for _, m in model.width_pairs)):
        return None
    plan = []
    for layer in model.layers:
        if type(layer) is not KANLinear or _hooked(layer) or layer.has_symbolic:
            return None
        basis = layer.basis
        if _resolve(layer.kernel, basis, x, layer.coef).name != "fused":
            return None
        scale, base, base_act = layer._numeric_weights()
        tensors = (layer.coef, scale, base, layer.bias)
        act = _fused_act_kind(basis, x, tensors, base_act)
        if act is None:  # compiling, a functorch transform, another device or dtype, another activation
            return None
        plan.append((tensors, basis.grid.to(x.dtype), basis.order, MODES[basis.extrapolate], act))
    return plan


def _forward_chain(plan, x: Tensor, flat, save: bool) -> tuple[Tensor, list[Tensor], list]:
    """Run the layers' fused forwards: ``(output, each layer's input, each layer's kept basis or None)``;
    ``flat`` holds ``(coef, scale, base, bias)`` of every layer in order."""
    inputs, saved, h = [], [], x
    for i, (_, grid, order, mode, act) in enumerate(plan):
        coef, scale, base, bias = flat[4 * i: 4 * i + 4]
        inputs.append(h)
        h, *basis = torch.ops.kanlab_cpp.fused_forward(h, grid, coef, scale, base, bias, order, mode, act, save)
        saved.append(basis if save else None)
    return h, inputs, saved


def _backward_chain(plan, inputs, flat, saved, grad: Tensor, need_input: bool, need) -> tuple:
    """The layers' fused backwards in reverse for ``grad`` of the output: ``(input gradient or None, gradients
    of ``flat`` (None where ``need`` is False))``."""
    grads: list = [None] * len(flat)
    g = grad.contiguous()
    for i in reversed(range(len(plan))):
        _, grid, order, mode, act = plan[i]
        coef, scale, base, bias = flat[4 * i: 4 * i + 4]
        want = need[4 * i: 4 * i + 4]
        outs = torch.ops.kanlab_cpp.fused_backward(g, inputs[i], grid, coef, scale, base, order, mode, act,
                                                   i > 0 or need_input, any(want[:3]), want[3],
                                                   *(saved[i] or (None,) * 5))
        for j in range(4):
            if want[j]:
                grads[4 * i + j] = outs[1 + j]
        g = outs[0]
    return (g if need_input else None), grads


class _FusedNetwork(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, plan, composite, save, *flat):
        h, inputs, saved = _forward_chain(plan, x, flat, save)
        ctx.save_for_backward(*inputs, *flat)
        ctx.plan, ctx.composite, ctx.basis, ctx.n = plan, composite, saved, len(plan)
        return h

    @staticmethod
    def backward(ctx, grad):
        n = ctx.n
        tensors = ctx.saved_tensors
        inputs, flat = tensors[:n], tensors[n:]
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: the layers one by one, differentiably
            wanted = [(0, inputs[0])] + [(4 + j, t) for j, t in enumerate(flat) if t is not None]
            wanted = [(pos, t) for pos, t in wanted if need[pos]]
            with torch.enable_grad():
                out = ctx.composite(inputs[0], flat)
            grads = torch.autograd.grad(out, [t for _, t in wanted], grad, create_graph=True, allow_unused=True)
            result: list = [None] * (4 + len(flat))
            for (pos, _), g in zip(wanted, grads):
                result[pos] = g
            return tuple(result)
        gx, grads = _backward_chain(ctx.plan, inputs, flat, ctx.basis, grad, need[0], need[4:])
        return (gx, None, None, None, *grads)


def fused_network(model, x: Tensor) -> Optional[Tensor]:
    """``model(x)`` for a :class:`~kanlab.KAN` as one autograd node, or None when that does not apply (see the
    module docstring); ``x`` is ``(N, widths[0])``."""
    plan = _plan(model, x)
    if plan is None:
        return None
    flat = [t for tensors, *_ in plan for t in tensors]
    layers = list(model.layers)

    def composite(x_, flat_):
        h = x_
        for i, layer in enumerate(layers):
            coef, scale, base, bias = flat_[4 * i: 4 * i + 4]
            h = _layer_composite(layer, h, coef, scale, base, bias)
        return h

    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in [x, *flat])
    return _FusedNetwork.apply(x, plan, composite, save, *flat)


def _layer_composite(layer, h, coef, scale, base, bias):
    from .dispatch import _dense

    act = get_activation(layer.base_activation) if base is not None else None
    out = _dense(h, layer.basis, coef, scale, base, act)
    return out if bias is None else out + bias


def fused_mse_step(model, x: Tensor, y: Tensor, cache: Optional[dict] = None) -> Optional[Tensor]:
    """``torch.mean((model(x) - y) ** 2)`` and its parameter gradients (accumulated into ``.grad`` as
    ``backward()`` would), computed by the fused kernels directly, without building an autograd graph; or None
    (nothing done) when that does not apply: the network does not run as one node (see :func:`fused_network`),
    a layer's weights are masked, a parameter has gradient hooks, or the output shape differs from ``y``'s.

    The gradients are bit-identical to ``backward()`` through :func:`fused_network` (the same kernel calls, and
    ``∂loss/∂pred = (1/n)·(2·(pred - y))`` rounded as autograd's mean and pow backward do).  This is the
    per-evaluation path of :func:`kanlab.fit`'s default MSE loss: the engine, the loss's three backward nodes and
    the ``autograd.Function`` overhead cost as much as a small network's kernels.

    ``cache``: a dict the caller keeps for as long as only parameter *values* change — :func:`kanlab.fit` passes
    one per optimizer step, whose line search evaluates the same batch twenty-odd times.  The checks above and
    the kernel plan are then made on the first call and reused (they cost a quarter of a small network's
    evaluation); a call with other ``x`` or ``y`` tensors makes them afresh.
    """
    if not torch.is_grad_enabled():
        return None
    entry = cache.get("mse") if cache is not None else None
    if entry is not None and entry[0] is x and entry[1] is y:
        prepared = entry[2]
    else:
        prepared = _mse_prepare(model, x, y)
        if cache is not None:
            cache["mse"] = (x, y, prepared)
    if prepared is None:
        return None
    plan, flat, params, wanted, two_over_n = prepared
    with torch.no_grad():
        h, inputs, saved = _forward_chain(plan, x, flat, True)
        diff = h - y
        loss = torch.mean(diff ** 2)
        # autograd rounds fl(fl(1/n) · 2·diff); 2·diff and 2·fl(1/n) are exact, so this is the same number
        g = diff * two_over_n
        _, grads = _backward_chain(plan, inputs, flat, saved, g, False, wanted)
        for p, grad in zip(params, grads):
            if grad is not None:
                p.grad = grad if p.grad is None else p.grad + grad
    return loss


def _mse_prepare(model, x: Tensor, y: Tensor) -> Optional[tuple]:
    """:func:`fused_mse_step`'s checks and plan: ``(plan, flat tensors, parameters in the same order (None where
    a layer has no base branch), wanted flags, 2·fl(1/n) as a float)``, or None when the step does not apply."""
    if (y.dim() != 2 or not hasattr(model, "width_pairs") or x.requires_grad or y.requires_grad
            or y.dtype != x.dtype or y.device != x.device):
        return None
    plan = _plan(model, x)
    if plan is None:
        return None
    params = []
    for layer, (tensors, *_) in zip(model.layers, plan):
        if tensors[1] is not layer.spline_scaler:  # masked weights: products the engine differentiates
            return None
        params += [layer.coef, layer.spline_scaler, layer.base_weight if tensors[2] is not None else None,
                   layer.bias]
    if any(p is not None and (p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None))
           for p in params):
        return None
    if tuple(y.shape) != (x.shape[0], plan[-1][0][0].shape[0]):  # the output's shape (N, out) differs from y's
        return None
    flat = [t for tensors, *_ in plan for t in tensors]
    wanted = [p is not None and p.requires_grad for p in params]
    one_over_n = (torch.ones((), dtype=y.dtype) / y.numel()).item()  # rounded in y's dtype, as autograd's mean
    return plan, flat, params, wanted, 2.0 * one_over_n
