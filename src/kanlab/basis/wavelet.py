"""Wavelet bases (Wav-KAN): Mexican hat, Morlet, derivative of Gaussian, Meyer, Shannon.

Every edge owns a wavelet with its own learnable scale and translation.  The basis contract returns values
``(*, in, K)`` shared by all outputs, so the edge-specific wavelets are laid out along ``K``: with
``K = out_features`` (the default), basis function ``o`` of input ``i`` is ::

    ψ_{o,i}(x) = ψ((x − translation[o, i]) / scale[o, i])

and the layer's coefficients ``coef[o, i, k]`` weight them.  With ``coef[o, i, k] = w[o, i]·δ_{ok}`` this is
exactly Wav-KAN (edge ``(o, i)`` is ``w·ψ_{o,i}``); a full ``coef`` additionally lets an edge reuse the
wavelets of its sibling edges from the same input (a superset, trained the same way).  ``num_wavelets`` sets
``K`` independently of ``out_features``.

Parameters: ``translation (K, in)`` and ``log_scale (K, in)`` (``scale = exp(log_scale) > 0`` always).  They
start deterministic: translations at the centres of ``K`` equal cells of ``grid_range``, scales equal to the
cell width times ``width_scale``.  The scaled argument is clipped to ``±1e4`` (where every mother wavelet is
~0), so no input or scale can produce NaN.  All mother wavelets here are even functions centred at 0 (DoG is
odd), bounded, and decay away from the translation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .base import Basis, register_basis
from .checks import check_float, check_int, check_range

__all__ = ["WaveletBasis", "MexicanHat", "Morlet", "DerivativeOfGaussian", "Meyer", "Shannon",
           "mexican_hat", "morlet", "derivative_of_gaussian", "meyer", "shannon"]

_CLIP = 1e4


# ---- mother wavelets (pure functions of t) ---------------------------------------------------------------
def mexican_hat(t: Tensor) -> Tensor:
    """Ricker wavelet ``2/(√3·π^{1/4})·(1 − t²)·exp(−t²/2)`` (the negative normalised 2nd derivative of a
    Gaussian)."""
    t2 = t * t
    return (2.0 / (math.sqrt(3.0) * math.pi ** 0.25)) * (1 - t2) * torch.exp(-t2 / 2)


def morlet(t: Tensor, omega0: float = 5.0) -> Tensor:
    """Real Morlet wavelet ``cos(ω₀·t)·exp(−t²/2)``."""
    return torch.cos(omega0 * t) * torch.exp(-t * t / 2)


def derivative_of_gaussian(t: Tensor) -> Tensor:
    """First derivative of a Gaussian (DoG): ``−t·exp(−t²/2)``."""
    return -t * torch.exp(-t * t / 2)


def _int_cos(c: Tensor, a: float, b: float) -> Tensor:
    """``∫_a^b cos(c·ω) dω`` for any ``c`` (the removable singularity at ``c = 0`` handled by sinc)."""
    m, h = (a + b) / 2, (b - a) / 2
    return (b - a) * torch.cos(c * m) * torch.sinc(c * (h / math.pi))


def _int_sin(c: Tensor, a: float, b: float) -> Tensor:
    """``∫_a^b sin(c·ω) dω`` for any ``c``."""
    m, h = (a + b) / 2, (b - a) / 2
    return (b - a) * torch.sin(c * m) * torch.sinc(c * (h / math.pi))


def meyer(t: Tensor) -> Tensor:
    """Meyer wavelet (auxiliary function ``ν(x) = x``), centred at 0, in closed form.

    Its Fourier amplitude is ``A(ω) = sin(π/2·ν(3|ω|/(2π) − 1))`` on ``2π/3 ≤ |ω| ≤ 4π/3``,
    ``cos(π/2·ν(3|ω|/(4π) − 1))`` on ``4π/3 ≤ |ω| ≤ 8π/3`` and 0 elsewhere; the centred wavelet
    (the classic ``ψ(t + 1/2)``) is ``(1/π)·∫_0^∞ A(ω)·cos(ω·t) dω``.  With ``ν(x) = x`` both pieces integrate in
    closed form; the integrals are written with ``sinc`` so they are smooth and finite at every ``t``.
    """
    a1, b1, a2, b2 = 2 * math.pi / 3, 4 * math.pi / 3, 4 * math.pi / 3, 8 * math.pi / 3
    # A = −cos(3ω/4) on [a1, b1] and sin(3ω/8) on [a2, b2]; products with cos(ωt) split into sums
    low = -0.5 * (_int_cos(0.75 + t, a1, b1) + _int_cos(0.75 - t, a1, b1))
    high = 0.5 * (_int_sin(0.375 + t, a2, b2) + _int_sin(0.375 - t, a2, b2))
    return (low + high) / math.pi


def shannon(t: Tensor, window: float | None = 4.0) -> Tensor:
    """Real Shannon wavelet ``2·sinc(2t) − sinc(t) = sinc(t/2)·cos(3πt/2)`` (normalised sinc), multiplied by a
    Hann window ``cos²(πt/(2L))`` for ``|t| < L`` (0 beyond) applied in ``t`` — so each wavelet is compactly
    supported around its own translation.  ``window=None`` leaves the slowly (1/t) decaying sinc unwindowed."""
    psi = torch.sinc(t / 2) * torch.cos(1.5 * math.pi * t)
    if window is None:
        return psi
    inside = t.abs() < window
    hann = torch.cos((math.pi / (2 * window)) * t.clamp(-window, window)) ** 2
    return torch.where(inside, psi * hann, torch.zeros_like(psi))


# ---- the basis -------------------------------------------------------------------------------------------
class WaveletBasis(Basis):
    """Per-edge scaled and translated copies of a mother wavelet: ``(*, in)`` → ``(*, in, K)``.

    Arguments:
        in_features: number of input features (or None to bind later).
        num_wavelets: ``K``; default ``out_features`` (one wavelet per edge, as in Wav-KAN).
        grid_range: ``(low, high)`` over which the initial translations are spread.
        width_scale: initial scale as a multiple of the cell width ``(high − low)/K``.
    Shape:
        ``(*, in)`` → ``(*, in, K)``.
    Attributes:
        translation, log_scale: Parameters ``(K, in)``; :attr:`scale` is ``exp(log_scale)``.
    """

    domain = ("any real input: bounded wavelets that decay away from their learnable translation (scaled "
              "argument clipped to ±1e4), never NaN")

    def __init__(self, in_features: int | None = None, *, num_wavelets: int | None = None,
                 grid_range: tuple[float, float] = (-1.0, 1.0), width_scale: float = 1.0,
                 out_features: int | None = None, device=None, dtype=None) -> None:
        if num_wavelets is not None:
            check_int("num_wavelets", num_wavelets, 1)
        self.num_wavelets = num_wavelets
        self.grid_range = check_range("grid_range", grid_range)
        self.width_scale = check_float("width_scale", width_scale, greater_than=0.0)
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    def _build(self, device=None, dtype=None) -> None:
        k = self.num_wavelets if self.num_wavelets is not None else self.out_features
        if k is None:
            raise ValueError(f"{type(self).__name__} needs out_features (one wavelet per edge) or num_wavelets "
                             f"to know how many wavelets each input has")
        self.translation = nn.Parameter(torch.empty(k, self.in_features, device=device, dtype=dtype))
        self.log_scale = nn.Parameter(torch.empty(k, self.in_features, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        lo, hi = self.grid_range
        k = self.translation.shape[0]
        cell = (hi - lo) / k
        with torch.no_grad():
            centres = lo + cell * (torch.arange(k, dtype=torch.float64) + 0.5)
            self.translation.copy_(centres.to(self.translation.dtype)[:, None].expand_as(self.translation))
            self.log_scale.fill_(math.log(cell * self.width_scale))

    @property
    def num_functions(self) -> int:
        if not self.is_bound:
            if self.num_wavelets is None:
                raise RuntimeError(f"{type(self).__name__} has K = out_features; bind it first")
            return self.num_wavelets
        return self.translation.shape[0]

    @property
    def scale(self) -> Tensor:
        """``(K, in)`` positive scales."""
        return torch.exp(self.log_scale)

    def extra_repr(self) -> str:
        k = self.translation.shape[0] if self.is_bound else self.num_wavelets
        return (f"in_features={self.in_features}, num_wavelets={k}, grid_range={self.grid_range}, "
                f"width_scale={self.width_scale}")

    def config(self) -> dict[str, Any]:
        return {"num_wavelets": self.num_wavelets, "grid_range": list(self.grid_range),
                "width_scale": self.width_scale}

    def mother(self, t: Tensor) -> Tensor:
        """The mother wavelet, elementwise."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, K)``."""
        self._check_input(x)
        shift = self.translation.t().to(x.dtype)  # (in, K)
        inv_scale = torch.exp(-self.log_scale.t().to(x.dtype))
        t = ((x.unsqueeze(-1) - shift) * inv_scale).clamp(-_CLIP, _CLIP)
        return self.mother(t)


@register_basis("mexican_hat")
class MexicanHat(WaveletBasis):
    """Mexican-hat (Ricker) wavelets, one per edge; see :class:`WaveletBasis` and :func:`mexican_hat`."""

    def mother(self, t: Tensor) -> Tensor:
        return mexican_hat(t)


@register_basis("morlet")
class Morlet(WaveletBasis):
    """Real Morlet wavelets ``cos(ω₀t)·exp(−t²/2)``, one per edge; ``omega0`` is the centre frequency."""

    def __init__(self, in_features: int | None = None, *, omega0: float = 5.0, **kwargs: Any) -> None:
        self.omega0 = check_float("omega0", omega0, greater_than=0.0)
        super().__init__(in_features, **kwargs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", omega0={self.omega0}"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "omega0": self.omega0}

    def mother(self, t: Tensor) -> Tensor:
        return morlet(t, self.omega0)


@register_basis("dog")
class DerivativeOfGaussian(WaveletBasis):
    """Derivative-of-Gaussian wavelets ``−t·exp(−t²/2)``, one per edge."""

    def mother(self, t: Tensor) -> Tensor:
        return derivative_of_gaussian(t)


@register_basis("meyer")
class Meyer(WaveletBasis):
    """Meyer wavelets (closed form, ``ν(x) = x``, centred at 0), one per edge; see :func:`meyer`."""

    def mother(self, t: Tensor) -> Tensor:
        return meyer(t)


@register_basis("shannon")
class Shannon(WaveletBasis):
    """Shannon wavelets with a Hann window of half-width ``window`` in ``t`` (None: no window), one per edge."""

    def __init__(self, in_features: int | None = None, *, window: float | None = 4.0, **kwargs: Any) -> None:
        self.window = None if window is None else check_float("window", window, greater_than=0.0)
        super().__init__(in_features, **kwargs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", window={self.window}"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "window": self.window}

    def mother(self, t: Tensor) -> Tensor:
        return shannon(t, self.window)
