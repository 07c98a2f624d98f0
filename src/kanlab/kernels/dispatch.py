"""One function for a KAN layer's numeric forward, ``kan_forward``, and the switch that picks its path.

Paths (a registry, see :func:`register_kernel`):

* ``"reference"`` — the basis' dense values ``(N, in, K)`` contracted by one GEMM, plus the base branch
  (the efficient-kan formulation).  Works for every basis; what ``torch.export``/ONNX export and tracing use.
* ``"dense"`` — B-spline only: one packed GEMM over ``in·(K+1)`` columns, the base branch folded in as an extra
  column; the packed operand is written by a kernel that computes only the ``k+1`` non-zero basis values.
  Best for small grids.
* ``"fused"`` — B-spline only (``extrapolate`` ``"linear"`` or ``"clamp"``): the whole layer — basis, base
  branch (SiLU; other activations fall back to ``"dense"``) and contraction — in one C++ call per direction
  (:mod:`kanlab.kernels.fused`).  Best for small layers, whose time goes to launching ops.
* ``"local"`` — B-spline only: the local-support contraction (``k+1`` gathered coefficients per edge and
  sample), whose time and activation memory do not grow with the grid size; the base branch is one GEMM.

``"auto"`` (the default) asks :func:`choose_kernel`, a small cost model over ``(batch, in, out, G, k, device)``.
The choice can be overridden per layer (``layer.kernel = "local"``) or for a block of code
(``with kanlab.kernels.use_kernel("dense"): ...``); a layer's own setting wins over the context manager.

All paths compute the same function (tests compare them to ``"reference"`` in float64 to 1e-10) and support
any order of differentiation.  Under ``create_graph=True`` (PINN losses, double backward) the backward of
``"local"`` uses a composite whose cost grows with G like ``"dense"``.  Non-uniform (adaptive) grids are
exact on every path: knot intervals are found per feature by a guess-and-check (uniform rows) or binary
search.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from . import ops
from .dense import contract_dense
from .fused import MODES, fused_layer

__all__ = ["kan_forward", "choose_kernel", "use_kernel", "register_kernel", "list_kernels", "KernelPath"]


@dataclass(frozen=True)
class KernelPath:
    """A way to compute ``Σ_i φ_ji(x_i)``: ``run(x (N, in), basis, coef, scale, base_weight, act) -> (N, out)``
    where ``scale`` (out, in) already includes the mask and ``base_weight`` (out, in) is None without a base
    branch; ``supports(basis, x)`` says whether it applies.  A path with ``adds_bias`` also takes
    ``bias=`` (``(out,)`` or None) and adds it itself."""

    name: str
    run: Callable[..., Tensor]
    supports: Callable[[object, Tensor], bool]
    doc: str
    adds_bias: bool = False


_KERNELS: dict[str, KernelPath] = {}
# The use_kernel() override: a plain module global (not a ContextVar) so torch.compile can trace and guard it.
_override: list[str | None] = [None]


def register_kernel(name: str, supports: Callable[[object, Tensor], bool], doc: str = "", *,
                    adds_bias: bool = False):
    """Decorator registering a path under ``name`` (see :class:`KernelPath`)."""

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        _KERNELS[name] = KernelPath(name, fn, supports, doc, adds_bias)
        return fn

    return deco


def list_kernels() -> list[str]:
    """Names accepted by ``KANLinear.kernel`` and :func:`use_kernel` (plus ``"auto"``)."""
    return sorted(_KERNELS)


def _check_name(name: str) -> str:
    if name != "auto" and name not in _KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose 'auto' or one of: {', '.join(list_kernels())}")
    return name


@contextlib.contextmanager
def use_kernel(name: str) -> Iterator[None]:
    """Within the block, layers whose ``kernel`` is ``"auto"`` use path ``name`` (``"auto"`` restores the
    cost model)."""
    previous = _override[0]
    _override[0] = _check_name(name)
    try:
        yield
    finally:
        _override[0] = previous


def _is_spline(basis, x: Tensor) -> bool:
    from ..basis.bspline import BSpline

    return isinstance(basis, BSpline) and x.is_floating_point()


def _always(basis, x: Tensor) -> bool:
    return True


# ---- the paths -----------------------------------------------------------------------------------------
@register_kernel("reference", _always, "dense basis values + one GEMM + base-branch GEMM (any basis)")
def _reference(x, basis, coef, scale, base_weight, act) -> Tensor:
    out = contract_dense(basis(x), coef * scale[..., None])
    if base_weight is not None:
        out = out + F.linear(act(x), base_weight)
    return out


def _basis_inputs(x: Tensor, basis) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """``(xe, tangent)``: the inputs at which the B-spline is evaluated (clamped to the grid range, see
    ``BSpline._extrapolated``) and its linear-extrapolation term ``(below, above, slopes)`` (see
    ``BSpline._tangent_term``), None when it vanishes.  Outside compilation/export (where the check would be
    data-dependent) inputs with nothing strictly outside the range skip both: the clamp is then the identity
    (same values, same gradient) and the tangent term and all its gradients are zero."""
    if basis.extrapolate == "zero":
        return x, None
    if not (_compiling() or _exporting()) and not basis._outside(x):
        return x, None
    tangent = basis._tangent_term(x) if basis.extrapolate == "linear" and basis.order > 0 else None
    return basis._extrapolated(x), tangent


@register_kernel("dense", _is_spline, "packed GEMM over in·(K+1) columns, base branch folded in (B-spline)",
                 adds_bias=True)
def _dense(x, basis, coef, scale, base_weight, act, bias=None) -> Tensor:
    n = x.shape[0]
    xe, tangent = _basis_inputs(x, basis)
    if base_weight is not None:
        packed = ops.dense_values(xe, act(x), basis.grid, basis.order)
        weight = ops.packed_weight(coef, scale, base_weight)  # (out, in, K + 1), base folded in
    else:
        packed = ops.dense_values(xe, None, basis.grid, basis.order)
        weight = coef * scale[..., None]
    if tangent is not None:  # outside the range: add distance × end slope to the packed basis values
        below, above, slopes = tangent
        extra = below[..., None] * slopes[0] + above[..., None] * slopes[1]  # (N, in, K)
        packed = packed + F.pad(extra, (0, packed.shape[2] - extra.shape[2]))
    packed, weight = packed.reshape(n, packed.shape[1] * packed.shape[2]), weight.reshape(weight.shape[0], -1).t()
    return packed @ weight if bias is None else torch.addmm(bias, packed, weight)  # bias in the GEMM's output


@register_kernel("local", _is_spline, "local-support gather of k+1 coefficients per edge (B-spline)",
                 adds_bias=True)
def _local(x, basis, coef, scale, base_weight, act, bias=None) -> Tensor:
    xe, tangent = _basis_inputs(x, basis)
    if tangent is None and ops.contracts_inputs(xe, coef, scale, basis.order):  # data inputs: evaluate + sort once
        out = ops.contract_local_inputs(xe, basis.grid, basis.order, coef, scale)
    else:
        v, first = ops.local_values(xe, basis.grid, basis.order, 0)
        if tangent is not None:  # outside the range the window sits at the end: add distance × the end slopes
            v = v + basis._window_tangent(*tangent, first)
        out = ops.contract_local(v, first, coef, scale)
    # out is a fresh tensor that nothing saves: updated in place
    if base_weight is not None:  # (a new (N, out) tensor per op costs its page faults: as much as the op)
        out = out.addmm_(act(x), base_weight.t())
    if bias is not None:
        out = out.add_(bias)
    return out


_FUSED_ACTS = {F.silu: 1}  # base activations the fused kernel computes itself (others: the "dense" path)


def _fusable(basis, x: Tensor) -> bool:
    return _is_spline(basis, x) and basis.extrapolate in MODES


def _fused_act_kind(basis, x: Tensor, tensors, act) -> int | None:
    """The fused kernel's activation code (0 without a base branch) when it can run ``tensors = (coef, scale,
    base or None, bias or None)``: plain eager CPU tensors of ``x``'s dtype with the extension loaded, not
    exporting, a base activation it computes itself; else None (the ``"dense"`` path computes the same)."""
    act_kind = 0 if tensors[2] is None else _FUSED_ACTS.get(act)
    if (act_kind is None or any(t is not None and t.dtype != x.dtype for t in tensors)
            or not ops._plain(x, *tensors) or not ops.uses_extension(x, basis.order) or _exporting()):
        return None
    return act_kind


@register_kernel("fused", _fusable, "one C++ call per layer and direction: basis, base branch, contraction and "
                 "bias together (small B-spline layers)", adds_bias=True)
def _fused(x, basis, coef, scale, base_weight, act, bias=None) -> Tensor:
    act_kind = _fused_act_kind(basis, x, (coef, scale, base_weight, bias), act)
    if act_kind is None:
        return _dense(x, basis, coef, scale, base_weight, act, bias)

    def composite(x_, coef_, scale_, base_):
        return _dense(x_, basis, coef_, scale_, base_, act)

    return fused_layer(x, coef, scale, base_weight, basis.grid, basis.order, MODES[basis.extrapolate], act_kind,
                       composite, bias)


# ---- the cost model ------------------------------------------------------------------------------------
FUSED_MAX_EDGES = 128  # "auto" picks "fused" for layers with at most this many edges
GATHER = 2.375     # one local-kernel multiply-add (forward + backward), in GEMM multiply-adds
WEIGHT_PASS = 33.0  # one coefficient touched by a weight pass, in GEMM multiply-adds
def choose_kernel(batch: int, in_features: int, out_features: int, grid_size: int, order: int,
                  device: torch.device | str = "cpu", *, compiled_kernels: bool | None = None) -> str:
    """Pick ``"fused"``, ``"dense"`` or ``"local"`` for a B-spline layer from its sizes.

    Layers with at most ``FUSED_MAX_EDGES`` edges (``in·out``) take ``"fused"``: their step is bound by
    launching ops, and one C++ call per direction beat both other paths on every small layer measured
    (``[2, 5, 1]`` on 1000 samples: 0.51 ms vs 0.89 ms dense per training step; from about 256 edges the
    vectorised GEMM of ``"dense"`` wins).  For larger layers:

    The estimate counts multiply-adds of a training step (forward + backward) weighted by efficiencies
    measured with ``benchmarks/speed.py`` on a 2-core AVX-512 Xeon (one 256→256 layer, batch 1024): the dense
    path does ``in·(K+1)·out`` per sample at GEMM speed (weight 1); the local path does ``in·(k+1)·out`` at
    the gather kernel's speed (``GATHER`` GEMM multiply-adds each) plus the base GEMM ``in·out``; both pass
    over the ``out·in·K`` coefficients about three times per step (scaling/transposes and the gradient,
    ``WEIGHT_PASS`` each), which is what makes the local path's time grow at all with G.  With these numbers
    the switch sits at ``G ≈ 6.5`` for cubic splines (measured, local ÷ dense on one / two threads: G = 5:
    1.07–1.11 / 0.95–0.96; G = 6: 1.01–1.04 / 0.95–1.01; G = 7: 0.96–0.97 / 0.88–0.89).  Without the C++
    kernels (no compiler, non-CPU device, half precision) the answer is ``"dense"``: the local path is then
    pure PyTorch, or on CUDA the Triton kernels, which are checked in Triton's interpreter but not yet timed
    on a GPU (``kernel="local"`` opts in).
    """
    if compiled_kernels is None:
        compiled_kernels = str(device).startswith("cpu") and ops.load_extension()
    if not compiled_kernels:
        return "dense"
    if in_features * out_features <= FUSED_MAX_EDGES:
        return "fused"
    n_fun = grid_size + order
    weight_passes = 3 * out_features * in_features * n_fun * WEIGHT_PASS  # both paths, once per step
    dense = batch * in_features * (n_fun + 1) * out_features + weight_passes
    local = batch * in_features * out_features * ((order + 1) * GATHER + 1) + weight_passes
    return "local" if local < dense else "dense"


def _exporting() -> bool:
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and getattr(compiler, "is_exporting", None) is not None:
        try:
            if compiler.is_exporting():
                return True
        except Exception:  # pragma: no cover - depends on the torch build
            pass
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting())


def _compiling() -> bool:
    """Inside torch.compile the plain-PyTorch path is traced (building/loading the C++ extension is not
    traceable); an explicit ``kernel=`` choice still applies."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


_AUTO_CACHE: dict[tuple, str] = {}  # the cost model's answers (it runs for every layer call)


def _resolve(kernel: str, basis, x: Tensor, coef: Tensor) -> KernelPath:
    name = _check_name(kernel)
    if name == "auto":
        name = _override[0] or "auto"
    if name == "auto":
        if _exporting() or _compiling():
            return _KERNELS["reference"]
        key = (type(basis), getattr(basis, "grid_size", None), getattr(basis, "order", None),
               getattr(basis, "extrapolate", None), x.shape[0], coef.shape, x.device.type, x.dtype,
               ops.uses_extension(x, getattr(basis, "order", 3)))
        cached = _AUTO_CACHE.get(key)
        if cached is not None:
            return _KERNELS[cached]
        if not _is_spline(basis, x):
            name = "reference"
        else:
            name = choose_kernel(x.shape[0], coef.shape[1], coef.shape[0], basis.grid_size, basis.order,
                                 x.device, compiled_kernels=ops.uses_extension(x, basis.order))
            if name == "fused" and not _fusable(basis, x):  # extrapolate="zero"
                name = "dense"
        if len(_AUTO_CACHE) > 1024:
            _AUTO_CACHE.clear()
        _AUTO_CACHE[key] = name
    path = _KERNELS[name]
    if not path.supports(basis, x):
        raise ValueError(f"kernel {name!r} does not support basis {type(basis).__name__}; use 'auto' or "
                         f"'reference'")
    return path


def kan_forward(x: Tensor, basis, coef: Tensor, scale: Tensor, base_weight: Tensor | None,
                act: Callable[[Tensor], Tensor] | None, kernel: str = "auto", bias: Tensor | None = None) -> Tensor:
    """Numeric part of a KAN layer: ``(*, in)`` → ``(*, out)``,
    ``y_o = Σ_i scale[o,i]·Σ_k coef[o,i,k]·B_k(x_i) + Σ_i base_weight[o,i]·act(x_i) (+ bias_o)``.

    Arguments:
        x: inputs ``(*, in)``.
        basis: the layer's :class:`~kanlab.basis.Basis`.
        coef: ``(out, in, K)``.  scale: ``(out, in)`` (spline scaler × mask).
        base_weight: ``(out, in)`` (× mask), or None for no base branch.  act: the base activation.
        kernel: ``"auto"`` or a name from :func:`list_kernels`.
        bias: ``(out,)`` added to the output, or None.
    """
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]) if x.dim() != 2 else x
    if base_weight is not None and act is None:
        raise ValueError("base_weight given without a base activation")
    path = _resolve(kernel, basis, flat, coef)
    if path.adds_bias:
        out = path.run(flat, basis, coef, scale, base_weight, act, bias=bias)
    else:
        out = path.run(flat, basis, coef, scale, base_weight, act)
        if bias is not None:
            out = out + bias
    return out.reshape(*lead, coef.shape[0]) if x.dim() != 2 else out
