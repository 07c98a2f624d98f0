"""Training callbacks: progress, early stopping, and the protocol every callback follows."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["TrainState", "Callback", "ProgressBar", "EarlyStopping", "History"]


@dataclass
class History:
    """Per-step record of a fit.  ``history["train_loss"]`` etc. also work."""

    step: list[int] = field(default_factory=list)
    stage: list[int] = field(default_factory=list)
    grid_size: list[int | None] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    reg: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        return ["step", "stage", "grid_size", "train_loss", "test_loss", "reg", "seconds", "stopped_early"]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.keys()}

    def stage_end(self) -> list[dict[str, Any]]:
        """Last record of every grid stage: ``[{stage, grid_size, train_loss, test_loss}, ...]``."""
        out: dict[int, dict[str, Any]] = {}
        for i, s in enumerate(self.stage):
            out[s] = {"stage": s, "grid_size": self.grid_size[i], "train_loss": self.train_loss[i],
                      "test_loss": self.test_loss[i]}
        return [out[k] for k in sorted(out)]


@dataclass
class TrainState:
    """What callbacks see: the model, the optimizer, counters and the history so far."""

    model: nn.Module
    optimizer: Any
    history: History
    step: int = 0  # global step, over all stages
    stage: int = 0
    stage_step: int = 0
    total_steps: int = 0
    train_loss: float = math.nan
    test_loss: float = math.nan
    stop: bool = False
    generator: Any = None  # the fit's batch-order torch.Generator (saved by checkpoints for exact resumes)
    optimizer_name: str = ""
    lr: float | None = None  # current learning rate (None: the optimizer's default)
    fit_args: dict = field(default_factory=dict)  # fit's arguments, checked when resuming
    data_fingerprint: Any = None  # () -> hash of the training data (dict data), checked when resuming
    interrupted: bool = False  # Ctrl-C: training stops after the current step
    best: Any = None  # (weights, train loss) of the stage's best step, kept for on_divergence="reduce_lr"


class Callback:
    """Hooks called by :func:`kanlab.fit`; set ``state.stop = True`` to end training."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_stage_begin(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_stage_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar with step and losses on a terminal; silent when stderr is not a TTY (unless forced)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def on_train_begin(self, state: TrainState) -> None:
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=state.total_steps, desc="fit", leave=False, file=sys.stderr)

    def on_step_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(train=f"{state.train_loss:.2e}", test=f"{state.test_loss:.2e}",
                                  G=state.history.grid_size[-1] if state.history.grid_size else None)

    def on_train_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EarlyStopping(Callback):
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` steps."""

    def __init__(self, patience: int = 20, min_delta: float = 0.0, monitor: str = "test_loss") -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if monitor not in ("test_loss", "train_loss"):
            raise ValueError(f"monitor must be 'test_loss' or 'train_loss', got {monitor!r}")
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best = math.inf
        self.wait = 0

    def on_stage_begin(self, state: TrainState) -> None:
        self.best, self.wait = math.inf, 0

    def on_step_end(self, state: TrainState) -> None:
        value = getattr(state, self.monitor)
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop = True
                state.history.stopped_early = True
