"""``fit_operator``: train a DeepONet / DeepOKAN on an operator data set (Adam, mini-batches of functions).

The data dict is the one the generators in :mod:`kanlab.data.operators` return: ``train_u (N, m)``,
``train_y`` ``(P, d)`` or ``(N, P, d)``, ``train_s (N, P)`` and optionally the ``test_`` triple.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .loop import TrainingDivergedError

__all__ = ["fit_operator", "evaluate_operator", "OperatorHistory"]


@dataclass
class OperatorHistory:
    """Training record: mini-batch MSE per step, test relative L2 at the evaluation steps, wall time."""

    train_mse: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    test_rel_l2: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _split(data: dict[str, Any], split: str, dtype, device) -> tuple[Tensor, Tensor, Tensor] | None:
    keys = [f"{split}_{k}" for k in "uys"]
    if any(data.get(k) is None for k in keys):
        if split == "train":
            raise ValueError(f"operator data must contain {keys}; got keys {sorted(data)}")
        return None
    u, y, s = (torch.as_tensor(data[k]).to(device=device, dtype=dtype) for k in keys)
    if u.dim() != 2 or s.dim() != 2 or s.shape[0] != u.shape[0] or y.dim() not in (2, 3) \
            or s.shape[1] != y.shape[-2] or (y.dim() == 3 and y.shape[0] != u.shape[0]):
        raise ValueError(f"{split} data must be u (N, m), y (P, d) or (N, P, d), s (N, P); got "
                         f"{tuple(u.shape)}, {tuple(y.shape)}, {tuple(s.shape)}")
    for k, t in zip(keys, (u, y, s)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{k} contains NaN or infinite values")
    return u, y, s


@torch.no_grad()
def evaluate_operator(model: nn.Module, u: Tensor, y: Tensor, s: Tensor, batch_size: int = 256) -> float:
    """Mean relative L2 error of ``model`` over the functions of ``(u, y, s)`` (evaluated in chunks)."""
    from ..models.deeponet import relative_l2

    errs = []
    for i in range(0, u.shape[0], batch_size):
        yb = y if y.dim() == 2 else y[i:i + batch_size]
        errs.append(relative_l2(model(u[i:i + batch_size], yb), s[i:i + batch_size]))
    return float(torch.cat(errs).mean())


def fit_operator(model: nn.Module, data: dict[str, Any], *, steps: int = 2000, lr: float = 1e-3,
                 lr_final: float | None = None, batch_size: int | None = 64, normalize: bool = True,
                 eval_every: int | None = None, seed: int | None = None) -> OperatorHistory:
    """Train ``model`` in place with Adam on mini-batches of functions (all their query points).

    Arguments:
        model: an :class:`~kanlab.models.deeponet.OperatorNetwork` (DeepONet, DeepOKAN).
        data: operator data dict (see module docstring).
        steps: optimisation steps.  lr: initial learning rate.
        lr_final: learning rate reached at the end by a cosine schedule (default ``lr / 100``).
        batch_size: functions per step (None = all).
        normalize: first call ``model.fit_normalization(train_u, train_y)`` (inputs onto the basis grid).
        eval_every: record the test relative L2 every N steps (and at the end) when test data exist.
        seed: seeds the local generator for the mini-batch order (global RNGs untouched).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    param = next(iter(model.parameters()), None)
    if param is None:
        raise ValueError("the model has no parameters to train")
    dtype, device = param.dtype, param.device
    u, y, s = _split(data, "train", dtype, device)
    test = _split(data, "test", dtype, device)
    if normalize:
        model.fit_normalization(u, y)
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    lr_final = lr / 100 if lr_final is None else lr_final
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr_final)
    history = OperatorHistory()
    n = u.shape[0]
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        if batch_size is None or batch_size >= n:
            ub, yb, sb = u, y, s
        else:
            idx = torch.randperm(n, generator=gen)[:batch_size].to(device)
            ub, sb = u[idx], s[idx]
            yb = y if y.dim() == 2 else y[idx]
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(ub, yb) - sb) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDivergedError(f"the operator training loss became non-finite at step {step}; "
                                        f"lower the learning rate")
        history.train_mse.append(value)
        last = step == steps - 1
        if test is not None and eval_every and (last or (step + 1) % eval_every == 0):
            model.eval()
            history.eval_step.append(step + 1)
            history.test_rel_l2.append(evaluate_operator(model, *test))
            model.train()
    history.seconds = time.perf_counter() - start
    model.eval()
    return history
