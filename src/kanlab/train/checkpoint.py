"""Checkpointing during a fit, and what a resumable training state holds.

``kanlab.fit(model, data, callbacks=[Checkpoint("run/", every=10)])`` writes a full checkpoint directory
(``config.json``, ``model.safetensors``, ``train_state.pt``) every 10 steps and at the end.  Resume with::

    model = kanlab.load("run/")
    kanlab.fit(model, data, ..., resume=kanlab.io.load_train_state("run/"))   # same arguments as before

With dict data and the same arguments, the resumed run ends bit-identical to an uninterrupted one (CPU).
For a DataLoader the step counters, optimizer and history are restored but the loader starts a new pass.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from .callbacks import Callback, TrainState

__all__ = ["Checkpoint", "capture_train_state"]


def capture_train_state(state: TrainState) -> dict[str, Any]:
    """Everything :func:`kanlab.fit` needs to continue from ``state`` besides the model's own weights:
    step counters, the optimizer's state, the batch-order generator, the global torch RNG states and the
    history so far.  Tensors, numbers, strings and lists only (loadable with ``weights_only=True``)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    history = state.history.as_dict() if state.history is not None else {}
    best = {}
    if state.best is not None:
        best = {"best_weights": {k: v.detach().cpu().clone() for k, v in state.best[0].items()},
                "best_loss": float(state.best[1])}
    fit_args = dict(state.fit_args)
    if state.data_fingerprint is not None:
        fit_args["data"] = state.data_fingerprint()
    return {
        "step": int(state.step),
        "stage": int(state.stage),
        "stage_step": int(state.stage_step),
        "optimizer_name": state.optimizer_name,
        "optimizer": state.optimizer.state_dict() if state.optimizer is not None else None,
        "generator": state.generator.get_state() if state.generator is not None else None,
        "rng": rng,
        "lr": state.lr,
        "fit_args": fit_args,
        **best,
        "history": {k: (list(v) if isinstance(v, list) else v) for k, v in history.items()},
    }


class Checkpoint(Callback):
    """Write a resumable checkpoint directory every ``every`` steps and when training ends.

    Arguments:
        directory: the checkpoint directory (created; each checkpoint replaces the previous one atomically as a
            whole, see :mod:`kanlab.atomic`).
        every: steps between checkpoints (None: only at the end).
        names: input column names stored with the model.
        extra: further JSON-safe ``config.json`` entries.

    Only the main process writes (rank 0 under :mod:`torch.distributed`).  A first Ctrl-C makes
    :func:`kanlab.fit` stop after the step in progress, so the final checkpoint is written for that completed
    step.  When training ends with an exception (divergence, a second Ctrl-C) no final checkpoint is written,
    since the model may be mid-step; the last periodic one stays valid.
    """

    def __init__(self, directory: str | os.PathLike, every: int | None = None, *, names: list[str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be a positive integer or None, got {every!r}")
        self.directory = Path(directory)
        self.every = every
        self.names = names
        self.extra = extra
        self.saved_steps: list[int] = []

    def _write(self, state: TrainState) -> None:
        from ..io import save
        from .distributed import is_main_process

        if not is_main_process():
            return
        save(state.model, self.directory, names=self.names, extra=self.extra,
             train_state=capture_train_state(state))
        self.saved_steps.append(state.step)

    def on_step_end(self, state: TrainState) -> None:
        if self.every and state.step % self.every == 0:
            self._write(state)

    def on_train_end(self, state: TrainState) -> None:
        if sys.exc_info()[0] is not None:
            return  # training is unwinding from an exception, possibly mid-step: keep the last periodic checkpoint
        if not self.saved_steps or self.saved_steps[-1] != state.step:
            self._write(state)
