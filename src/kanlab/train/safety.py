"""What keeps a long fit safe: Ctrl-C at a step boundary, divergence policies, and resume compatibility.

* :class:`InterruptGuard` — during :func:`kanlab.fit` the first Ctrl-C (SIGINT) only asks training to stop:
  the step in progress completes, callbacks run (a :class:`~kanlab.train.checkpoint.Checkpoint` writes the
  final checkpoint of that step), then :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) is raised.
  A second Ctrl-C aborts at once, as usual.  The handler is installed only in the main thread and only while
  Python's default handler is active, and it is always put back.
* ``on_divergence`` — on a non-finite loss (or non-finite model outputs after a step, e.g. after an LBFGS
  line search that went astray) ``"raise"`` restores the last finite weights and raises
  :class:`TrainingDivergedError`; ``"reduce_lr"`` restores the weights with the lowest training loss of the
  current grid stage (a blow-up usually starts a few steps before the loss overflows), multiplies the
  learning rate by :data:`LR_FACTOR` and retries the step, at most :data:`MAX_LR_REDUCTIONS` times per fit.
* :func:`check_resume_compatible` — a resumed fit must use the arguments of the interrupted one, or it would
  silently train a different model; the arguments are recorded in the training state.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from types import FrameType
from typing import Any, Mapping

import torch
from torch import Tensor

__all__ = ["InterruptGuard", "TrainingInterrupted", "TrainingDivergedError", "DIVERGENCE_POLICIES",
           "LR_FACTOR", "MAX_LR_REDUCTIONS", "check_resume_compatible", "data_fingerprint"]

log = logging.getLogger("kanlab.train")

#: ``on_divergence`` choices of :func:`kanlab.fit`.
DIVERGENCE_POLICIES = {
    "raise": "restore the last finite weights and raise TrainingDivergedError",
    "reduce_lr": "restore the stage's best weights, multiply the learning rate by LR_FACTOR and retry the step",
}
LR_FACTOR = 0.1
MAX_LR_REDUCTIONS = 8


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN/inf; the model holds the last finite state when it is raised."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`kanlab.fit`: training stopped after a completed step (``.step``); the model holds
    that step's weights, and a :class:`~kanlab.train.checkpoint.Checkpoint` callback has saved them."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class InterruptGuard:
    """Context manager deferring the first SIGINT to :attr:`requested` (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # second Ctrl-C: abort now
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt received: training stops after the current step "
                    "(press Ctrl-C again to abort at once)")

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def data_fingerprint(*tensors: Tensor) -> str:
    """SHA-256 over shapes, dtypes and bytes of the training tensors (identifies the data of a resumable fit)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_resume_compatible(saved: Mapping[str, Any] | None, current: Mapping[str, Any]) -> None:
    """Raise ValueError naming every argument in which a resumed fit differs from the interrupted one.

    ``saved`` is the ``fit_args`` entry of the training state (None for states written before it existed:
    nothing to compare).
    """
    if not saved:
        return
    diffs = []
    for key, value in current.items():
        if key in saved and _normalise(saved[key]) != _normalise(value):
            if key == "data":
                diffs.append("the training data differ")
            else:
                diffs.append(f"{key}={saved[key]!r} then, {value!r} now")
    if diffs:
        raise ValueError("cannot resume: this fit's arguments differ from the interrupted run's ("
                         + "; ".join(diffs) + "); resume with the same arguments and data, or load the model and "
                         "fit it without resume to start a new run from its weights")


def _normalise(value: Any) -> Any:
    return [_normalise(v) for v in value] if isinstance(value, (list, tuple)) else value
