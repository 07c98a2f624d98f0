"""``KANLinear``: a drop-in for ``nn.Linear`` whose weights are learnable univariate functions."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..basis import Basis, create_basis
from ..kernels import edge_contributions, kan_forward
from ..kernels.dispatch import _check_name
from .activations import get_activation

__all__ = ["KANLinear"]


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

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"basis={self.basis.name}, base_activation={self.base_activation}, bias={self.bias is not None}")

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

    def _numeric_forward(self, x: Tensor) -> Tensor:
        """Spline + base branches of the numeric edges: ``(*, in)`` → ``(*, out)`` (path: ``self.kernel``)."""
        mask = self.numeric_mask()
        has_base = self.base_activation != "zero"
        return kan_forward(x, self.basis, self.coef, self.spline_scaler * mask,
                           self.base_weight * mask if has_base else None,
                           get_activation(self.base_activation) if has_base else None, kernel=self.kernel)

    def _symbolic_forward(self, x: Tensor) -> Tensor | None:
        """Sum of the symbolic edges' outputs ``(*, out)``, or None when no edge is symbolic."""
        return None

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, out)``."""
        self._check(x)
        out = self._numeric_forward(x)
        sym = self._symbolic_forward(x)
        if sym is not None:
            out = out + sym
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
        return out

    # ---- grids -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Adapt the basis grid to the samples ``x (N, in)`` keeping every edge's function."""
        self._check(x)
        new = self.basis.update_grid(x.reshape(-1, self.in_features), self.coef)
        self.coef.data = new

    @torch.no_grad()
    def refine(self, grid_size: int) -> None:
        """Grid extension: a finer grid, coefficients transferred by least squares.

        The ``coef`` Parameter is replaced (its shape changes): build optimizers after calling this.
        """
        new = self.basis.refine(grid_size, self.coef)
        self.coef = nn.Parameter(new, requires_grad=self.coef.requires_grad)
