"""``kanlab.fit``: the training loop (LBFGS or Adam, sparsity regularisation, grid updates, grid extension)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from .callbacks import Callback, History, ProgressBar, TrainState
from .regularization import sparsity_penalty

__all__ = ["fit", "TrainingDivergedError", "OPTIMIZERS"]

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN/inf; the model holds the last finite state when it is raised."""


def _lbfgs(params, lr: float | None):
    return torch.optim.LBFGS(params, lr=1.0 if lr is None else lr, history_size=10, max_iter=20,
                             line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32)


def _adam(params, lr: float | None):
    return torch.optim.Adam(params, lr=1e-2 if lr is None else lr)


def _sgd(params, lr: float | None):
    return torch.optim.SGD(params, lr=1e-2 if lr is None else lr, momentum=0.9)


OPTIMIZERS: dict[str, Callable] = {"lbfgs": _lbfgs, "adam": _adam, "sgd": _sgd}


def _as_tensor_pair(x: Any, y: Any, what: str, dtype, device) -> tuple[Tensor, Tensor]:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"{what}_input and {what}_label must be torch tensors")
    if x.dim() != 2:
        raise ValueError(f"{what}_input must have shape (N, n_features), got {tuple(x.shape)}")
    if y.dim() == 1:
        y = y[:, None]
    if y.dim() != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{what}_label must have shape (N,) or (N, n_outputs) with N={x.shape[0]} like "
                         f"{what}_input, got {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} data is empty (0 rows)")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{what}_input must hold numbers, got dtype {x.dtype}")
    x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    for name, t in (("input", x), ("label", y)):
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"{what}_{name} contains {bad} NaN or infinite values; clean or drop those rows")
    return x, y


def _model_dtype_device(model: nn.Module):
    p = next(iter(model.parameters()), None)
    if p is None:
        raise ValueError("the model has no parameters to train")
    return p.dtype, p.device


def _check_io(model: nn.Module, x: Tensor, y: Tensor, what: str) -> None:
    n_in = getattr(model, "in_features", None)
    n_out = getattr(model, "out_features", None)
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(f"{what}_input has {x.shape[1]} features but the model expects {n_in}")
    if n_out is not None and y.shape[1] != n_out:
        raise ValueError(f"{what}_label has {y.shape[1]} columns but the model has {n_out} outputs")


def _batches(loader: Iterable) -> Iterable:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the DataLoader yields no batches (empty data)")


def fit(model: nn.Module, data: Any, *, steps: int = 100, optimizer: str = "lbfgs", lr: float | None = None,
        batch_size: int | None = None, lamb: float = 0.0, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
        lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0, update_grid_every: int | None = 5,
        stop_grid_update_step: int = 50, grids: Sequence[int] | None = None, test_data: Iterable | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None, callbacks: Sequence[Callback] = (),
        seed: int | None = None, progress: bool | None = None) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Arguments:
        model: a :class:`kanlab.KAN` (or any module; grid updates and regularisation then need a KAN).
        data: dict with ``train_input (N, in)``, ``train_label (N,)``/``(N, out)`` and optionally
            ``test_input``/``test_label``; or a ``DataLoader`` of ``(x, y)`` batches (then ``test_data`` may be
            another loader).  Tensors are cast to the model's dtype and device.
        steps: optimisation steps per grid stage (an LBFGS step runs up to 20 iterations).
        optimizer: ``"lbfgs"`` (full-batch by default), ``"adam"`` or ``"sgd"``.
        lr: learning rate (default 1 for LBFGS, 1e-2 otherwise).
        batch_size: mini-batch size for dict data (None = full batch).
        lamb, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff: sparsity regularisation (see
            :func:`kanlab.train.regularization.sparsity_penalty`); ``lamb = 0`` disables it.
        update_grid_every, stop_grid_update_step: adapt the grids to the data every N steps while the stage
            step is below the stop step (None or 0 disables).
        grids: grid-extension schedule, e.g. ``[3, 5, 10, 20]``: one stage per size, refining between stages.
        loss_fn: ``loss(pred, target)`` (default MSE; then the reported losses are RMSEs).
        callbacks: :class:`~kanlab.train.callbacks.Callback` objects.
        seed: seeds the local generator used for mini-batch order (global RNGs are untouched).
        progress: force the progress bar on/off (default: on only when stderr is a terminal).
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if lamb < 0:
        raise ValueError(f"lamb must be >= 0, got {lamb}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if grids is not None:
        grids = list(grids)
        if not grids or any(not isinstance(g, int) or g < 1 for g in grids):
            raise ValueError(f"grids must be a non-empty list of integers >= 1, got {grids!r}")
    dtype, device = _model_dtype_device(model)
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    mse = loss_fn is None
    loss_fn = loss_fn or (lambda p, t: torch.mean((p - t) ** 2))

    # ---- data -----------------------------------------------------------------------------------------
    if isinstance(data, dict):
        missing = {"train_input", "train_label"} - set(data)
        if missing:
            raise ValueError(f"data dict is missing {sorted(missing)}; expected train_input and train_label")
        x_tr, y_tr = _as_tensor_pair(data["train_input"], data["train_label"], "train", dtype, device)
        _check_io(model, x_tr, y_tr, "train")
        has_test = data.get("test_input") is not None and data.get("test_label") is not None \
            and len(data["test_input"]) > 0
        if has_test:
            x_te, y_te = _as_tensor_pair(data["test_input"], data["test_label"], "test", dtype, device)
            _check_io(model, x_te, y_te, "test")
        loader = None
    elif hasattr(data, "__iter__"):
        loader = data
        x_tr = y_tr = None
        has_test = test_data is not None
    else:
        raise TypeError(f"data must be a dict of tensors or a DataLoader, got {type(data).__name__}")

    is_grid_model = hasattr(model, "update_grid") and hasattr(model, "refine")
    if grids is not None and not is_grid_model:
        raise ValueError("grids (grid extension) needs a model with refine(), such as kanlab.KAN")
    if lamb > 0 and not hasattr(model, "layers"):
        raise ValueError("sparsity regularisation (lamb > 0) needs a kanlab.KAN model")

    def report(value: Tensor) -> float:
        v = float(value.detach())
        return math.sqrt(max(v, 0.0)) if mse else v

    def evaluate_test() -> float:
        if not has_test:
            return math.nan
        with torch.no_grad():
            if loader is None:
                return report(loss_fn(model(x_te), y_te))
            total, count = 0.0, 0
            for xb, yb in test_data:
                xb, yb = _as_tensor_pair(xb, yb, "test", dtype, device)
                total += float(loss_fn(model(xb), yb)) * len(xb)
                count += len(xb)
            return report(torch.tensor(total / max(count, 1)))

    stream = _batches(loader) if loader is not None else None

    def next_batch() -> tuple[Tensor, Tensor]:
        if loader is not None:
            xb, yb = next(stream)
            return _as_tensor_pair(xb, yb, "train", dtype, device)
        if batch_size is None or batch_size >= len(x_tr):
            return x_tr, y_tr
        idx = torch.randint(0, len(x_tr), (batch_size,), generator=gen).to(device)
        return x_tr[idx], y_tr[idx]

    def grid_samples() -> Tensor:
        if loader is None:
            return x_tr
        return torch.cat([next_batch()[0] for _ in range(max(1, 1024 // 64))])[:4096]

    stages = grids if grids is not None else [None]
    history = History()
    cbs: list[Callback] = list(callbacks)
    if not any(isinstance(c, ProgressBar) for c in cbs):
        cbs.insert(0, ProgressBar(progress))
    state = TrainState(model=model, optimizer=None, history=history, total_steps=steps * len(stages))
    start = time.perf_counter()
    model.train()
    for cb in cbs:
        cb.on_train_begin(state)
    try:
        for stage, grid_size in enumerate(stages):
            if grid_size is not None and grid_size != getattr(model, "grid_size", None):
                model.refine(grid_size)
            params = [p for p in model.parameters() if p.requires_grad]
            opt = OPTIMIZERS[optimizer](params, lr)
            state.optimizer, state.stage, state.stage_step = opt, stage, 0
            for cb in cbs:
                cb.on_stage_begin(state)
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            for s in range(steps):
                if (is_grid_model and update_grid_every and s % update_grid_every == 0
                        and s < stop_grid_update_step):
                    model.update_grid(grid_samples())
                    params = [p for p in model.parameters() if p.requires_grad]
                    opt = OPTIMIZERS[optimizer](params, lr)  # stale curvature/moments after a grid move
                    state.optimizer = opt
                xb, yb = next_batch()
                reg_value = [torch.zeros(())]

                def closure() -> Tensor:
                    opt.zero_grad(set_to_none=True)
                    pred = model(xb)
                    if pred.shape != yb.shape:
                        raise ValueError(f"model output shape {tuple(pred.shape)} does not match label "
                                         f"shape {tuple(yb.shape)}")
                    loss = loss_fn(pred, yb)
                    total = loss
                    if lamb > 0:
                        reg = sparsity_penalty(model, xb, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy,
                                               lamb_coef=lamb_coef, lamb_coefdiff=lamb_coefdiff)
                        reg_value[0] = reg.detach()
                        total = loss + lamb * reg
                    total.backward()
                    return total

                if optimizer == "lbfgs":
                    total = opt.step(closure)
                else:
                    total = closure()
                    opt.step()
                if total is None or not torch.isfinite(torch.as_tensor(total)):
                    model.load_state_dict(last_good)
                    raise TrainingDivergedError(
                        f"the training loss became non-finite at stage {stage}, step {s}; the model was "
                        f"restored to the last finite state. Lower the learning rate or use optimizer='adam'."
                    )
                with torch.no_grad():
                    train_rep = report(loss_fn(model(x_tr), y_tr)) if loader is None else report(
                        loss_fn(model(xb), yb))
                if not math.isfinite(train_rep):
                    model.load_state_dict(last_good)
                    raise TrainingDivergedError(
                        f"the model produced non-finite outputs at stage {stage}, step {s}; restored the last "
                        f"finite state. Lower the learning rate or use optimizer='adam'."
                    )
                last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                state.train_loss, state.test_loss = train_rep, evaluate_test()
                history.step.append(state.step)
                history.stage.append(stage)
                history.grid_size.append(getattr(model, "grid_size", None))
                history.train_loss.append(state.train_loss)
                history.test_loss.append(state.test_loss)
                history.reg.append(float(reg_value[0]))
                state.step += 1
                state.stage_step += 1
                for cb in cbs:
                    cb.on_step_end(state)
                if state.stop:
                    break
            for cb in cbs:
                cb.on_stage_end(state)
            log.info("stage %d (grid %s): train %.3e test %.3e", stage, grid_size, state.train_loss,
                     state.test_loss)
            if state.stop:
                break
    finally:
        history.seconds = time.perf_counter() - start
        for cb in cbs:
            cb.on_train_end(state)
    model.eval()
    return history
