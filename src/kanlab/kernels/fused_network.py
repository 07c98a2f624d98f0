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
from . import ops
from .dispatch import _FUSED_ACTS, _exporting, _resolve
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
        has_base = layer.base_activation != "zero"
        act = 0
        if has_base:
            act = _FUSED_ACTS.get(get_activation(layer.base_activation))
            if act is None:
                return None
        if layer._all_numeric():
            scale, base = layer.spline_scaler, layer.base_weight
        else:
            mask = layer.numeric_mask()
            scale, base = layer.spline_scaler * mask, layer.base_weight * mask
        tensors = (layer.coef, scale, base if has_base else None, layer.bias)
        for t in tensors:
            if t is not None and t.dtype != x.dtype:
                return None
        plan.append((tensors, basis.grid.to(x.dtype), basis.order, MODES[basis.extrapolate], act))
    if not (ops.uses_extension(x, max(p[2] for p in plan))
            and ops._plain(x, *(t for tensors, *_ in plan for t in tensors))):
        return None  # compiling, a functorch transform, a tensor subclass or another device
    return plan


class _FusedNetwork(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, plan, composite, save, *flat):
        inputs, saved = [], []
        h = x
        for i, (_, grid, order, mode, act) in enumerate(plan):
            coef, scale, base, bias = flat[4 * i: 4 * i + 4]
            inputs.append(h)
            h, *basis = torch.ops.kanlab_cpp.fused_forward(h, grid, coef, scale, base, bias, order, mode, act, save)
            saved.append(basis if save else None)
        ctx.save_for_backward(*inputs, *[t for t in flat])
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
        result = [None] * (4 + len(flat))
        g = grad.contiguous()
        for i in reversed(range(n)):
            _, grid, order, mode, act = ctx.plan[i]
            coef, scale, base, bias = flat[4 * i: 4 * i + 4]
            need_w = any(need[4 + 4 * i: 4 + 4 * i + 3])
            need_x = i > 0 or need[0]
            basis = ctx.basis[i] or (None,) * 5
            gx, gc, gs, gb, gbias = torch.ops.kanlab_cpp.fused_backward(
                g, inputs[i], grid, coef, scale, base, order, mode, act, need_x, need_w,
                need[4 + 4 * i + 3], *basis)
            for j, t in enumerate((gc, gs, gb, gbias)):
                if need[4 + 4 * i + j]:
                    result[4 + 4 * i + j] = t
            if i == 0:
                result[0] = gx if need[0] else None
            g = gx
        return tuple(result)


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
