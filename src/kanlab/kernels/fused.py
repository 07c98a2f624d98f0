"""The ``"fused"`` path's autograd wrapper: a whole small B-spline layer in one C++ call per direction.

``csrc/kan_fused.cpp`` computes ``Σ_i scale·Σ_r coef·B(x_i) + base·act(x_i)`` with the extrapolation rule
folded in, and all its first derivatives, in one pass over the samples.  For small layers (where launching the
half-dozen ops of the other paths costs more than the arithmetic) this is the fastest way through a training
step.  Second derivatives (``create_graph=True``: PINN losses, ``gradgradcheck``) re-run a differentiable
composite (the ``"dense"`` path) inside the backward, so every order of differentiation works.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["fused_layer", "MODES"]

MODES = {"clamp": 0, "linear": 1}  # BSpline.extrapolate → the kernel's mode


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, scale, base, grid, order, mode, act, composite, save):
        y, *basis = torch.ops.kanlab_cpp.fused_forward(x, grid, coef, scale, base, order, mode, act, save)
        ctx.save_for_backward(x, coef, scale, base)
        ctx.basis = basis if save else None  # the basis windows and activation, reused by the backward
        ctx.grid, ctx.order, ctx.mode, ctx.act, ctx.composite = grid, order, mode, act, composite
        return y

    @staticmethod
    def backward(ctx, grad):
        x, coef, scale, base = ctx.saved_tensors
        need = ctx.needs_input_grad[:4]
        if not any(need):
            return (None,) * 10
        if torch.is_grad_enabled():  # create_graph: differentiable gradients from the composite
            inputs = [t for t, n in zip((x, coef, scale, base), need) if n]
            with torch.enable_grad():
                out = ctx.composite(x, coef, scale, base)
            grads = iter(torch.autograd.grad(out, inputs, grad, create_graph=True, allow_unused=True))
            g = [next(grads) if n else None for n in need]
        else:
            need_w = need[1] or need[2] or need[3]
            basis = ctx.basis or (None,) * 5
            gx, gc, gs, gb = torch.ops.kanlab_cpp.fused_backward(grad.contiguous(), x, ctx.grid, coef, scale, base,
                                                                 ctx.order, ctx.mode, ctx.act, need[0], need_w, *basis)
            g = [gx if need[0] else None, gc if need[1] else None, gs if need[2] else None,
                 gb if need[3] else None]
        return (*g, None, None, None, None, None, None)


def fused_layer(x: Tensor, coef: Tensor, scale: Tensor, base: Optional[Tensor], grid: Tensor, order: int,
                mode: int, act: int, composite: Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tensor]) -> Tensor:
    """``x (N, in)`` → ``(N, out)`` through the C++ fused kernel (call only for plain eager CPU tensors of one
    float dtype with the extension loaded).

    Arguments:
        coef: ``(out, in, K)``.  scale, base: ``(out, in)`` (``base`` None or ``act == 0``: no base branch).
        grid: the basis' knot rows ``(in, G + 2k + 1)``.  order: ``k``.  mode: ``MODES[extrapolate]``.
        act: 0 none, 1 SiLU, 2 identity.
        composite: ``composite(x, coef, scale, base) -> (N, out)``, the same function in differentiable
            PyTorch ops (used for second derivatives).
    """
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, coef, scale, base))
    return _FusedLayer.apply(x, coef, scale, base, grid.to(x.dtype), order, mode, act, composite, save)
