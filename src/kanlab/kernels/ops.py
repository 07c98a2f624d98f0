"""The kernel ops as ``torch.library.custom_op`` s: autograd to any order, fake tensors for ``torch.compile``.

Each op runs the C++ kernel (``torch.ops.kanlab_cpp``, see :mod:`kanlab.kernels.extension`) for float32 /
float64 CPU tensors when the extension is available, the local contraction the Triton kernels
(:mod:`kanlab.kernels.triton_local`) for CUDA tensors when Triton is installed, and the pure-PyTorch
implementation (:mod:`kanlab.kernels.torch_impl`) otherwise; all compute the same values.

* ``kanlab::bspline_local(x, grid, order, deriv) -> (v (N, in, k+1), first (N, in))`` — the ``deriv``-th
  derivative of the ``k+1`` non-zero B-spline values; ``d/dx`` is ``bspline_local(..., deriv + 1)``, so
  derivatives of every order exist (PINN losses, ``gradgradcheck``).
* ``kanlab::bspline_dense(x, act, grid, order) -> (N, in, K [+1])`` — all basis values, computing only the
  ``k+1`` non-zero ones, with the base activation ``act`` appended as an extra column (the packed operand of
  the dense path's single GEMM).
* ``kanlab::local_forward(v, first, coef, scale) -> (N, out)`` — the local-support contraction
  ``y[n, o] = Σ_{i, r} v[n, i, r] · scale[o, i] · coef[o, i, first + r]``; its backward
  (``kanlab::local_backward``) computes the gradients of ``v``, ``coef`` and ``scale`` in one pass, the
  coefficient gradient accumulated per feature (no global sort, no atomics).

In eager training steps whose ``v`` needs no gradient (first layers: inputs that are data) the contraction runs
``kanlab_cpp::local_forward_lists`` / ``local_backward_lists`` instead: the forward sorts each feature's
samples by knot interval (the order both kernels sweep in) and keeps those lists in place of ``v`` and
``first`` (the same bytes), so the backward need not sort again.  Inputs inside the grid range skip ``v`` and
``first`` altogether: ``kanlab_cpp::local_forward_inputs`` evaluates each feature's basis values straight into
its sorted list.

Backward functions run the fused kernels when autograd is not recording (plain ``.backward()``); under
``create_graph=True`` they switch to a differentiable composite of PyTorch ops and these ops, whose cost grows
with the grid size like the dense path (documented in :mod:`kanlab.kernels`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import torch_impl, triton_local
from .extension import load_extension

__all__ = ["bspline_local", "bspline_dense", "local_forward", "local_backward", "uses_extension", "uses_triton",
           "local_values", "dense_values", "contract_local", "contract_local_inputs", "contracts_inputs",
           "pack_weight", "packed_weight"]

_CPP_DTYPES = (torch.float32, torch.float64)
_CPP_MAX_ORDER = 15


def uses_extension(x: Tensor, order: int = 3) -> bool:
    """Whether the ops run the C++ kernel for tensors like ``x``."""
    return (x.device.type == "cpu" and x.dtype in _CPP_DTYPES and order <= _CPP_MAX_ORDER
            and load_extension())


def uses_triton(x: Tensor) -> bool:
    """Whether the local contraction runs the Triton kernels for tensors like ``x`` (CUDA float32/float64 with
    Triton installed; see :mod:`kanlab.kernels.triton_local`)."""
    return x.device.type == "cuda" and x.dtype in triton_local.DTYPES and triton_local.available(x.device)


def _window(first: Tensor, order: int) -> Tensor:
    return first[..., None] + torch.arange(order + 1, device=first.device)


# ---- bspline_local -------------------------------------------------------------------------------------
@torch.library.custom_op("kanlab::bspline_local", mutates_args=())
def bspline_local(x: Tensor, grid: Tensor, order: int, deriv: int) -> tuple[Tensor, Tensor]:
    """``x (N, in)``, ``grid (in, M)`` → ``(v (N, in, order+1), first (N, in) int64)``."""
    grid = grid.to(x.dtype)
    if uses_extension(x, order):
        return torch.ops.kanlab_cpp.bspline_local(x, grid, order, deriv)
    return torch_impl.bspline_local(x, grid, order, deriv)


@bspline_local.register_fake
def _(x, grid, order, deriv):
    return (x.new_empty(x.shape[0], x.shape[1], order + 1),
            x.new_empty(x.shape[0], x.shape[1], dtype=torch.int64))


def _bspline_local_setup(ctx, inputs, output):
    x, grid, order, deriv = inputs
    ctx.save_for_backward(x, grid)
    ctx.order, ctx.deriv = order, deriv


def _bspline_local_backward(ctx, grad_v, grad_first):
    x, grid = ctx.saved_tensors
    dv, _ = local_values(x, grid, ctx.order, ctx.deriv + 1)  # differentiable: any order
    return (grad_v * dv).sum(-1), None, None, None


bspline_local.register_autograd(_bspline_local_backward, setup_context=_bspline_local_setup)


# ---- bspline_dense -------------------------------------------------------------------------------------
@torch.library.custom_op("kanlab::bspline_dense", mutates_args=())
def bspline_dense(x: Tensor, act: Optional[Tensor], grid: Tensor, order: int) -> Tensor:
    """``x (N, in)`` → ``(N, in, K)``, or ``(N, in, K + 1)`` with ``act (N, in)`` as the last column."""
    grid = grid.to(x.dtype)
    if uses_extension(x, order):
        return torch.ops.kanlab_cpp.bspline_dense(x, act, grid, order)
    return torch_impl.bspline_dense(x, act, grid, order)


@bspline_dense.register_fake
def _(x, act, grid, order):
    return x.new_empty(x.shape[0], x.shape[1], grid.shape[1] - order - 1 + (act is not None))


@torch.library.custom_op("kanlab::bspline_dense_backward", mutates_args=())
def bspline_dense_backward(grad: Tensor, x: Tensor, grid: Tensor, order: int) -> Tensor:
    """``Σ_r grad[n, i, first + r] · B'_{first + r}(x[n, i])`` for ``grad (N, in, >= K)`` → ``(N, in)``; not
    differentiable itself (``bspline_dense``'s backward avoids it under ``create_graph``)."""
    grid = grid.to(x.dtype)
    if uses_extension(x, order):
        return torch.ops.kanlab_cpp.bspline_dense_backward(grad, x, grid, order)
    return torch_impl.bspline_dense_backward(grad, x, grid, order)


@bspline_dense_backward.register_fake
def _(grad, x, grid, order):
    return torch.empty_like(x)


def _bspline_dense_setup(ctx, inputs, output):
    x, act, grid, order = inputs
    ctx.save_for_backward(x, grid)
    ctx.order, ctx.has_act = order, act is not None


def _bspline_dense_backward(ctx, grad):
    x, grid = ctx.saved_tensors
    n_fun = grid.shape[1] - ctx.order - 1
    g_act = grad[..., n_fun] if ctx.has_act else None
    g_x = None
    if ctx.needs_input_grad[0]:
        if torch.is_grad_enabled():  # create_graph: stay differentiable
            dv, first = local_values(x, grid, ctx.order, 1)
            g_x = (torch.gather(grad, 2, _window(first, ctx.order)) * dv).sum(-1)
        else:
            g_x = _direct("bspline_dense_backward", bspline_dense_backward, x, ctx.order, grad)(
                grad.contiguous(), x, grid, ctx.order)
    return g_x, g_act, None, None


bspline_dense.register_autograd(_bspline_dense_backward, setup_context=_bspline_dense_setup)


# ---- pack_weight ---------------------------------------------------------------------------------------
@torch.library.custom_op("kanlab::pack_weight", mutates_args=())
def pack_weight(coef: Tensor, scale: Tensor, base: Tensor) -> Tensor:
    """``coef (out, in, K)``, ``scale``, ``base (out, in)`` → the dense path's packed weight ``(out, in, K + 1)``:
    ``coef · scale`` with ``base`` appended as the last column, in one pass."""
    if uses_extension(coef):
        return torch.ops.kanlab_cpp.pack_weight(coef, scale, base)
    return torch_impl.pack_weight(coef, scale, base)


@pack_weight.register_fake
def _(coef, scale, base):
    return coef.new_empty(coef.shape[0], coef.shape[1], coef.shape[2] + 1)


@torch.library.custom_op("kanlab::pack_weight_backward", mutates_args=())
def pack_weight_backward(gw: Tensor, coef: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`pack_weight`: ``(g_coef, g_scale, g_base)``; not differentiable itself."""
    if uses_extension(coef):
        return torch.ops.kanlab_cpp.pack_weight_backward(gw, coef, scale)
    return torch_impl.pack_weight_backward(gw, coef, scale)


@pack_weight_backward.register_fake
def _(gw, coef, scale):
    return torch.empty_like(coef), torch.empty_like(scale), torch.empty_like(scale)


def _pack_weight_setup(ctx, inputs, output):
    coef, scale, base = inputs
    ctx.save_for_backward(coef, scale)


def _pack_weight_backward(ctx, gw):
    coef, scale = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph: stay differentiable
        g_coef, g_scale, g_base = torch_impl.pack_weight_backward(gw, coef, scale)
    else:
        g_coef, g_scale, g_base = _direct("pack_weight_backward", pack_weight_backward, coef, 3, gw)(gw, coef, scale)
    return g_coef, g_scale, g_base


pack_weight.register_autograd(_pack_weight_backward, setup_context=_pack_weight_setup)


# ---- local contraction ---------------------------------------------------------------------------------
@torch.library.custom_op("kanlab::local_forward", mutates_args=())
def local_forward(v: Tensor, first: Tensor, coef: Tensor, scale: Tensor) -> Tensor:
    """``v (N, in, R)``, ``first (N, in)``, ``coef (out, in, K)``, ``scale (out, in)`` → ``(N, out)``."""
    if uses_extension(v, v.shape[-1] - 1):
        return torch.ops.kanlab_cpp.local_forward(v, first, coef, scale)
    if uses_triton(v):
        return triton_local.local_forward(v, first, coef, scale)
    return torch_impl.local_forward(v, first, coef, scale)


@local_forward.register_fake
def _(v, first, coef, scale):
    return v.new_empty(v.shape[0], coef.shape[0])


@torch.library.custom_op("kanlab::local_backward", mutates_args=())
def local_backward(grad: Tensor, v: Tensor, first: Tensor, coef: Tensor, scale: Tensor, need_v: bool,
                   need_w: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``local_forward`` for ``grad (N, out)``: ``(g_v, g_coef, g_scale)``; those not needed are
    empty ``(0,)`` tensors.  Not differentiable itself (``local_forward``'s backward avoids it under
    ``create_graph``)."""
    if uses_extension(v, v.shape[-1] - 1):
        return torch.ops.kanlab_cpp.local_backward(grad, v, first, coef, scale, need_v, need_w)
    if uses_triton(v):
        return triton_local.local_backward(grad, v, first, coef, scale, need_v, need_w)
    return torch_impl.local_backward(grad, v, first, coef, scale, need_v, need_w)


@local_backward.register_fake
def _(grad, v, first, coef, scale, need_v, need_w):
    none = v.new_empty(0)
    return (torch.empty_like(v) if need_v else none, torch.empty_like(coef) if need_w else none,
            torch.empty_like(scale) if need_w else none)


def _local_forward_setup(ctx, inputs, output):
    v, first, coef, scale = inputs
    ctx.save_for_backward(v, first, coef, scale)


def _local_backward_composite(grad, v, first, coef, scale):
    """Differentiable gradients (used under ``create_graph``): the dense formulation, O(G) memory."""
    n, n_in, r = v.shape
    n_out, _, n_fun = coef.shape
    idx = torch_impl.local_indices(first, r - 1, n_fun)
    weight = (coef * scale[..., None]).reshape(n_out, n_in * n_fun)
    g_v = torch.gather(grad @ weight, 1, idx).reshape(n, n_in, r)
    dense = v.new_zeros(n, n_in * n_fun).scatter(1, idx, v.reshape(n, -1))
    g_w = (grad.t() @ dense).reshape(n_out, n_in, n_fun)
    return g_v, g_w * scale[..., None], (g_w * coef).sum(-1)


def _local_forward_backward(ctx, grad):
    v, first, coef, scale = ctx.saved_tensors
    need_v = ctx.needs_input_grad[0]
    need_w = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
    if not (need_v or need_w):
        return None, None, None, None
    if torch.is_grad_enabled():
        g_v, g_coef, g_scale = _local_backward_composite(grad, v, first, coef, scale)
    else:
        fused = _direct("local_backward", local_backward, v, v.shape[-1] - 1, grad)
        g_v, g_coef, g_scale = fused(grad.contiguous(), v, first, coef, scale, need_v, need_w)
    return (g_v if need_v else None, None, g_coef if ctx.needs_input_grad[2] else None,
            g_scale if ctx.needs_input_grad[3] else None)


local_forward.register_autograd(_local_forward_backward, setup_context=_local_forward_setup)


# ---- eager entry points --------------------------------------------------------------------------------
# The custom ops above are what torch.compile, export and functorch see.  In plain eager mode their Python
# dispatch costs tens of microseconds per call, which dominates small layers (a [2, 5, 1] KAN on 1000 points
# spends more time there than in the kernels), so the functions below call the C++ kernels through
# torch.autograd.Function instead, with the same backward formulas (and the same composite under
# create_graph).  They fall back to the custom ops for anything but ordinary CPU tensors in eager mode.
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _plain(*tensors: Optional[Tensor]) -> bool:
    if torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t is None:
            continue
        if (type(t) not in _PLAIN_TYPES or t.device.type != "cpu"
                or torch._C._functorch.is_functorch_wrapped_tensor(t)):
            return False
    return True


def _direct(name: str, custom_op, like: Tensor, order: int, *others: Tensor):
    """``torch.ops.kanlab_cpp.<name>`` itself for plain eager CPU tensors with the extension, else the custom
    op (which dispatches the same way, visibly to compile/export)."""
    if _plain(like, *others) and uses_extension(like, order):
        return getattr(torch.ops.kanlab_cpp, name)
    return custom_op


class _LocalValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, order, deriv):
        v, first = torch.ops.kanlab_cpp.bspline_local(x, grid, order, deriv)
        ctx.mark_non_differentiable(first)
        _bspline_local_setup(ctx, (x, grid, order, deriv), (v, first))
        return v, first

    @staticmethod
    def backward(ctx, grad_v, grad_first):
        return _bspline_local_backward(ctx, grad_v, grad_first)


class _DenseValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, act, grid, order):
        _bspline_dense_setup(ctx, (x, act, grid, order), None)
        return torch.ops.kanlab_cpp.bspline_dense(x, act, grid, order)

    @staticmethod
    def backward(ctx, grad):
        return _bspline_dense_backward(ctx, grad)


class _LocalContraction(torch.autograd.Function):
    """The eager local contraction.  In a training step whose ``v`` needs no gradient (a first layer, or inputs
    that are data) the forward also sorts each feature's samples by knot interval and keeps those lists instead
    of ``v`` and ``first``: the backward's weight gradients need nothing else, so it need not sort again."""

    @staticmethod
    def forward(ctx, v, first, coef, scale, keep_lists):
        ctx.lists = keep_lists
        if keep_lists:
            y, lists = torch.ops.kanlab_cpp.local_forward_lists(v, first, coef, scale)
            ctx.save_for_backward(lists, coef, scale)
            ctx.shape, ctx.dtype = v.shape, v.dtype
            return y
        _local_forward_setup(ctx, (v, first, coef, scale), None)
        return torch.ops.kanlab_cpp.local_forward(v, first, coef, scale)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.lists:
            return (*_local_forward_backward(ctx, grad), None)
        g_coef, g_scale = _weight_grads_from_lists(ctx, grad, ctx.needs_input_grad[2], ctx.needs_input_grad[3])
        return None, None, g_coef, g_scale, None


class _InputContraction(torch.autograd.Function):
    """The eager local contraction of a training step straight from inputs that need no gradient (a first layer
    on data inside the grid range): evaluation and the per-feature sort in one C++ pass
    (``kanlab_cpp::local_forward_inputs``), neither ``v`` nor ``first`` materialised; the backward is
    :class:`_LocalContraction`'s from the lists."""

    @staticmethod
    def forward(ctx, x, grid, order, coef, scale):
        y, lists = torch.ops.kanlab_cpp.local_forward_inputs(x, grid, order, coef, scale)
        ctx.save_for_backward(lists, coef, scale)
        ctx.shape, ctx.dtype = (x.shape[0], x.shape[1], order + 1), x.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        g_coef, g_scale = _weight_grads_from_lists(ctx, grad, ctx.needs_input_grad[3], ctx.needs_input_grad[4])
        return None, None, None, g_coef, g_scale


def _weight_grads_from_lists(ctx, grad: Tensor, need_coef: bool, need_scale: bool):
    """``(g_coef, g_scale)`` (None where not needed) of a contraction whose ``ctx`` saved ``(lists, coef,
    scale)``, ``shape = (N, in, R)`` and ``dtype``."""
    lists, coef, scale = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph: the differentiable composite, from v and first unpacked
        v, first = _unpack_lists(lists, ctx.shape, ctx.dtype)
        _, g_coef, g_scale = _local_backward_composite(grad, v, first, coef, scale)
    else:
        _, g_coef, g_scale = torch.ops.kanlab_cpp.local_backward_lists(grad.contiguous(), lists, coef, scale,
                                                                     ctx.shape[2], False, True)
    return g_coef if need_coef else None, g_scale if need_scale else None


def _unpack_lists(lists: Tensor, shape: torch.Size, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``v (N, in, R)`` and ``first (N, in)`` back from ``local_forward_lists``' byte buffer: per feature the
    values ``(in, N, R)``, then the sample indices and first indices ``(in, N)`` int32, in sorted order."""
    n, n_in, r = shape
    v_bytes = n * n_in * r * torch.empty((), dtype=dtype).element_size()
    i_bytes = n * n_in * 4
    values = lists[:v_bytes].view(dtype).view(n_in, n, r)
    sample = lists[v_bytes:v_bytes + i_bytes].view(torch.int32).view(n_in, n).long()
    start = lists[v_bytes + i_bytes:].view(torch.int32).view(n_in, n).long()
    v = values.new_empty(n_in, n, r).scatter_(1, sample[..., None].expand(n_in, n, r), values)
    first = start.new_empty(n_in, n).scatter_(1, sample, start)
    return v.transpose(0, 1), first.t()


def local_values(x: Tensor, grid: Tensor, order: int, deriv: int) -> tuple[Tensor, Tensor]:
    """:func:`bspline_local` (same values and derivatives), without the custom-op overhead in eager mode."""
    grid = grid.to(x.dtype)
    if _plain(x, grid) and uses_extension(x, order):
        return _LocalValues.apply(x, grid, order, deriv)
    return bspline_local(x, grid, order, deriv)


def dense_values(x: Tensor, act: Optional[Tensor], grid: Tensor, order: int) -> Tensor:
    """:func:`bspline_dense`, without the custom-op overhead in eager mode."""
    grid = grid.to(x.dtype)
    if _plain(x, act, grid) and uses_extension(x, order):
        return _DenseValues.apply(x, act, grid, order)
    return bspline_dense(x, act, grid, order)


def contract_local(v: Tensor, first: Tensor, coef: Tensor, scale: Tensor) -> Tensor:
    """:func:`local_forward`, without the custom-op overhead in eager mode."""
    if _plain(v, first, coef, scale) and uses_extension(v, v.shape[-1] - 1) and coef.dtype == v.dtype:
        keep_lists = torch.is_grad_enabled() and not v.requires_grad and (coef.requires_grad or scale.requires_grad)
        return _LocalContraction.apply(v, first, coef, scale, keep_lists)
    return local_forward(v, first, coef, scale)


def contracts_inputs(x: Tensor, coef: Tensor, scale: Tensor, order: int) -> bool:
    """Whether :func:`contract_local_inputs` applies: an eager training step (grad enabled, a parameter needs a
    gradient, ``x`` does not) on plain CPU tensors of one dtype that the C++ kernels take."""
    return (torch.is_grad_enabled() and not x.requires_grad and (coef.requires_grad or scale.requires_grad)
            and x.dim() == 2 and coef.dtype == scale.dtype == x.dtype and _plain(x, coef, scale)
            and uses_extension(x, order))


def contract_local_inputs(x: Tensor, grid: Tensor, order: int, coef: Tensor, scale: Tensor) -> Tensor:
    """``contract_local(*local_values(x, grid, order, 0), coef, scale)`` in one C++ pass for inputs that need no
    gradient (call only where :func:`contracts_inputs` holds)."""
    return _InputContraction.apply(x, grid.to(x.dtype), order, coef, scale)


class _PackWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coef, scale, base):
        _pack_weight_setup(ctx, (coef, scale, base), None)
        return torch.ops.kanlab_cpp.pack_weight(coef, scale, base)

    @staticmethod
    def backward(ctx, gw):
        return _pack_weight_backward(ctx, gw)


def packed_weight(coef: Tensor, scale: Tensor, base: Tensor) -> Tensor:
    """:func:`pack_weight`, without the custom-op overhead in eager mode."""
    if _plain(coef, scale, base) and uses_extension(coef) and scale.dtype == base.dtype == coef.dtype:
        return _PackWeight.apply(coef, scale, base)
    return pack_weight(coef, scale, base)
