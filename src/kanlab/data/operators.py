"""Operator-learning data sets, generated offline with exact (analytic) solutions.

Every generator returns a dict with

* ``train_u`` ``(N, m)``: input functions at the ``m`` sensors (``sensors`` ``(m,)``),
* ``train_y``: query points, ``(P, d)`` shared by all functions (``query="grid"``) or ``(N, P, d)`` drawn per
  function (``query="random"``),
* ``train_s`` ``(N, P)``: the exact output ``G(u)(y)``,
* the same three for ``test_``, plus ``train_coef``/``test_coef`` (the random coefficients that define each
  function, so the analytic helpers below can re-evaluate it anywhere), ``name`` and ``params``.

Problems:

* :func:`sine_wave_operator` — the 1-D sine-wave problem of the DeepOKAN paper (Abueidda et al. 2024), as we
  read it: sine waves ``u(x) = A sin(2π f x + φ)`` with random amplitude, frequency and phase, seen at ``m``
  sensors on ``[0, 1]``, mapped to the wave itself at arbitrary query points (``G(u)(y) = u(y)``).
* :func:`antiderivative_operator` — ``G(u)(y) = ∫_0^y u(x) dx`` on ``[0, 1]`` for random smooth ``u``: a random
  Fourier series whose mode variances follow the squared-exponential spectrum ``exp(-2π²ℓ²k²)`` (a periodic
  Gaussian random field of length scale ``ℓ``; ``ℓ = 0.2`` by default, the length scale of Lu et al.'s
  DeepONet antiderivative benchmark); the antiderivative is computed term by term, exactly.
* :func:`heat_operator` — ``u_t = α u_xx`` on ``[0, 1]`` with ``u(0, t) = u(1, t) = 0`` and a random
  sine-series initial condition ``u_0(x) = Σ_n c_n sin(nπx)``; ``G(u_0)(x, t) = Σ_n c_n e^{-α n²π² t} sin(nπx)``.

All randomness comes from a local ``torch.Generator`` seeded by ``seed``; values are computed in float64 and
cast to ``dtype`` at the end.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "sine_wave_operator", "antiderivative_operator", "heat_operator", "OPERATOR_PROBLEMS",
    "sine_wave", "fourier_series", "fourier_antiderivative", "random_fourier_coefficients",
    "heat_solution", "random_sine_coefficients",
]

_F64 = torch.float64


# ---- analytic helpers ----------------------------------------------------------------------------------
def sine_wave(coef: Tensor, x: Tensor) -> Tensor:
    """``A sin(2π f x + φ)``: ``coef (N, 3)`` rows ``(A, f, φ)``, ``x (P,)`` or ``(N, P)`` → ``(N, P)``."""
    a, f, phi = coef[:, 0:1], coef[:, 1:2], coef[:, 2:3]
    return a * torch.sin(2 * math.pi * f * x + phi)


def random_fourier_coefficients(n: int, n_modes: int, length_scale: float, generator: torch.Generator) -> Tensor:
    """``(n, 2·n_modes + 1)``: ``a_0, a_1, b_1, …, a_K, b_K`` with ``a_k, b_k ~ N(0, exp(-2π²ℓ²k²))``."""
    k = torch.arange(n_modes + 1, dtype=_F64)
    std = torch.exp(-math.pi ** 2 * length_scale ** 2 * k ** 2)  # sqrt of exp(-2π²ℓ²k²)
    z = torch.randn(n, 2 * n_modes + 1, generator=generator, dtype=_F64)
    return z * torch.cat([std[:1], std[1:].repeat_interleave(2)])


def _fourier_parts(coef: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``a_0 (N, 1)``, ``a_k``/``b_k`` ``(N, 1, K)``, phases ``2πkx`` ``(N, P, K)``, ``2πk`` ``(K,)``, ``x (N, P)``."""
    n_modes = (coef.shape[1] - 1) // 2
    w = 2 * math.pi * torch.arange(1, n_modes + 1, dtype=coef.dtype)
    x = x if x.dim() == 2 else x.unsqueeze(0).expand(coef.shape[0], -1)
    return coef[:, 0:1], coef[:, 1::2].unsqueeze(1), coef[:, 2::2].unsqueeze(1), x.unsqueeze(-1) * w, w, x


def fourier_series(coef: Tensor, x: Tensor) -> Tensor:
    """``u(x) = a_0 + Σ_k a_k cos(2πkx) + b_k sin(2πkx)``: ``coef (N, 2K+1)``, ``x (P,)``/``(N, P)`` → ``(N, P)``."""
    a0, a, b, arg, _, _ = _fourier_parts(coef, x)
    return a0 + (a * torch.cos(arg) + b * torch.sin(arg)).sum(-1)


def fourier_antiderivative(coef: Tensor, x: Tensor) -> Tensor:
    """``∫_0^x u``, exactly: ``a_0 x + Σ_k [a_k sin(2πkx) + b_k (1 − cos(2πkx))] / (2πk)``; shapes as
    :func:`fourier_series`."""
    a0, a, b, arg, w, xx = _fourier_parts(coef, x)
    return a0 * xx + ((a * torch.sin(arg) + b * (1 - torch.cos(arg))) / w).sum(-1)


def random_sine_coefficients(n: int, n_modes: int, decay: float, generator: torch.Generator) -> Tensor:
    """``(n, n_modes)``: ``c_n ~ N(0, n^{-2·decay})`` for ``n = 1 … n_modes``."""
    k = torch.arange(1, n_modes + 1, dtype=_F64)
    return torch.randn(n, n_modes, generator=generator, dtype=_F64) * k ** (-decay)


def heat_solution(coef: Tensor, x: Tensor, t: Tensor, alpha: float) -> Tensor:
    """``Σ_n c_n e^{-α n²π² t} sin(nπx)``: ``coef (N, M)``, ``x``/``t`` ``(P,)`` or ``(N, P)`` → ``(N, P)``."""
    n = torch.arange(1, coef.shape[1] + 1, dtype=coef.dtype)
    x = x if x.dim() == 2 else x.unsqueeze(0)
    t = t if t.dim() == 2 else t.unsqueeze(0)
    modes = torch.exp(-alpha * (math.pi * n) ** 2 * t.unsqueeze(-1)) * torch.sin(math.pi * n * x.unsqueeze(-1))
    return (coef.unsqueeze(1) * modes).sum(-1)


# ---- shared plumbing -----------------------------------------------------------------------------------
def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_query(query: str) -> None:
    if query not in ("grid", "random"):
        raise ValueError(f"query must be 'grid' (shared query points) or 'random' (per function), got {query!r}")


def _pack(name: str, params: dict[str, Any], sensors: Tensor, splits: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]],
          dtype) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "params": params, "sensors": sensors.to(dtype)}
    for split, (u, y, s, coef) in splits.items():
        out[f"{split}_u"] = u.to(dtype)
        out[f"{split}_y"] = y.to(dtype)
        out[f"{split}_s"] = s.to(dtype)
        out[f"{split}_coef"] = coef
    return out


def _queries_1d(n: int, n_query: int, query: str, gen: torch.Generator) -> Tensor:
    """``(P,)`` uniform grid on [0, 1] or ``(n, P)`` uniform random points."""
    if query == "grid":
        return torch.linspace(0.0, 1.0, n_query, dtype=_F64)
    return torch.rand(n, n_query, generator=gen, dtype=_F64)


# ---- the three problems --------------------------------------------------------------------------------
def sine_wave_operator(n_train: int = 1000, n_test: int = 200, *, n_sensors: int = 32, n_query: int = 64,
                       amplitude: tuple[float, float] = (0.5, 1.5), frequency: tuple[float, float] = (0.5, 2.0),
                       query: str = "grid", seed: int = 0, dtype=torch.float32) -> dict[str, Any]:
    """Sine waves ``A sin(2π f x + φ)`` (``A``, ``f`` uniform in the given ranges, ``φ`` uniform in
    ``[0, 2π)``) at ``n_sensors`` uniform sensors on ``[0, 1]`` → the wave at ``n_query`` query points
    (``y`` of dimension 1).  ``coef`` rows: ``(A, f, φ)``."""
    _check_counts(n_train=n_train, n_test=n_test, n_sensors=n_sensors, n_query=n_query)
    _check_query(query)
    gen = torch.Generator().manual_seed(int(seed))
    sensors = torch.linspace(0.0, 1.0, n_sensors, dtype=_F64)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        r = torch.rand(n, 3, generator=gen, dtype=_F64)
        coef = torch.stack([amplitude[0] + (amplitude[1] - amplitude[0]) * r[:, 0],
                            frequency[0] + (frequency[1] - frequency[0]) * r[:, 1],
                            2 * math.pi * r[:, 2]], dim=1)
        y = _queries_1d(n, n_query, query, gen)
        splits[split] = (sine_wave(coef, sensors), y.unsqueeze(-1), sine_wave(coef, y), coef)
    params = {"amplitude": list(amplitude), "frequency": list(frequency), "query": query, "seed": seed}
    return _pack("sine_wave", params, sensors, splits, dtype)


def antiderivative_operator(n_train: int = 1000, n_test: int = 200, *, n_sensors: int = 50, n_query: int = 50,
                            n_modes: int = 8, length_scale: float = 0.2, query: str = "grid", seed: int = 0,
                            dtype=torch.float32) -> dict[str, Any]:
    """Random smooth ``u`` on ``[0, 1]`` (a Fourier series with Gaussian spectral decay of length scale
    ``length_scale``, ``n_modes`` modes) at ``n_sensors`` uniform sensors → ``∫_0^y u`` at the query points.
    ``coef`` rows: ``(a_0, a_1, b_1, …)`` (see :func:`fourier_series`)."""
    _check_counts(n_train=n_train, n_test=n_test, n_sensors=n_sensors, n_query=n_query, n_modes=n_modes)
    _check_query(query)
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale!r}")
    gen = torch.Generator().manual_seed(int(seed))
    sensors = torch.linspace(0.0, 1.0, n_sensors, dtype=_F64)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        coef = random_fourier_coefficients(n, n_modes, length_scale, gen)
        y = _queries_1d(n, n_query, query, gen)
        splits[split] = (fourier_series(coef, sensors), y.unsqueeze(-1), fourier_antiderivative(coef, y), coef)
    params = {"n_modes": n_modes, "length_scale": length_scale, "query": query, "seed": seed}
    return _pack("antiderivative", params, sensors, splits, dtype)


def heat_operator(n_train: int = 1000, n_test: int = 200, *, n_sensors: int = 32, n_x: int = 32, n_t: int = 16,
                  alpha: float = 0.05, t_max: float = 1.0, n_modes: int = 5, decay: float = 1.0,
                  query: str = "grid", seed: int = 0, dtype=torch.float32) -> dict[str, Any]:
    """Initial conditions ``u_0(x) = Σ_n c_n sin(nπx)`` at ``n_sensors`` uniform sensors on ``[0, 1]`` → the
    heat-equation solution at query points ``y = (x, t)`` in ``[0, 1] × [0, t_max]``: an ``n_x × n_t`` grid
    (``query="grid"``, rows ordered x-major: ``y[i·n_t + j] = (x_i, t_j)``) or ``n_x·n_t`` random points per
    function.  ``coef`` rows: ``c_1 … c_M``."""
    _check_counts(n_train=n_train, n_test=n_test, n_sensors=n_sensors, n_x=n_x, n_t=n_t, n_modes=n_modes)
    _check_query(query)
    if not alpha > 0 or not t_max > 0:
        raise ValueError(f"alpha and t_max must be > 0, got alpha={alpha!r}, t_max={t_max!r}")
    gen = torch.Generator().manual_seed(int(seed))
    sensors = torch.linspace(0.0, 1.0, n_sensors, dtype=_F64)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        coef = random_sine_coefficients(n, n_modes, decay, gen)
        if query == "grid":
            xg, tg = torch.meshgrid(torch.linspace(0.0, 1.0, n_x, dtype=_F64),
                                    torch.linspace(0.0, t_max, n_t, dtype=_F64), indexing="ij")
            y = torch.stack([xg.reshape(-1), tg.reshape(-1)], dim=-1)                  # (P, 2)
        else:
            y = torch.rand(n, n_x * n_t, 2, generator=gen, dtype=_F64) * torch.tensor([1.0, t_max], dtype=_F64)
        u0 = heat_solution(coef, sensors, torch.zeros_like(sensors), alpha)
        splits[split] = (u0, y, heat_solution(coef, y[..., 0], y[..., 1], alpha), coef)
    params = {"alpha": alpha, "t_max": t_max, "n_modes": n_modes, "decay": decay, "n_x": n_x, "n_t": n_t,
              "query": query, "seed": seed}
    return _pack("heat", params, sensors, splits, dtype)


OPERATOR_PROBLEMS = {"sine_wave": sine_wave_operator, "antiderivative": antiderivative_operator,
                     "heat": heat_operator}
