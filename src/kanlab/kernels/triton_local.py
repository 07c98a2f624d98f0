"""Triton kernels of the local-support contraction, for CUDA tensors (used by :mod:`kanlab.kernels.ops`).

``y[n, o] = Σ_{i, r} v[n, i, r] · scale[o, i] · coef[o, i, first[n, i] + r]`` and its gradients, with
``v (N, in, R)``, ``first (N, in)``, ``coef (out, in, K)``, ``scale (out, in)`` (see
:mod:`kanlab.kernels.torch_impl`, which defines the semantics):

* forward — one program per (block of samples, block of outputs); a loop over the input features gathers the
  ``R`` active coefficient rows per sample, so the work is ``N·in·R·out`` whatever the grid size;
* input gradient — ``g_v[n, i, r] = Σ_o g[n, o]·scale[o, i]·coef[o, i, first + r]``, one program per (block of
  samples, feature), reducing over blocks of outputs;
* coefficient gradient — every (sample, feature, r) adds ``v·g[n, :]`` into the unscaled accumulator row
  ``(:, i, first + r)`` with atomic adds (tiled over samples and outputs; no sort), then two O(params) tensor
  operations give ``g_coef = acc·scale`` and ``g_scale = Σ_j acc·coef``.

Triton is optional: :func:`available` says whether it is importable and a CUDA device is present.  The kernels
also run in Triton's interpreter (``TRITON_INTERPRET=1``) on CPU tensors, which is how the tests check them
on machines without a GPU.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor

__all__ = ["available", "interpreted", "local_forward", "local_backward", "DTYPES"]


@functools.lru_cache(maxsize=None)
def _triton():
    try:
        import triton  # noqa: PLC0415 - optional dependency
        import triton.language as tl  # noqa: PLC0415
    except Exception:  # not installed, or broken
        return None
    return triton, tl


def interpreted() -> bool:
    """Whether Triton runs in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


DTYPES = (torch.float32, torch.float64)


def available(device: torch.device | str | None = None) -> bool:
    """Whether the Triton kernels can run on ``device`` (CUDA; or any device under the interpreter), for
    ``float32`` / ``float64`` tensors (:data:`DTYPES`)."""
    if _triton() is None:
        return False
    if interpreted():
        return True
    return torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")


@functools.lru_cache(maxsize=None)
def _kernels():
    triton, tl = _triton()

    @triton.jit
    def forward_kernel(v_ptr, first_ptr, coef_ptr, scale_ptr, y_ptr, N, I, O, K,
                       R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
        pid_n = tl.program_id(0)
        pid_o = tl.program_id(1)
        n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
        mn = n < N
        mo = o < O
        m2 = mn[:, None] & mo[None, :]
        acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=y_ptr.dtype.element_ty)
        for i in range(0, I):
            f = tl.load(first_ptr + n * I + i, mask=mn, other=0)
            s = tl.load(scale_ptr + o * I + i, mask=mo, other=0.0)
            for r in tl.static_range(R):
                vr = tl.load(v_ptr + (n * I + i) * R + r, mask=mn, other=0.0)
                w = tl.load(coef_ptr + o[None, :] * (I * K) + i * K + (f[:, None] + r), mask=m2, other=0.0)
                acc += vr[:, None] * w * s[None, :]
        tl.store(y_ptr + n[:, None] * O + o[None, :], acc, mask=m2)

    @triton.jit
    def grad_v_kernel(g_ptr, first_ptr, coef_ptr, scale_ptr, gv_ptr, N, I, O, K,
                      R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
        pid_n = tl.program_id(0)
        i = tl.program_id(1)
        n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mn = n < N
        f = tl.load(first_ptr + n * I + i, mask=mn, other=0)
        for r in tl.static_range(R):
            acc = tl.zeros((BLOCK_N,), dtype=gv_ptr.dtype.element_ty)
            for o0 in range(0, O, BLOCK_O):
                o = o0 + tl.arange(0, BLOCK_O)
                mo = o < O
                m2 = mn[:, None] & mo[None, :]
                g = tl.load(g_ptr + n[:, None] * O + o[None, :], mask=m2, other=0.0)
                s = tl.load(scale_ptr + o * I + i, mask=mo, other=0.0)
                w = tl.load(coef_ptr + o[None, :] * (I * K) + i * K + (f[:, None] + r), mask=m2, other=0.0)
                acc += tl.sum(g * s[None, :] * w, axis=1)
            tl.store(gv_ptr + (n * I + i) * R + r, acc, mask=mn)

    @triton.jit
    def grad_w_kernel(g_ptr, v_ptr, first_ptr, acc_ptr, N, I, O, K,
                      R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
        pid_n = tl.program_id(0)
        i = tl.program_id(1)
        pid_o = tl.program_id(2)
        n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
        mn = n < N
        mo = o < O
        m2 = mn[:, None] & mo[None, :]
        f = tl.load(first_ptr + n * I + i, mask=mn, other=0)
        g = tl.load(g_ptr + n[:, None] * O + o[None, :], mask=m2, other=0.0)
        for r in tl.static_range(R):
            vr = tl.load(v_ptr + (n * I + i) * R + r, mask=mn, other=0.0)
            tl.atomic_add(acc_ptr + o[None, :] * (I * K) + i * K + (f[:, None] + r), vr[:, None] * g, mask=m2)

    return triton, forward_kernel, grad_v_kernel, grad_w_kernel


_BLOCK_N, _BLOCK_O = 32, 32


def _check(v: Tensor, first: Tensor, coef: Tensor, scale: Tensor) -> None:
    if v.dim() != 3 or first.shape != v.shape[:2] or coef.dim() != 3 or coef.shape[1] != v.shape[1]:
        raise ValueError(f"local contraction: bad shapes v {tuple(v.shape)}, first {tuple(first.shape)}, "
                         f"coef {tuple(coef.shape)}")
    if scale.shape != coef.shape[:2]:
        raise ValueError(f"local contraction: scale must be {tuple(coef.shape[:2])}, got {tuple(scale.shape)}")


def local_forward(v: Tensor, first: Tensor, coef: Tensor, scale: Tensor) -> Tensor:
    """``(N, out)``: see the module docstring."""
    _check(v, first, coef, scale)
    triton, forward_kernel, _, _ = _kernels()
    n, n_in, r = v.shape
    n_out, _, n_fun = coef.shape
    v, first, coef, scale = v.contiguous(), first.contiguous(), coef.contiguous(), scale.contiguous()
    y = torch.empty(n, n_out, dtype=v.dtype, device=v.device)
    if n == 0 or n_out == 0:
        return y.zero_()
    grid = (triton.cdiv(n, _BLOCK_N), triton.cdiv(n_out, _BLOCK_O))
    forward_kernel[grid](v, first, coef, scale, y, n, n_in, n_out, n_fun, R=r, BLOCK_N=_BLOCK_N, BLOCK_O=_BLOCK_O)
    return y


def local_backward(grad: Tensor, v: Tensor, first: Tensor, coef: Tensor, scale: Tensor, need_v: bool,
                   need_w: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``(g_v, g_coef, g_scale)`` for ``grad (N, out)``; those not needed are empty ``(0,)`` tensors."""
    _check(v, first, coef, scale)
    triton, _, grad_v_kernel, grad_w_kernel = _kernels()
    n, n_in, r = v.shape
    n_out, _, n_fun = coef.shape
    grad, v, first = grad.contiguous(), v.contiguous(), first.contiguous()
    coef, scale = coef.contiguous(), scale.contiguous()
    none = v.new_empty(0)
    g_v = g_coef = g_scale = none
    if need_v:
        g_v = torch.zeros_like(v)
        if n and n_out:
            grad_v_kernel[(triton.cdiv(n, _BLOCK_N), n_in)](grad, first, coef, scale, g_v, n, n_in, n_out, n_fun,
                                                            R=r, BLOCK_N=_BLOCK_N, BLOCK_O=_BLOCK_O)
    if need_w:
        acc = torch.zeros_like(coef)
        if n and n_out:
            grad_w_kernel[(triton.cdiv(n, _BLOCK_N), n_in, triton.cdiv(n_out, _BLOCK_O))](
                grad, v, first, acc, n, n_in, n_out, n_fun, R=r, BLOCK_N=_BLOCK_N, BLOCK_O=_BLOCK_O)
        g_coef = acc * scale[..., None]
        g_scale = (acc * coef).sum(-1)
    return g_v, g_coef, g_scale
