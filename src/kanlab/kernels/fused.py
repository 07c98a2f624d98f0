"""The ``"fused"`` path's autograd wrapper: a whole small B-spline layer in one C++ call per direction.

``csrc/kan_fused.cpp`` computes ``Σ_i scale·Σ_r coef·B(x_i) + base·act(x_i) + bias`` with the extrapolation
rule folded in, and all its first derivatives, in one pass over the samples; the forward keeps the basis
windows it evaluated for the backward.  For small layers (where launching the half-dozen ops of the other
paths costs more than the arithmetic) this is the fastest way through a training step.  Second derivatives
(``create_graph=True``: PINN losses, ``gradgradcheck``) re-run a differentiable composite (the ``"dense"``
path) inside the backward, so every order of differentiation works.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["fused_layer", "MODES"]

MODES = {"clamp": 0, "linear": 1}  # BSpline.extrapolate → the kernel's mode


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, scale, base, bias, grid, order, mode, act, composite, save):
        y, *basis = torch.ops.kanlab_cpp.fused_forward(x, grid, coef, scale, base, bias, order, mode, act, save)
        ctx.save_for_backward(x, coef, scale, base, bias)
        ctx.basis = basis if save else None  # the basis windows and activation, reused by the backward
        ctx.grid, ctx.order, ctx.mode, ctx.act, ctx.composite = grid, order, mode, act, composite
        return y

    @staticmethod
    def backward(ctx, grad):
        x, coef, scale, base, bias = ctx.saved_tensors
        need = ctx.needs_input_grad[:5]
        if not any(need):
            return (None,) * 11
        if torch.is_grad_enabled():  # create_graph: differentiable gradients from the composite
            inputs = [t for t, n in zip((x, coef, scale, base, bias), need) if n]
            with torch.enable_grad():
                out = ctx.composite(x, coef, scale, base)
                if bias is not None:
                    out = out + bias
            grads = iter(torch.autograd.grad(out, inputs, grad, create_graph=True, allow_unused=True))
            g = [next(grads) if n else None for n in need]
        else:
            basis = ctx.basis or (None,) * 5
            need_w = need[1] or need[2] or need[3]
            g = list(torch.ops.kanlab_cpp.fused_backward(grad.contiguous(), x, ctx.grid, coef, scale, base, ctx.order,
                                                         ctx.mode, ctx.act, need[0], need_w, need[4], *basis))
            g = [t if n else None for t, n in zip(g, need)]
        return (*g, None, None, None, None, None, None)


def fused_layer(x: Tensor, coef: Tensor, scale: Tensor, base: Optional[Tensor], grid: Tensor, order: int,
                mode: int, act: int, composite: Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tensor],
                bias: Optional[Tensor] = None) -> Tensor:
    """``x (N, in)`` → ``(N, out)`` through the C++ fused kernel (call only for plain eager CPU tensors of one
    float dtype with the extension loaded).

    Arguments:
        coef: ``(out, in, K)``.  scale, base: ``(out, in)`` (``base`` None or ``act == 0``: no base branch).
        grid: the basis' knot rows ``(in, G + 2k + 1)``.  order: ``k``.  mode: ``MODES[extrapolate]``.
        act: 0 none, 1 SiLU, 2 identity.
        composite: ``composite(x, coef, scale, base) -> (N, out)``, the same function without the bias in
            differentiable PyTorch ops (used for second derivatives).
        bias: ``(out,)`` added to the output, or None.
    """
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, coef, scale, base, bias))
    return _FusedLayer.apply(x, coef, scale, base, bias, grid.to(x.dtype), order, mode, act, composite, save)
