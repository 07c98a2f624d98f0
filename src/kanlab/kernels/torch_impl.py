"""Pure-PyTorch implementations of the kernel ops (the fallback when the C++ extension is unavailable).

They define the semantics the C++ kernels (``csrc/*.cpp``) reproduce, work on any device and floating
dtype, and are not differentiable themselves: autograd is attached one level up, in ``kanlab.kernels.ops``.

Notation: ``x (N, in)``; ``grid (in, M)`` knot rows, ``M = G + 2k + 1``; ``K = M - k - 1`` basis functions;
``R = k + 1`` local values ``v (N, in, R)`` starting at ``first (N, in)`` (int64, ``0 <= first <= K - R``);
``coef (out, in, K)``; ``scale (out, in)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["bspline_local", "bspline_dense", "bspline_dense_backward", "local_forward", "local_backward",
           "local_indices", "pack_weight", "pack_weight_backward"]


def _interval(x: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """Interval ``j`` with ``grid[i, j] <= x < grid[i, j+1]`` (right end closed on the last interval of
    positive length) and a validity mask (False outside the knot span or for NaN)."""
    m = grid.shape[1]
    j = torch.searchsorted(grid.contiguous(), x.t().contiguous(), right=True).t() - 1  # (N, in)
    steps = torch.arange(m - 1, device=grid.device)
    positive = grid[:, 1:] > grid[:, :-1]  # (in, M-1)
    last_nd = torch.where(positive, steps, torch.full_like(steps, -1)).amax(dim=1)  # (in,)
    at_end = x == grid[:, -1]
    j = torch.where(at_end, last_nd.expand_as(j), j)
    valid = (x >= grid[:, 0]) & (x <= grid[:, -1]) & (j >= 0)
    return j.clamp(0, m - 2), valid


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    pos = den > 0
    return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(num))


def bspline_local(x: Tensor, grid: Tensor, order: int, deriv: int) -> tuple[Tensor, Tensor]:
    """``deriv``-th derivative of the ``R = order + 1`` local basis values: ``(v (N, in, R), first (N, in))``."""
    n, n_in = x.shape
    m = grid.shape[1]
    k = order
    n_fun = m - k - 1
    grid = grid.to(x.dtype)
    j, valid = _interval(x, grid)
    rows = torch.arange(n_in, device=x.device)[None, :]

    def kt(offset: int) -> Tensor:  # knot t[j + offset], index clamped to the row
        return grid[rows, (j + offset).clamp(0, m - 1)]

    if deriv > k:
        vals = [torch.zeros_like(x) for _ in range(k + 1)]
    else:
        p = k - deriv
        vals = [torch.ones_like(x)]
        for r in range(1, p + 1):  # de Boor's triangle: functions j-r .. j of order r
            new = []
            saved = torch.zeros_like(x)
            for s in range(r):
                tr, tl = kt(s + 1), kt(s + 1 - r)
                temp = _safe_div(vals[s], tr - tl)
                new.append(saved + (tr - x) * temp)
                saved = (x - tl) * temp
            new.append(saved)
            vals = new
        for q in range(p + 1, k + 1):  # derivative rule, order q-1 -> q
            new = []
            for s in range(q + 1):
                left = _safe_div(vals[s - 1], kt(s) - kt(s - q)) if s >= 1 else torch.zeros_like(x)
                right = _safe_div(vals[s], kt(s + 1) - kt(s + 1 - q)) if s <= q - 1 else torch.zeros_like(x)
                new.append(q * (left - right))
            vals = new
    piece = torch.stack(vals, dim=-1)  # (N, in, R): functions j-k .. j
    piece = torch.where(valid[..., None], piece, torch.zeros_like(piece))
    f0 = j - k
    first = f0.clamp(0, n_fun - k - 1)
    first = torch.where(valid, first, torch.where(x > grid[:, -1], n_fun - k - 1, 0))
    src = first[..., None] + torch.arange(k + 1, device=x.device) - f0[..., None]  # slot in piece
    ok = (src >= 0) & (src <= k)
    v = torch.gather(piece, 2, src.clamp(0, k)) * ok.to(x.dtype)
    return v, first.to(torch.int64)


def local_indices(first: Tensor, order: int, n_fun: int) -> Tensor:
    """Flat column of every local value in the packed ``in·K`` axis: ``(N, in·R)`` int64."""
    n, n_in = first.shape
    base = (torch.arange(n_in, device=first.device) * n_fun)[None, :, None]
    return (base + first[..., None] + torch.arange(order + 1, device=first.device)).reshape(n, -1)


def bspline_dense(x: Tensor, act: Tensor | None, grid: Tensor, order: int) -> Tensor:
    """All basis values ``(N, in, K)``, with ``act`` appended as column ``K`` when given."""
    n, n_in = x.shape
    n_fun = grid.shape[1] - order - 1
    v, first = bspline_local(x, grid, order, 0)
    cols = n_fun + (act is not None)
    out = x.new_zeros(n, n_in, cols)
    idx = first[..., None] + torch.arange(order + 1, device=x.device)
    out.scatter_(2, idx, v)
    if act is not None:
        out[..., n_fun] = act
    return out


def bspline_dense_backward(grad: Tensor, x: Tensor, grid: Tensor, order: int) -> Tensor:
    """``gx[n, i] = Σ_r grad[n, i, first + r] · B'_{first + r}(x[n, i])`` for ``grad (N, in, >= K)``."""
    dv, first = bspline_local(x, grid, order, 1)
    idx = first[..., None] + torch.arange(order + 1, device=x.device)
    return (torch.gather(grad, 2, idx) * dv).sum(-1)


def local_forward(v: Tensor, first: Tensor, coef: Tensor, scale: Tensor) -> Tensor:
    """``y[n, o] = Σ_{i, r} v[n, i, r] · scale[o, i] · coef[o, i, first[n, i] + r]``: ``(N, out)``."""
    n, n_in, r = v.shape
    n_out, _, n_fun = coef.shape
    table = (coef * scale[..., None]).permute(1, 2, 0).reshape(n_in * n_fun, n_out)
    idx = local_indices(first, r - 1, n_fun)
    return torch.nn.functional.embedding_bag(idx, table, per_sample_weights=v.reshape(n, -1), mode="sum")


def local_backward(grad: Tensor, v: Tensor, first: Tensor, coef: Tensor, scale: Tensor, need_v: bool,
                   need_w: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`local_forward` for the output gradient ``grad (N, out)``:
    ``(g_v (N, in, R), g_coef (out, in, K), g_scale (out, in))``; those not needed are empty ``(0,)``."""
    n, n_in, r = v.shape
    n_out, _, n_fun = coef.shape
    idx = local_indices(first, r - 1, n_fun)
    g_v = g_coef = g_scale = v.new_empty(0)
    if need_v:
        weight = (coef * scale[..., None]).reshape(n_out, n_in * n_fun)
        g_v = torch.gather(grad @ weight, 1, idx).reshape(n, n_in, r)
    if need_w:
        dense = v.new_zeros(n, n_in * n_fun).scatter_(1, idx, v.reshape(n, -1))
        g_w = (grad.t() @ dense).reshape(n_out, n_in, n_fun)
        g_coef = g_w * scale[..., None]
        g_scale = (g_w * coef).sum(-1)
    return g_v, g_coef, g_scale


def pack_weight(coef: Tensor, scale: Tensor, base: Tensor) -> Tensor:
    """The dense path's packed weight ``(out, in, K + 1)``: ``coef · scale`` with ``base`` as the last column."""
    return torch.cat([coef * scale[..., None], base[..., None]], dim=-1)


def pack_weight_backward(gw: Tensor, coef: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`pack_weight` for ``gw (out, in, K + 1)``: ``(g_coef, g_scale, g_base)``."""
    g = gw[..., :-1]
    return g * scale[..., None], (g * coef).sum(-1), gw[..., -1].contiguous()
