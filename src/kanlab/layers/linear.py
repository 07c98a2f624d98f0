"""``KANLinear``: a drop-in for ``nn.Linear`` whose weights are learnable univariate functions."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..basis import Basis, create_basis
from ..kernels import edge_contributions, kan_forward
from ..kernels.dispatch import _check_name
from .activations import get_activation

__all__ = ["KANLinear"]


def _default_affine(like: Tensor) -> Tensor:
    """``(a, b, c, d) = (1, 1, 0, 0)`` broadcast to ``like``'s shape."""
    base = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=like.dtype, device=like.device)
    return base.expand(like.shape).clone()


class KANLinear(nn.Module):
    r"""Kolmogorov–Arnold layer: ``y_j = Σ_i φ_ji(x_i) + bias_j`` with
    ``φ_ji(x) = w_b[j,i]·b(x) + w_s[j,i]·Σ_k c[j,i,k]·B_k(x)``.

    Arguments:
        in_features: size of each input sample.
        out_features: size of each output sample.
        basis: a registered basis name (``"bspline"``, ``"rbf"``, ...) or a :class:`~kanlab.basis.Basis`
            instance (bound here if it was created without ``in_features``).
        base_activation: name of the residual function ``b`` (``"silu"``; ``"zero"`` removes the branch).
        bias: learn an additive bias.
        device, dtype: factory arguments, as for ``nn.Linear``.
        **basis_kwargs: forwarded to the basis, e.g. ``grid_size=5, order=3, grid_range=(-1, 1)``.

    Shape:
        - Input: ``(*, in_features)``.
        - Output: ``(*, out_features)``.

    Finite inputs, however far outside the grid, give finite outputs (each basis documents its extrapolation
    rule).  Values are not checked in ``forward`` (no device sync): NaN propagates to its own rows, ``±inf``
    may give NaN; ``kanlab.fit``, the estimators and the CLI reject non-finite data (see
    :mod:`kanlab.validation`).

    Attributes:
        base_weight: ``(out, in)`` ``w_b``.  coef: ``(out, in, K)`` ``c``.  spline_scaler: ``(out, in)`` ``w_s``.
        bias: ``(out,)`` or None.  mask: buffer ``(out, in)``, 0 for pruned edges.
        kernel: how the numeric forward is computed: ``"auto"`` (default, a cost model picks), or a name from
            :func:`kanlab.kernels.list_kernels` (``"reference"``, ``"dense"``, ``"local"``); see
            :mod:`kanlab.kernels.dispatch`.  A plain attribute (not saved in checkpoints).
    """

    def __init__(self, in_features: int, out_features: int, basis: str | Basis = "bspline", *,
                 base_activation: str | None = "silu", bias: bool = True, device=None, dtype=None,
                 **basis_kwargs: Any) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        get_activation(base_activation)  # validate the name early
        self.base_activation = base_activation if base_activation is not None else "zero"
        if isinstance(basis, str):
            basis = create_basis(basis, **basis_kwargs)
        elif not isinstance(basis, Basis):
            raise TypeError(f"basis must be a registered name or a Basis instance, got {type(basis).__name__}")
        elif basis_kwargs:
            raise TypeError(f"basis options {sorted(basis_kwargs)} given together with a Basis instance")
        basis.bind(in_features, out_features, **factory)
        self.basis = basis
        k = basis.num_functions
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.coef = nn.Parameter(torch.empty(out_features, in_features, k, **factory))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("mask", torch.empty(out_features, in_features, **factory))
        # 1 where an edge has been snapped to a symbolic formula (see kanlab.interpret.symbolic); the numeric
        # spline/base parts of those edges are switched off and _symbolic_forward adds the formula instead.
        self.register_buffer("symbolic_mask", torch.empty(out_features, in_features, **factory))
        self.kernel = "auto"
        # Per-edge symbolic assignments: JSON-safe primitive names (get_extra_state) and the affine constants
        # (a, b, c, d) of a·f(b·x + c) + d.  The constants are a buffer while no edge is symbolic (so they do
        # not count as parameters) and become a trainable Parameter as soon as one is (see set_symbolic).
        self._symbolic_names: list[list[str]] = [[""] * in_features for _ in range(out_features)]
        self.register_buffer("symbolic_affine", torch.empty(out_features, in_features, 4, **factory))
        self.reset_parameters()

    # ---- nn.Module contract ------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Initialise weights and rebuild computed buffers (grids, masks)."""
        if self.base_weight.device.type == "meta":
            return
        self.basis.reset_parameters()
        if self.coef.shape[-1] != self.basis.num_functions:  # the basis was refined earlier
            self.coef = nn.Parameter(self.coef.new_empty(self.out_features, self.in_features,
                                                         self.basis.num_functions))
        with torch.no_grad():
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.base_weight, -bound, bound)
            nn.init.normal_(self.coef, mean=0.0, std=0.1)
            self.spline_scaler.fill_(bound)
            if self.bias is not None:
                self.bias.zero_()
            self.mask.fill_(1.0)
            self.symbolic_mask.zero_()
            self.symbolic_affine.copy_(_default_affine(self.symbolic_affine))
        self._symbolic_names = [[""] * self.in_features for _ in range(self.out_features)]
        self._affine_trainable(False)

    def extra_repr(self) -> str:
        n_sym = sum(bool(n) for row in self._symbolic_names for n in row)
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"basis={self.basis.name}, base_activation={self.base_activation}, bias={self.bias is not None}"
                + (f", symbolic_edges={n_sym}" if n_sym else ""))

    def __getstate__(self) -> dict:
        """Pickling/deepcopy leave out the caches keyed on tensor versions (a copy's versions may coincide)."""
        state = super().__getstate__()
        for key in ("_all_numeric_cache", "_has_symbolic_cache"):
            state.pop(key, None)
        return state

    # ---- symbolic edges (kanlab.interpret.symbolic) ---------------------------------------------------------
    def get_extra_state(self) -> Tensor:
        """The per-edge symbolic assignments, ``{"symbolic": [[name or "", ...] per output]}``, as JSON text in
        a uint8 tensor: JSON-safe names (never functions), and a state dict that stays all tensors (so
        safetensors, ``torch.equal`` over state dicts and weight snapshots keep working)."""
        text = json.dumps({"symbolic": self._symbolic_names}, separators=(",", ":"))
        return torch.tensor(list(text.encode()), dtype=torch.uint8)

    def set_extra_state(self, state) -> None:
        if isinstance(state, Tensor):
            state = json.loads(bytes(state.to(torch.uint8).tolist()).decode()) if state.numel() else {}
        names = state.get("symbolic") if isinstance(state, dict) else None
        if names is None:
            return
        if (len(names) != self.out_features or any(len(row) != self.in_features for row in names)):
            raise ValueError(f"symbolic assignments have shape {len(names)}x{len(names[0]) if names else 0}, "
                             f"expected {self.out_features}x{self.in_features}")
        from ..interpret.symbolic.library import get_primitive

        for row in names:
            for name in row:
                if name:
                    get_primitive(name)  # clear error for unknown names
        self._symbolic_names = [[str(n) for n in row] for row in names]
        self._affine_trainable(self.has_symbolic)

    @property
    def has_symbolic(self) -> bool:
        """True when at least one edge is snapped to a symbolic function."""
        names = self._symbolic_names
        cached = self.__dict__.get("_has_symbolic_cache")
        if cached is None or cached[0] is not names or cached[1] != self._symbolic_version:
            cached = (names, self._symbolic_version, any(n for row in names for n in row))
            self.__dict__["_has_symbolic_cache"] = cached
        return cached[2]

    @property
    def _symbolic_version(self) -> int:
        return self.__dict__.get("_symbolic_edits", 0)

    def _symbolic_changed(self) -> None:
        self.__dict__["_symbolic_edits"] = self._symbolic_version + 1

    def symbolic_name(self, j: int, i: int) -> str:
        """Name of the primitive of edge ``i → j`` ("" when the edge is numeric)."""
        return self._symbolic_names[j][i]

    def _affine_trainable(self, trainable: bool) -> None:
        """Store ``symbolic_affine`` as a Parameter (trainable) or a buffer, keeping its values."""
        is_param = "symbolic_affine" in self._parameters
        if trainable == is_param:
            return
        data = self.symbolic_affine.detach()
        if trainable:
            del self._buffers["symbolic_affine"]
            self.symbolic_affine = nn.Parameter(data.clone())
        else:
            del self._parameters["symbolic_affine"]
            self.register_buffer("symbolic_affine", data.clone())

    @torch.no_grad()
    def set_symbolic(self, j: int, i: int, name: str | None, affine=None) -> None:
        """Snap edge ``i → j`` to ``a·f(b·x + c) + d`` (``name`` a registered primitive, ``affine`` the
        constants ``(a, b, c, d)``), or make it numeric again with ``name=None``.

        The ``symbolic_affine`` Parameter is replaced when the first edge becomes symbolic: build optimizers
        after calling this.
        """
        if not (0 <= j < self.out_features and 0 <= i < self.in_features):
            raise IndexError(f"edge {i}->{j} is outside this layer ({self.in_features} inputs, "
                             f"{self.out_features} outputs)")
        if name:
            from ..interpret.symbolic.library import get_primitive

            get_primitive(name)
            values = torch.as_tensor([1.0, 1.0, 0.0, 0.0] if affine is None else affine,
                                     dtype=self.symbolic_affine.dtype)
            if values.shape != (4,) or not torch.isfinite(values).all():
                raise ValueError(f"affine must be 4 finite numbers (a, b, c, d), got {affine!r}")
            self._symbolic_names[j][i] = name
            self._symbolic_changed()
            self.symbolic_mask[j, i] = 1.0
            self._affine_trainable(True)
            self.symbolic_affine[j, i] = values.to(self.symbolic_affine.device)
        else:
            self._symbolic_names[j][i] = ""
            self._symbolic_changed()
            self.symbolic_mask[j, i] = 0.0
            self.symbolic_affine[j, i] = _default_affine(self.symbolic_affine[j, i])
            if not self.has_symbolic:
                self._affine_trainable(False)

    def _symbolic_groups(self) -> dict[str, tuple[list[int], list[int]]]:
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for j, row in enumerate(self._symbolic_names):
            for i, name in enumerate(row):
                if name:
                    js, is_ = groups.setdefault(name, ([], []))
                    js.append(j)
                    is_.append(i)
        return groups

    def _symbolic_edges(self, x: Tensor):
        """Yield ``(flat edge index j·in + i, rows j, values (*, E))`` per primitive group."""
        from ..interpret.symbolic.library import get_primitive

        active = self.mask * self.symbolic_mask
        for name, (js, is_) in self._symbolic_groups().items():
            j = torch.tensor(js, device=x.device)
            i = torch.tensor(is_, device=x.device)
            p = self.symbolic_affine[j, i].to(x.dtype)  # (E, 4)
            z = x[..., i] * p[:, 1] + p[:, 2]
            v = (p[:, 0] * get_primitive(name).safe(z) + p[:, 3]) * active[j, i].to(x.dtype)
            yield j * self.in_features + i, j, v

    # ---- evaluation --------------------------------------------------------------------------------------
    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"KANLinear expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"KANLinear expects input of shape (*, {self.in_features}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"KANLinear expects a floating-point input, got dtype {x.dtype}")
        if x.dtype != self.coef.dtype:
            raise TypeError(f"input dtype {x.dtype} does not match the layer's dtype {self.coef.dtype}; "
                            f"convert one of them (e.g. model.to({x.dtype}))")
        if x.device != self.coef.device:
            raise ValueError(f"input is on {x.device} but the layer is on {self.coef.device}; move one of them")

    def numeric_mask(self) -> Tensor:
        """``(out, in)``: 1 for edges computed numerically (kept and not symbolic)."""
        return self.mask * (1 - self.symbolic_mask)

    def spline_weight(self) -> Tensor:
        """Effective spline coefficients ``w_s·c·numeric_mask``: ``(out, in, K)``."""
        return self.coef * (self.spline_scaler * self.numeric_mask()).unsqueeze(-1)

    @property
    def kernel(self) -> str:
        """Numeric-forward path: ``"auto"`` or a name from :func:`kanlab.kernels.list_kernels`."""
        return self._kernel

    @kernel.setter
    def kernel(self, name: str) -> None:
        self._kernel = _check_name(name)

    def _all_numeric(self) -> bool:
        """Whether every edge is kept and numeric (``numeric_mask()`` all ones), so the weights need no masking.
        Cached per state of the two masks (a synchronising check only after they change); always False while
        compiling (the masks are then applied, which is the same function)."""
        if torch.compiler.is_compiling() or self.has_symbolic:
            return False
        mask, sym = self.mask, self.symbolic_mask
        key = (mask, mask._version, sym, sym._version)
        cached = self.__dict__.get("_all_numeric_cache")
        if cached is None or cached[0][0] is not mask or cached[0][2] is not sym or cached[0][1:4:2] != key[1:4:2]:
            cached = (key, bool((mask == 1).all()) and not bool(sym.any()))
            self.__dict__["_all_numeric_cache"] = cached
        return cached[1]

    def _numeric_weights(self) -> tuple[Tensor, Tensor | None, Callable | None]:
        """What the kernels contract for the numeric edges: ``(scale (out, in), base weight (out, in) or None,
        base activation or None)``; pruned and symbolic edges are masked out (no products when there are none)."""
        has_base = self.base_activation != "zero"
        if self._all_numeric():
            scale, base = self.spline_scaler, self.base_weight
        else:
            mask = self.numeric_mask()
            scale, base = self.spline_scaler * mask, self.base_weight * mask
        return scale, (base if has_base else None), (get_activation(self.base_activation) if has_base else None)

    def _numeric_forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """Spline + base branches of the numeric edges (+ ``bias``): ``(*, in)`` → ``(*, out)`` (path:
        ``self.kernel``)."""
        scale, base, act = self._numeric_weights()
        return kan_forward(x, self.basis, self.coef, scale, base, act, kernel=self.kernel, bias=bias)

    def _symbolic_forward(self, x: Tensor) -> Tensor | None:
        """Sum of the symbolic edges' outputs ``(*, out)``, or None when no edge is symbolic."""
        if not self.has_symbolic:
            return None
        out = x.new_zeros(*x.shape[:-1], self.out_features)
        for _, j, v in self._symbolic_edges(x):
            out = out.index_add(-1, j, v)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, out)``."""
        self._check(x)
        sym = self._symbolic_forward(x)
        if sym is None:
            return self._numeric_forward(x, self.bias)  # the bias is added by the path (fused: in the kernel)
        if not bool(self.numeric_mask().any()):
            out = sym  # every edge is symbolic (or pruned): no spline to evaluate
        else:
            out = self._numeric_forward(x) + sym
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_outputs(self, x: Tensor) -> Tensor:
        """Every edge's value ``φ_ji(x_i)``: ``(*, in)`` → ``(*, out, in)`` (bias excluded)."""
        self._check(x)
        out = edge_contributions(self.basis(x), self.spline_weight())
        if self.base_activation != "zero":
            act = get_activation(self.base_activation)(x)
            out = out + act.unsqueeze(-2) * (self.base_weight * self.numeric_mask())
        if self.has_symbolic:
            flat = out.reshape(*out.shape[:-2], -1)
            for idx, _, v in self._symbolic_edges(x):
                flat = flat.index_add(-1, idx, v)
            out = flat.reshape(out.shape)
        return out

    # ---- grids -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Adapt the basis grid to the samples ``x (N, in)`` keeping every edge's function."""
        self._check(x)
        new = self.basis.update_grid(x.reshape(-1, self.in_features), self.coef)
        self.coef.data = new

    @torch.no_grad()
    def widen_grid(self, x: Tensor, margin: float) -> None:
        """Move the basis' end knots out to ``margin`` beyond the grid range and the samples ``x (N, in)``,
        keeping every edge's function (B-spline bases: see :meth:`~kanlab.basis.BSpline.widen`)."""
        self._check(x)
        self.coef.data = self.basis.widen(x.reshape(-1, self.in_features), margin, self.coef)

    @torch.no_grad()
    def refine(self, grid_size: int) -> None:
        """Grid extension: a finer grid, coefficients transferred by least squares.

        The ``coef`` Parameter is replaced (its shape changes): build optimizers after calling this.
        """
        new = self.basis.refine(grid_size, self.coef)
        self.coef = nn.Parameter(new, requires_grad=self.coef.requires_grad)
