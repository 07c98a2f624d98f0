"""Validation of basis hyperparameters: one clear ``ValueError`` naming the argument, never a deep trace."""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["check_int", "check_float", "check_range", "check_choice"]


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an ``int >= minimum`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, greater_than: float | None = None, at_least: float | None = None,
                at_most: float | None = None) -> float:
    """``value`` as a finite ``float`` within the given bounds."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if greater_than is not None and not v > greater_than:
        raise ValueError(f"{name} must be > {greater_than}, got {value!r}")
    if at_least is not None and not v >= at_least:
        raise ValueError(f"{name} must be >= {at_least}, got {value!r}")
    if at_most is not None and not v <= at_most:
        raise ValueError(f"{name} must be <= {at_most}, got {value!r}")
    return v


def check_range(name: str, value: Any) -> tuple[float, float]:
    """``(low, high)`` as two finite floats with ``low < high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high, got {tuple(value)!r}")
    return lo, hi


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(map(repr, choices))}")
    return value
