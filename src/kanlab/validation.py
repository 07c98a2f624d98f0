"""Argument checks shared by the entry points (``fit``, the estimators, the CLI): one clear error each.

Every check raises ``ValueError`` (or ``TypeError`` for a value of the wrong kind) whose message names the
argument, what it must be, and the value that was given — never a trace from deep inside torch.

Non-finite inputs: ``KANLinear``/``KAN`` forward passes do not check their inputs for NaN or infinity (that
would cost a device synchronisation on every call).  Finite inputs, however far outside a grid, give finite
basis values for every registered basis (each family documents its extrapolation rule); NaN inputs give NaN
outputs and ``±inf`` inputs may give NaN through the base activation.  The entry points that take user data —
:func:`kanlab.fit`, the scikit-learn estimators and the CLI — reject NaN and infinite values with an error
naming where they are.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import torch
from torch import Tensor

__all__ = ["check_positive_int", "check_nonnegative_int", "check_nonnegative_number", "check_positive_number",
           "check_choice", "check_seed", "check_finite"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """``value`` must be an integer >= 1 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")


def check_nonnegative_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """``value`` must be an integer >= 0 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0{' or None' if allow_none else ''}, got {value!r}")


def check_nonnegative_number(name: str, value: Any) -> None:
    """``value`` must be a finite real number >= 0."""
    if not _is_real(value) or not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive_number(name: str, value: Any, *, allow_none: bool = False) -> None:
    """``value`` must be a finite real number > 0 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if not _is_real(value) or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0{' or None' if allow_none else ''}, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices`` (listed in the message)."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def check_seed(value: Any) -> None:
    """A seed is None or a non-negative integer (what ``torch.Generator.manual_seed`` accepts)."""
    if value is not None and (not _is_int(value) or value < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {value!r}")


def check_finite(name: str, t: Tensor) -> None:
    """Raise ValueError when tensor ``t`` holds NaN or infinite values (counts them and names the first row)."""
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        count = int(bad.sum())
        row = int(bad.reshape(len(t), -1).any(dim=1).nonzero()[0, 0]) if t.dim() > 0 and len(t) else 0
        raise ValueError(f"{name} contains {count} NaN or infinite values (first in row {row}); clean or drop "
                         f"those rows")
