"""Time-series data for forecasting: generators, windowing, chronological splits and a train-only scaler.

Column convention (shared with :class:`~kanlab.models.TKAT`): the first ``n_observed`` columns are observed
only up to the forecast origin (the target among them), the last ``n_known`` columns are known in advance
(calendar features, scheduled events) and may be read in the forecast rows too.

* :func:`make_multivariate_series` — target driven by a seasonal cycle, autoregressive components, a
  scheduled event and noise, with distractor noise channels; the seasonal driver and the event are known
  covariates.
* :func:`mackey_glass` — the Mackey–Glass delay differential equation (chaotic for ``tau = 17``), RK4.
* :func:`make_windows`, :func:`chronological_split`, :class:`SeriesScaler` and the one-call
  :func:`make_forecasting_data`.

All randomness comes from a local ``numpy.random.Generator`` built from ``seed``; no global RNG is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["TimeSeries", "SeriesScaler", "make_multivariate_series", "mackey_glass", "mackey_glass_series",
           "event_schedule", "make_windows", "chronological_split", "make_forecasting_data"]


@dataclass
class TimeSeries:
    """A multivariate series ``values (N, F)`` whose last ``n_known`` columns are known covariates.

    Attributes:
        values: ``(N, F)`` float64 array, observed columns first, known columns last.
        names: ``F`` column names.
        n_known: number of known-in-advance columns (at the end).
        target: index of the forecast target (an observed column).
        info: generator parameters and ground truth (e.g. the event schedule).
    """

    values: np.ndarray
    names: list[str]
    n_known: int = 0
    target: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        if self.values.ndim != 2:
            raise ValueError(f"values must be (N, F), got shape {self.values.shape}")
        n, f = self.values.shape
        if len(self.names) != f:
            raise ValueError(f"{len(self.names)} names for {f} columns")
        if not 0 <= self.n_known < f:
            raise ValueError(f"n_known must lie in [0, {f - 1}] (at least one observed column), got {self.n_known}")
        if not 0 <= self.target < self.n_observed:
            raise ValueError(f"target must be an observed column index in [0, {self.n_observed - 1}], "
                             f"got {self.target}")
        if not np.isfinite(self.values).all():
            raise ValueError("the series contains NaN or infinite values")

    @property
    def n_observed(self) -> int:
        return self.values.shape[1] - self.n_known

    def __len__(self) -> int:
        return self.values.shape[0]


# ---- generators -----------------------------------------------------------------------------------------
def event_schedule(n_steps: int, *, gap: tuple[int, int] = (20, 60), length: int = 4,
                   rng: np.random.Generator) -> np.ndarray:
    """0/1 indicator ``(n_steps,)`` of scheduled events: runs of ``length`` ones separated by gaps drawn
    uniformly from ``gap`` (inclusive), the first start also drawn from ``gap``."""
    lo, hi = gap
    if not 1 <= lo <= hi:
        raise ValueError(f"gap must satisfy 1 <= low <= high, got {gap}")
    if length < 1:
        raise ValueError(f"event length must be >= 1, got {length}")
    out = np.zeros(n_steps)
    start = int(rng.integers(lo, hi + 1))
    while start < n_steps:
        out[start:start + length] = 1.0
        start += length + int(rng.integers(lo, hi + 1))
    return out


def make_multivariate_series(n_steps: int = 3000, *, period: int = 24, n_ar: int = 2, n_noise: int = 2,
                             event_gap: tuple[int, int] = (20, 60), event_length: int = 4,
                             event_effect: float = 1.5, noise_std: float = 0.1, seed: int = 0) -> TimeSeries:
    r"""Target with a seasonal driver, AR components, a scheduled event and noise.

    Columns: ``y`` (target), ``ar1..ar{n_ar}``, ``noise1..noise{n_noise}`` (observed; the noise channels are
    pure distractors), then the known covariates ``season_sin``, ``season_cos``, ``event``.

    .. code-block:: text

        s_t      = sin(2πt/P),  c_t = cos(2πt/P)              known
        e_t      ∈ {0, 1}, runs of event_length, irregular gaps  known (scheduled in advance)
        ar_j,t   = φ_j ar_j,t-1 + 0.3 ε                        φ_j = 0.9, 0.7, 0.5, ... (observed)
        y_t      = 0.6 y_{t-1} + 0.5 s_t + 0.3 s_t c_t + 0.5 tanh(ar_1,t-1) + 0.25 Σ_{j>1} ar_j,t-2
                   + event_effect · e_t + noise_std · ε        (observed, the target)

    Returns:
        :class:`TimeSeries` with ``n_known = 3`` and ``target = 0``; ``info`` holds the coefficients and the
        innovations so tests can check the recurrence.
    """
    if n_steps < 10:
        raise ValueError(f"n_steps must be >= 10, got {n_steps}")
    if period < 2:
        raise ValueError(f"period must be >= 2, got {period}")
    if n_ar < 1 or n_noise < 0:
        raise ValueError(f"need n_ar >= 1 and n_noise >= 0, got n_ar={n_ar}, n_noise={n_noise}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    s = np.sin(2 * math.pi * t / period)
    c = np.cos(2 * math.pi * t / period)
    event = event_schedule(n_steps, gap=event_gap, length=event_length, rng=rng)
    phi = np.array([max(0.9 - 0.2 * j, 0.1) for j in range(n_ar)])
    ar_eps = 0.3 * rng.standard_normal((n_steps, n_ar))
    ar = np.zeros((n_steps, n_ar))
    for k in range(1, n_steps):
        ar[k] = phi * ar[k - 1] + ar_eps[k]
    noise = rng.standard_normal((n_steps, n_noise))
    y_eps = noise_std * rng.standard_normal(n_steps)
    y = np.zeros(n_steps)
    for k in range(2, n_steps):
        y[k] = (0.6 * y[k - 1] + 0.5 * s[k] + 0.3 * s[k] * c[k] + 0.5 * math.tanh(ar[k - 1, 0])
                + 0.25 * ar[k - 2, 1:].sum() + event_effect * event[k] + y_eps[k])
    values = np.column_stack([y, ar, noise, s, c, event])
    names = (["y"] + [f"ar{j + 1}" for j in range(n_ar)] + [f"noise{j + 1}" for j in range(n_noise)]
             + ["season_sin", "season_cos", "event"])
    info = {"period": period, "phi": phi, "event_effect": event_effect, "noise_std": noise_std,
            "y_innovation": y_eps, "seed": seed}
    return TimeSeries(values, names, n_known=3, target=0, info=info)


def mackey_glass(n_steps: int, *, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1, n: float = 10.0,
                 dt: float = 0.1, sample_every: float = 1.0, x0: float = 1.2, discard: int = 0) -> np.ndarray:
    r"""Mackey–Glass series ``dx/dt = β x(t-τ) / (1 + x(t-τ)^n) − γ x(t)``, constant history ``x0``.

    Integrated by classical RK4 with step ``dt`` (``τ/dt`` must be an integer); the delayed value at the
    half step is the mean of its neighbours on the grid.  Sampled every ``sample_every`` time units after
    dropping the first ``discard`` samples.  Returns ``(n_steps,)`` float64.
    """
    lag = tau / dt
    if abs(lag - round(lag)) > 1e-9 or lag < 1:
        raise ValueError(f"tau / dt must be a positive integer, got {tau} / {dt}")
    every = sample_every / dt
    if abs(every - round(every)) > 1e-9 or every < 1:
        raise ValueError(f"sample_every / dt must be a positive integer, got {sample_every} / {dt}")
    lag, every = int(round(lag)), int(round(every))
    total = (n_steps + discard) * every
    x = np.empty(total + lag + 1)
    x[: lag + 1] = x0  # history on [-tau, 0]

    def rhs(xt: float, xd: float) -> float:
        return beta * xd / (1.0 + xd ** n) - gamma * xt

    for k in range(lag, lag + total):
        d0, d1 = x[k - lag], x[k - lag + 1]
        dm = 0.5 * (d0 + d1)
        xk = x[k]
        k1 = rhs(xk, d0)
        k2 = rhs(xk + 0.5 * dt * k1, dm)
        k3 = rhs(xk + 0.5 * dt * k2, dm)
        k4 = rhs(xk + dt * k3, d1)
        x[k + 1] = xk + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    samples = x[lag::every][: n_steps + discard]
    return samples[discard:]


def mackey_glass_series(n_steps: int = 3000, **kwargs: Any) -> TimeSeries:
    """:func:`mackey_glass` as a univariate :class:`TimeSeries` (no known covariates)."""
    kwargs.setdefault("discard", 300)
    return TimeSeries(mackey_glass(n_steps, **kwargs), ["x"], n_known=0, target=0, info=dict(kwargs))


# ---- windows, splits, scaling ---------------------------------------------------------------------------
def make_windows(values: np.ndarray | Tensor, lookback: int, horizon: int, *, target: int = 0,
                 n_known: int = 0, starts: Sequence[int] | None = None,
                 mask_future_observed: bool = True) -> tuple[Tensor, Tensor]:
    """Sliding windows ``(inputs (W, T+H, F), labels (W, H))`` over ``values (N, F)``.

    Window ``w`` starting at row ``i`` holds rows ``i .. i+T+H-1``; its labels are the target column on rows
    ``i+T .. i+T+H-1``.  With ``mask_future_observed`` the observed columns of the last ``H`` rows are set to
    NaN, so a model that reads them fails loudly instead of peeking at the answer.  ``starts`` selects
    window start rows (default: every possible one).
    """
    arr = torch.as_tensor(np.asarray(values) if not isinstance(values, Tensor) else values)
    if arr.dim() != 2:
        raise ValueError(f"values must be (N, F), got shape {tuple(arr.shape)}")
    if lookback < 1 or horizon < 1:
        raise ValueError(f"lookback and horizon must be >= 1, got {lookback}, {horizon}")
    n, f = arr.shape
    span = lookback + horizon
    if starts is None:
        starts = range(n - span + 1)
    idx = torch.as_tensor(list(starts), dtype=torch.long)
    if idx.numel() == 0:
        raise ValueError(f"no window fits: {n} rows, lookback {lookback} + horizon {horizon}")
    if int(idx.min()) < 0 or int(idx.max()) + span > n:
        raise ValueError(f"window starts must lie in [0, {n - span}]")
    rows = idx[:, None] + torch.arange(span)[None]  # (W, T+H)
    inputs = arr[rows].clone()  # (W, T+H, F)
    labels = inputs[:, lookback:, target].clone()
    if mask_future_observed:
        inputs[:, lookback:, : f - n_known] = float("nan")
    return inputs, labels


def chronological_split(n: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` row ranges in time order with the given fractions (summing to 1)."""
    fr = [float(v) for v in fractions]
    if any(v <= 0 for v in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    bounds = [0] + [int(round(n * v)) for v in np.cumsum(fr)[:-1]] + [n]
    return [(bounds[k], bounds[k + 1]) for k in range(len(fr))]


class SeriesScaler:
    """Per-column standardisation ``(x − mean) / std`` fitted on one segment (the training split)."""

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, values: np.ndarray) -> "SeriesScaler":
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] < 2:
            raise ValueError(f"fit needs (N >= 2, F) values, got shape {values.shape}")
        self.mean = values.mean(axis=0)
        std = values.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)  # constant columns are only centred
        return self

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError("SeriesScaler is not fitted; call fit(train_values) first")
        return self.mean, self.std

    def transform(self, values: np.ndarray) -> np.ndarray:
        mean, std = self._fitted()
        return (np.asarray(values, dtype=np.float64) - mean) / std

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        mean, std = self._fitted()
        return np.asarray(values, dtype=np.float64) * std + mean

    def inverse_target(self, y: Tensor | np.ndarray, target: int) -> np.ndarray:
        """Map scaled values of column ``target`` (any shape) back to the original units."""
        mean, std = self._fitted()
        y = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
        return y * std[target] + mean[target]


def make_forecasting_data(series: TimeSeries, lookback: int, horizon: int, *,
                          fractions: Sequence[float] = (0.7, 0.15, 0.15), stride: int = 1,
                          mask_future_observed: bool = True, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Windows for train / validation / test from chronological splits, scaled with train statistics.

    The series is cut into three contiguous segments; the scaler is fitted on the training segment only.
    A window belongs to the segment containing all its label rows; its lookback may reach back into the
    previous segment (past inputs, no leakage).  Returns a dict with ``train_input``/``train_label``,
    ``val_input``/``val_label``, ``test_input``/``test_label`` (inputs ``(W, T+H, F)``, labels ``(W, H)``,
    scaled), ``scaler``, ``names``, ``n_observed``, ``n_known``, ``target``, ``lookback``, ``horizon`` and
    ``segments``.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    n = len(series)
    segments = chronological_split(n, fractions)
    train_lo, train_hi = segments[0]
    scaler = SeriesScaler().fit(series.values[train_lo:train_hi])
    scaled = scaler.transform(series.values)
    out: dict[str, Any] = {}
    for name, (lo, hi) in zip(("train", "val", "test"), segments):
        first = max(lo - lookback, 0) if name != "train" else lo
        starts = range(first, hi - lookback - horizon + 1, stride)
        if len(starts) == 0:
            raise ValueError(f"the {name} segment ({hi - lo} rows) is too short for lookback {lookback} + "
                             f"horizon {horizon}")
        x, y = make_windows(scaled, lookback, horizon, target=series.target, n_known=series.n_known,
                            starts=starts, mask_future_observed=mask_future_observed)
        out[f"{name}_input"], out[f"{name}_label"] = x.to(dtype), y.to(dtype)
    out.update(scaler=scaler, names=list(series.names), n_observed=series.n_observed, n_known=series.n_known,
               target=series.target, lookback=lookback, horizon=horizon, segments=segments)
    return out
