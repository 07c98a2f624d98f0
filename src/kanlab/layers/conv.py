r"""KAN convolutions: ``KANConv1d``, ``KANConv2d``, ``KANConv3d`` — drop-ins for ``nn.Conv1d/2d/3d``.

Every (output channel ``o``, input channel ``i``, kernel offset ``u``) triple is one learnable univariate
function, exactly as every edge of a :class:`~kanlab.layers.KANLinear` is::

    y_o(p) = bias_o + Σ_i Σ_u φ_{o,i,u}(x_i(s·p + d·u)),
    φ_{o,i,u}(x) = w_b[o,i,u]·b(x) + w_s[o,i,u]·Σ_k c[o,i,u,k]·B_k(x).

A KAN convolution is therefore ``KANLinear`` applied to every (padded) input patch, with the same
coefficients for every patch.  It is computed without forming patches and without loops over channel pairs:

1. expand every input channel into ``K + 1`` channels: ``b(x_i)`` and the basis values ``B_k(x_i)``
   (channels moved last, ``basis(x) : (*, C_in) -> (*, C_in, K)``, moved back) — ``C_in·(K+1)`` channels;
2. one grouped ``convNd`` of those channels with the fused weight ``[w_b | w_s·c]`` of shape
   ``(C_out, C_in/groups·(K+1), *kernel)`` (``groups`` keeps its meaning, since the expanded channels of
   input channel ``i`` stay contiguous).

Padding.  ``padding`` / ``padding_mode`` act on the input *values*, as for ``nn.ConvNd``, and padded positions
are evaluated by the edge functions like any other value: the layer is exactly "``KANLinear`` on the patches
of the padded input" (a zero-padded position contributes ``φ(0)``, not nothing).  Because the expansion is
pointwise, it is done on the unpadded input (padding can add half the positions of a small image):
``reflect``/``replicate``/``circular`` pad the expanded channels (padding commutes with a pointwise map);
``zeros`` lets the convolution zero-pad and adds the input-independent contribution of the padded border,
``conv(expand(0)·border)``, computed once per call at batch size 1.

Which bases work.  Step 2 only uses the basis contract (``forward(x (*, in)) -> (*, in, K)``), so the
expansion is a function of the input alone and never of the output channel: every registered basis works,
bound with ``in_features = C_in`` (each input channel has its own basis state, e.g. its own knot row) and
``out_features = C_out``.  Per-edge families that size ``K`` from ``out_features`` (the Wav-KAN wavelets,
with a learnable scale and translation per (output, input) pair and ``K = out_features``) also fit this
scheme unchanged: channel ``i`` is expanded into its ``C_out`` wavelets ``ψ_{o',i}``, shared by all kernel
offsets, and each edge ``φ_{o,i,u}`` is a learned combination of them.  That is faithful to the basis
contract but costs ``C_out·(C_in/groups)·|kernel|·C_out`` coefficients; :meth:`_KANConvNd.expanded_channels`
reports the width before you build a large one.  A basis whose ``forward`` breaks the contract (returns
anything but ``(*, C_in, K)``) is rejected with an error naming it.

Normalisation and activation are not part of the layer (put ``nn.BatchNorm2d`` etc. around it); nothing in
the layer depends on other samples of the batch.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..basis import Basis, create_basis
from .activations import get_activation

__all__ = ["KANConv1d", "KANConv2d", "KANConv3d"]

_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _ntuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """``3`` → ``(3, 3)``; checks that a sequence has ``n`` non-negative integers."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer or a sequence of {n} integers, got {value!r}")
    if isinstance(value, int):
        out = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        out = tuple(value)
        if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
            raise ValueError(f"{name} must be an integer or a sequence of {n} integers, got {value!r}")
    else:
        raise ValueError(f"{name} must be an integer or a sequence of {n} integers, got {value!r}")
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return out


class _KANConvNd(nn.Module):
    """Shared implementation of :class:`KANConv1d`, :class:`KANConv2d` and :class:`KANConv3d`."""

    _ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | str | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", basis: str | Basis = "bspline", *,
                 base_activation: str | None = "silu", device=None, dtype=None, **basis_kwargs: Any) -> None:
        super().__init__()
        n = self._ndim
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if in_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        if any(k < 1 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
        self.stride = _ntuple(stride, n, "stride")
        if any(s < 1 for s in self.stride):
            raise ValueError(f"stride must be positive, got {stride!r}")
        self.dilation = _ntuple(dilation, n, "dilation")
        if any(d < 1 for d in self.dilation):
            raise ValueError(f"dilation must be positive, got {dilation!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {sorted(_PADDING_MODES)}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid', an integer or {n} integers, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding: str | tuple[int, ...] = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
        self._pad = self._pad_amounts()

        get_activation(base_activation)  # validate the name early
        self.base_activation = base_activation if base_activation is not None else "zero"
        factory = {"device": device, "dtype": dtype}
        if isinstance(basis, str):
            basis = create_basis(basis, **basis_kwargs)
        elif not isinstance(basis, Basis):
            raise TypeError(f"basis must be a registered name or a Basis instance, got {type(basis).__name__}")
        elif basis_kwargs:
            raise TypeError(f"basis options {sorted(basis_kwargs)} given together with a Basis instance")
        basis.bind(in_channels, out_channels, **factory)
        self.basis = basis
        k = basis.num_functions
        cin_g = in_channels // groups
        self.base_weight = nn.Parameter(torch.empty(out_channels, cin_g, *self.kernel_size, **factory))
        self.coef = nn.Parameter(torch.empty(out_channels, cin_g, *self.kernel_size, k, **factory))
        self.spline_scaler = nn.Parameter(torch.empty(out_channels, cin_g, *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    # ---- nn.Module contract ------------------------------------------------------------------------------
    @property
    def fan_in(self) -> int:
        """Inputs of one output value: ``C_in/groups · |kernel|`` (the ``in_features`` of the patch layer)."""
        return self.in_channels // self.groups * math.prod(self.kernel_size)

    def reset_parameters(self) -> None:
        """Initialise as :class:`~kanlab.layers.KANLinear` with ``in_features = fan_in`` (and the basis)."""
        if self.base_weight.device.type == "meta":
            return
        self.basis.reset_parameters()
        if self.coef.shape[-1] != self.basis.num_functions:  # the basis was refined earlier
            self.coef = nn.Parameter(self.coef.new_empty(*self.coef.shape[:-1], self.basis.num_functions))
        with torch.no_grad():
            bound = 1.0 / math.sqrt(self.fan_in)
            nn.init.uniform_(self.base_weight, -bound, bound)
            nn.init.normal_(self.coef, mean=0.0, std=0.1)
            self.spline_scaler.fill_(bound)
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._ndim:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._ndim:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + f", basis={self.basis.name}, base_activation={self.base_activation}"

    # ---- geometry ----------------------------------------------------------------------------------------
    def _pad_amounts(self) -> tuple[int, ...]:
        """Padding in ``F.pad`` order (last spatial dim first, (left, right) pairs)."""
        if self.padding == "valid":
            per_dim = [(0, 0)] * self._ndim
        elif self.padding == "same":
            per_dim = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                per_dim.append((total // 2, total - total // 2))  # extra on the right, like nn.ConvNd
        else:
            per_dim = [(p, p) for p in self.padding]
        return tuple(v for pair in reversed(per_dim) for v in pair)

    @property
    def expanded_channels(self) -> int:
        """Channels after the basis expansion: ``C_in·(K + 1)`` (``C_in·K`` without a base branch)."""
        return self.in_channels * (self.basis.num_functions + (self.base_activation != "zero"))

    # ---- evaluation --------------------------------------------------------------------------------------
    def _check(self, x: Tensor) -> tuple[Tensor, bool]:
        n = self._ndim
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            raise ValueError(f"{name} expects input of shape (N, {self.in_channels}, {', '.join('*' * n)}) "
                             f"or ({self.in_channels}, {', '.join('*' * n)}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
        if x.dtype != self.coef.dtype:
            raise TypeError(f"input dtype {x.dtype} does not match the layer's dtype {self.coef.dtype}; "
                            f"convert one of them (e.g. layer.to({x.dtype}))")
        if x.device != self.coef.device:
            raise ValueError(f"input is on {x.device} but the layer is on {self.coef.device}; move one of them")
        unbatched = x.dim() == n + 1
        return (x.unsqueeze(0) if unbatched else x), unbatched

    def pad_input(self, x: Tensor) -> Tensor:
        """Apply ``padding``/``padding_mode`` to ``x`` ``(N, C_in, *S)``."""
        if not any(self._pad):
            return x
        mode = _PADDING_MODES[self.padding_mode]
        if mode == "constant":
            return F.pad(x, self._pad, mode="constant", value=0.0)
        return F.pad(x, self._pad, mode=mode)

    def expand(self, x: Tensor) -> Tensor:
        """Basis expansion ``(N, C_in, *S)`` → ``(N, C_in·(K+1), *S)``: per channel ``[b(x_i), B_0(x_i), …]``."""
        last = x.movedim(1, -1)  # (N, *S, C_in)
        values = self.basis(last)  # (N, *S, C_in, K)
        k = self.basis.num_functions
        if values.shape != (*last.shape, k):
            raise ValueError(f"basis {self.basis.name!r} returned shape {tuple(values.shape)} for input "
                             f"{tuple(last.shape)}; a KAN convolution needs the basis contract (*, in) -> "
                             f"(*, in, K) with K={k}")
        if self.base_activation != "zero":
            values = torch.cat([get_activation(self.base_activation)(last).unsqueeze(-1), values], dim=-1)
        return values.flatten(-2).movedim(-1, 1)

    def spline_weight(self) -> Tensor:
        """Effective spline coefficients ``w_s·c``: ``(C_out, C_in/groups, *kernel, K)``."""
        return self.coef * self.spline_scaler.unsqueeze(-1)

    def fused_weight(self) -> Tensor:
        """The grouped-conv weight ``(C_out, C_in/groups·(K+1), *kernel)`` matching :meth:`expand`."""
        w = self.spline_weight()
        if self.base_activation != "zero":
            w = torch.cat([self.base_weight.unsqueeze(-1), w], dim=-1)
        w = w.movedim(-1, 2)  # (C_out, C_in/g, K(+1), *kernel)
        return w.flatten(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` or ``(C_in, *S)`` → ``(N, C_out, *S_out)`` (``S_out`` as for ``nn.ConvNd``)."""
        x, unbatched = self._check(x)
        conv = _CONV[self._ndim]
        feats = self.expand(x)  # pointwise, so padding can come after the expansion (see the module docs)
        weight = self.fused_weight()
        pads = self._pad
        if not any(pads):
            out = conv(feats, weight, self.bias, self.stride, 0, self.dilation, self.groups)
        elif self.padding_mode != "zeros":
            feats = F.pad(feats, pads, mode=_PADDING_MODES[self.padding_mode])
            out = conv(feats, weight, self.bias, self.stride, 0, self.dilation, self.groups)
        else:
            if pads[0::2] == pads[1::2]:  # symmetric: let the convolution pad
                out = conv(feats, weight, self.bias, self.stride, pads[0::2][::-1], self.dilation, self.groups)
            else:
                out = conv(F.pad(feats, pads), weight, self.bias, self.stride, 0, self.dilation, self.groups)
            out = out + self._border_term(x, weight)
        return out.squeeze(0) if unbatched else out

    def _border_term(self, x: Tensor, weight: Tensor) -> Tensor:
        """What zero-padded positions add, ``conv(expand(0)·border)``: ``(1, C_out, *S_out)``."""
        spatial = x.shape[2:]
        e0 = self.expand(x.new_zeros(1, self.in_channels, *(1,) * self._ndim))  # (1, C_in·(K+1), 1, ...)
        border = 1.0 - F.pad(x.new_ones(1, 1, *spatial), self._pad)  # 1 on the padded frame
        return _CONV[self._ndim](e0 * border, weight, None, self.stride, 0, self.dilation, self.groups)

    def edge_functions(self, x: Tensor) -> Tensor:
        """Every edge function on a 1-D set of points: ``x (M,)`` → ``(M, C_out, C_in/groups, *kernel)``.

        ``[m, o, j, *u]`` is ``φ_{o,i,u}(x[m])`` for input channel ``i = (o // (C_out/groups))·C_in/groups + j``
        (bias excluded) — the curves to plot.
        """
        if not isinstance(x, Tensor) or x.dim() != 1:
            raise ValueError("edge_functions expects a 1-D tensor of points")
        x = x.to(device=self.coef.device, dtype=self.coef.dtype)
        grid = x[:, None].expand(-1, self.in_channels)  # (M, C_in)
        values = self.basis(grid)  # (M, C_in, K)
        cin_g, cout_g = self.in_channels // self.groups, self.out_channels // self.groups
        channel = (torch.arange(self.out_channels, device=x.device)[:, None] // cout_g) * cin_g \
            + torch.arange(cin_g, device=x.device)  # (C_out, C_in/g)
        v = values[:, channel]  # (M, C_out, C_in/g, K)
        spatial = (1,) * self._ndim
        v = v.reshape(v.shape[0], self.out_channels, cin_g, *spatial, v.shape[-1])
        out = (v * self.spline_weight()).sum(-1)
        if self.base_activation != "zero":
            act = get_activation(self.base_activation)(x).reshape(-1, 1, 1, *spatial)
            out = out + act * self.base_weight
        return out

    # ---- grids -------------------------------------------------------------------------------------------
    def _coef_as_linear(self, coef: Tensor) -> Tensor:
        """``(C_out, C_in/g, *kernel, K)`` → ``(C_out/g·|kernel|, C_in, K)``: every function that uses input
        channel ``i``'s basis as one "output" row of that channel (0 in no row: groups keep rows aligned)."""
        g, cin_g, cout_g = self.groups, self.in_channels // self.groups, self.out_channels // self.groups
        k = coef.shape[-1]
        c = coef.reshape(g, cout_g, cin_g, -1, k).permute(1, 3, 0, 2, 4)  # (cout_g, P, g, cin_g, K)
        return c.reshape(-1, self.in_channels, k)

    def _coef_from_linear(self, rows: Tensor) -> Tensor:
        g, cin_g, cout_g = self.groups, self.in_channels // self.groups, self.out_channels // self.groups
        k = rows.shape[-1]
        c = rows.reshape(cout_g, -1, g, cin_g, k).permute(2, 0, 3, 1, 4)  # (g, cout_g, cin_g, P, K)
        return c.reshape(self.out_channels, cin_g, *self.kernel_size, k).contiguous()

    @torch.no_grad()
    def update_grid(self, x: Tensor, max_samples: int = 65536) -> None:
        """Adapt each channel's grid to the input values ``x (N, C_in, *S)`` (padding included), keeping every
        edge function (least-squares refit).  At most ``max_samples`` positions are used (evenly strided)."""
        if not self.basis.supports_grid:
            raise NotImplementedError(f"basis {self.basis.name!r} has no grid to update")
        x, _ = self._check(x)
        samples = self.pad_input(x).movedim(1, -1).reshape(-1, self.in_channels)
        if samples.shape[0] > max_samples:
            step = math.ceil(samples.shape[0] / max_samples)
            samples = samples[::step]
        new = self.basis.update_grid(samples, self._coef_as_linear(self.coef))
        self.coef.data = self._coef_from_linear(new)

    @torch.no_grad()
    def refine(self, grid_size: int) -> None:
        """Grid extension (replaces the ``coef`` Parameter: build optimizers after calling this)."""
        if not self.basis.supports_grid:
            raise NotImplementedError(f"basis {self.basis.name!r} has no grid to refine")
        new = self.basis.refine(grid_size, self._coef_as_linear(self.coef))
        self.coef = nn.Parameter(self._coef_from_linear(new), requires_grad=self.coef.requires_grad)


class KANConv1d(_KANConvNd):
    """KAN convolution over a 1-D signal (arguments of ``nn.Conv1d`` plus ``basis``, ``base_activation`` and
    basis options such as ``grid_size=5``).

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)`` → output ``(N, C_out, L_out)``, ``L_out`` as ``nn.Conv1d``.
    Attributes:
        base_weight ``(C_out, C_in/groups, k)``, coef ``(C_out, C_in/groups, k, K)``, spline_scaler
        ``(C_out, C_in/groups, k)``, bias ``(C_out,)`` or None, basis (bound to ``C_in`` features).
    """

    _ndim = 1


class KANConv2d(_KANConvNd):
    """KAN convolution over an image (arguments of ``nn.Conv2d`` plus ``basis``, ``base_activation`` and
    basis options such as ``grid_size=5``).

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` → output ``(N, C_out, H_out, W_out)`` as ``nn.Conv2d``.
    Attributes:
        base_weight ``(C_out, C_in/groups, kh, kw)``, coef ``(C_out, C_in/groups, kh, kw, K)``, spline_scaler
        ``(C_out, C_in/groups, kh, kw)``, bias ``(C_out,)`` or None, basis (bound to ``C_in`` features).
    """

    _ndim = 2


class KANConv3d(_KANConvNd):
    """KAN convolution over a volume (arguments of ``nn.Conv3d`` plus ``basis``, ``base_activation`` and
    basis options such as ``grid_size=5``).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` → output ``(N, C_out, D_out, H_out, W_out)``.
    Attributes:
        base_weight ``(C_out, C_in/groups, kd, kh, kw)``, coef ``(C_out, C_in/groups, kd, kh, kw, K)``,
        spline_scaler ``(C_out, C_in/groups, kd, kh, kw)``, bias ``(C_out,)`` or None, basis.
    """

    _ndim = 3
