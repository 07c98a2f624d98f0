"""``kanlab.fit``: the training loop (LBFGS or Adam, sparsity regularisation, grid updates, grid extension)."""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..validation import (check_choice, check_finite, check_nonnegative_int, check_nonnegative_number,
                          check_positive_int, check_positive_number, check_seed)
from .callbacks import Callback, History, ProgressBar, TrainState
from .distributed import parallel_context
from .lbfgs import FastLBFGS
from ..kernels.fused_network import fused_mse_step
from .regularization import sparsity_penalty
from .safety import (DIVERGENCE_POLICIES, LR_FACTOR, MAX_LR_REDUCTIONS, InterruptGuard, TrainingDivergedError,
                     TrainingInterrupted, check_resume_compatible, data_fingerprint)

__all__ = ["fit", "TrainingDivergedError", "TrainingInterrupted", "OPTIMIZERS"]

log = logging.getLogger(__name__)


def _lbfgs(params, lr: float | None):
    # FastLBFGS: torch's algorithm (same iterates up to rounding, same state dict) at a third of the overhead
    return FastLBFGS(params, lr=1.0 if lr is None else lr, history_size=10, max_iter=20,
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
    if not (y.is_floating_point() or y.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{what}_label must hold numbers, got dtype {y.dtype}")
    x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    for name, t in (("input", x), ("label", y)):
        check_finite(f"{what}_{name}", t)
    return x, y


def _model_dtype_device(model: nn.Module):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module such as kanlab.KAN, got {type(model).__name__}")
    p = next(iter(model.parameters()), None)
    if p is None:
        raise ValueError("the model has no parameters to train")
    return p.dtype, p.device


def _check_io(model: nn.Module, x: Tensor, y: Tensor, what: str) -> None:
    n_in = getattr(model, "in_features", None)
    n_out = getattr(model, "out_features", None)
    widths = getattr(model, "widths", None)  # e.g. kanlab.MLP
    if n_in is None and n_out is None and isinstance(widths, list) and all(isinstance(w, int) for w in widths):
        n_in, n_out = widths[0], widths[-1]
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


def _pair(batch: Any) -> tuple[Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"every DataLoader batch must be an (inputs, labels) pair, got a {type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    return batch[0], batch[1]


def fit(model: nn.Module, data: Any, *, steps: int = 100, optimizer: str = "lbfgs", lr: float | None = None,
        batch_size: int | None = None, lamb: float = 0.0, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
        lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0, update_grid_every: int | None = 5,
        stop_grid_update_step: int | None = None, grids: Sequence[int] | None = None, test_data: Iterable | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None, callbacks: Sequence[Callback] = (),
        seed: int | None = None, progress: bool | None = None, resume: Mapping[str, Any] | None = None,
        distributed: bool | None = None, on_divergence: str = "raise") -> History:
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
            step is below the stop step (default: half of ``steps``, so every stage ends with undisturbed
            optimisation); ``update_grid_every=None`` or ``0`` disables grid updates.  A grid update keeps
            every function and Parameter, so the optimizer keeps its state across it (as pykan's fit does).
        grids: grid-extension schedule, e.g. ``[3, 5, 10, 20]``: one stage per size, refining between stages.
        loss_fn: ``loss(pred, target)`` (default MSE; then the reported losses are RMSEs).
        callbacks: :class:`~kanlab.train.callbacks.Callback` objects.
        seed: seeds the local generator used for mini-batch order (global RNGs are untouched).
        progress: force the progress bar on/off (default: on only when stderr is a terminal).
        resume: a training state from :func:`kanlab.io.load_train_state` (saved by
            :class:`~kanlab.train.checkpoint.Checkpoint`); training continues where it stopped — stage, step,
            optimizer, batch-order generator and history — and, with the same arguments and dict data, ends
            bit-identical to an uninterrupted run.  Load the model from the same checkpoint first.
        distributed: data-parallel DDP over the initialised process group (default: when one with more than
            one rank exists); see :mod:`kanlab.train.distributed`.
        on_divergence: what a non-finite loss or output does: ``"raise"`` restores the last finite weights and
            raises :class:`TrainingDivergedError`; ``"reduce_lr"`` restores the grid stage's best weights,
            multiplies the learning rate by 0.1 and retries the step (at most 8 times), logging a warning.
            See :mod:`kanlab.train.safety`.

    Ctrl-C (SIGINT, main thread) stops training after the step in progress: callbacks see a clean state (a
    :class:`~kanlab.train.checkpoint.Checkpoint` saves it), then :class:`TrainingInterrupted` is raised.
    """
    check_nonnegative_int("steps", steps)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_number("lr", lr, allow_none=True)
    for name, value in (("lamb", lamb), ("lamb_l1", lamb_l1), ("lamb_entropy", lamb_entropy),
                        ("lamb_coef", lamb_coef), ("lamb_coefdiff", lamb_coefdiff)):
        check_nonnegative_number(name, value)
    check_positive_int("batch_size", batch_size, allow_none=True)
    check_nonnegative_int("update_grid_every", update_grid_every, allow_none=True)
    if stop_grid_update_step is not None:
        check_nonnegative_int("stop_grid_update_step", stop_grid_update_step)
    check_seed(seed)
    check_choice("on_divergence", on_divergence, DIVERGENCE_POLICIES)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss(pred, target), got {type(loss_fn).__name__}")
    if grids is not None:
        grids = list(grids) if isinstance(grids, (list, tuple, range)) else grids
        if not isinstance(grids, list) or not grids or any(
                not isinstance(g, int) or isinstance(g, bool) or g < 1 for g in grids):
            raise ValueError(f"grids must be a non-empty list of integers >= 1, got {grids!r}")
    if isinstance(data, (tuple, list)):
        raise TypeError(f"data must be a dict of tensors or a DataLoader, got a {type(data).__name__}; pass "
                        f"{{'train_input': x, 'train_label': y}}")
    dtype, device = _model_dtype_device(model)
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    par = parallel_context(distributed)
    if par.active and gen is None:
        gen = torch.Generator().manual_seed(0)  # every rank must draw the same global batches
    mse = loss_fn is None
    # the default MSE without regularisation or DDP: fused_mse_step may compute loss and gradients directly
    direct_mse = mse and lamb == 0 and not par.active
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
        par.check_same_data(x_tr, y_tr)
    elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
        loader = par.loader(data, seed or 0)
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
            for batch in test_data:
                xb, yb = _pair(batch)
                xb, yb = _as_tensor_pair(xb, yb, "test", dtype, device)
                total += float(loss_fn(model(xb), yb)) * len(xb)
                count += len(xb)
            return report(torch.tensor(par.global_mean(total / max(count, 1), count)))

    stream = _batches(loader) if loader is not None else None

    def next_batch() -> tuple[Tensor, Tensor]:
        if loader is not None:
            xb, yb = _pair(next(stream))
            xb, yb = _as_tensor_pair(xb, yb, "train", dtype, device)
            par.set_local_size(len(xb))
            return xb, yb
        if batch_size is None or batch_size >= len(x_tr):
            return par.shard(x_tr, y_tr)
        idx = torch.randint(0, len(x_tr), (batch_size,), generator=gen).to(device)
        return par.shard(x_tr[idx], y_tr[idx])

    def grid_samples() -> Tensor:
        if loader is None:
            return x_tr  # every rank holds the global data set: global statistics by construction
        return par.gather(torch.cat([next_batch()[0] for _ in range(max(1, 1024 // 64))])[:4096])

    stages = grids if grids is not None else [None]
    history = History()
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of kanlab.train.Callback objects, got {type(callbacks).__name__}")
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"every callback must be a kanlab.train.Callback (subclass it and override the hooks "
                            f"you need), got {type(cb).__name__}")
    cbs: list[Callback] = list(callbacks)
    if not any(isinstance(c, ProgressBar) for c in cbs):
        cbs.insert(0, ProgressBar(progress if par.is_main else False))
    state = TrainState(model=model, optimizer=None, history=history, total_steps=steps * len(stages))
    state.generator, state.optimizer_name, state.lr = gen, optimizer, lr
    state.fit_args = {"steps": steps, "grids": grids, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                      "lamb": lamb, "lamb_l1": lamb_l1, "lamb_entropy": lamb_entropy, "lamb_coef": lamb_coef,
                      "lamb_coefdiff": lamb_coefdiff, "update_grid_every": update_grid_every,
                      "stop_grid_update_step": stop_grid_update_step, "seed": seed, "on_divergence": on_divergence}
    if loader is None:
        state.data_fingerprint = functools.cache(lambda: data_fingerprint(x_tr, y_tr))
    start_stage, start_step = 0, 0
    if resume is not None:
        start_stage, start_step = _restore(resume, state, gen, optimizer, len(stages))
    lr_now = state.lr  # lowered by on_divergence="reduce_lr"
    n_reductions = 0
    start = time.perf_counter()
    model.train()
    guard = InterruptGuard()
    for cb in cbs:
        cb.on_train_begin(state)
    try:
        guard.__enter__()
        for stage, grid_size in enumerate(stages):
            if stage < start_stage:
                continue
            if grid_size is not None and grid_size != getattr(model, "grid_size", None):
                model.refine(grid_size)
                par.sync(model)
            params = [p for p in model.parameters() if p.requires_grad]
            opt = OPTIMIZERS[optimizer](params, lr_now)
            first = start_step if stage == start_stage else 0
            if first and resume is not None and resume.get("optimizer") is not None:
                opt.load_state_dict(resume["optimizer"])
            net = par.wrap(model)
            state.optimizer, state.stage, state.stage_step = opt, stage, first
            state.best = None
            for cb in cbs:
                cb.on_stage_begin(state)
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_good, best_loss = last_good, math.inf  # for on_divergence="reduce_lr"
            if stage == start_stage and resume is not None and resume.get("best_weights") is not None:
                best_good = {k: v.to(device) for k, v in resume["best_weights"].items()}
                best_loss = float(resume["best_loss"])
                state.best = (best_good, best_loss)
            for s in range(first, steps):
                if (is_grid_model and update_grid_every and s % update_grid_every == 0
                        and s < (steps // 2 if stop_grid_update_step is None else stop_grid_update_step)):
                    model.update_grid(grid_samples())  # same Parameters, new values: the optimizer keeps its
                    par.sync(model)                    # history (as pykan's fit does; measured better for LBFGS)
                    net = par.wrap(model)
                xb, yb = next_batch()
                while True:  # one step; repeated only after a divergence with on_divergence="reduce_lr"
                    reg_value = [torch.zeros(())]
                    mse_cache: dict = {}  # fused_mse_step's checks and plan, made once per step

                    def closure() -> Tensor:
                        for group in opt.param_groups:  # opt.zero_grad(set_to_none=True), without its
                            for p in group["params"]:   # dispatch wrappers (~50 µs a call, as much as a
                                p.grad = None           # small model's forward)
                        if direct_mse:  # a small KAN on the default loss: loss and gradients in one pass
                            loss = fused_mse_step(model, xb, yb, mse_cache)
                            if loss is not None:
                                return loss
                        pred = net(xb)
                        if pred.shape != yb.shape:
                            raise ValueError(f"model output shape {tuple(pred.shape)} does not match label "
                                             f"shape {tuple(yb.shape)}")
                        loss = loss_fn(pred, yb)
                        if not isinstance(loss, Tensor) or loss.dim() != 0:
                            got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
                            raise ValueError(f"loss_fn must return a scalar tensor, got {got}")
                        total = loss
                        if lamb > 0:
                            reg = sparsity_penalty(model, xb, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy,
                                                   lamb_coef=lamb_coef, lamb_coefdiff=lamb_coefdiff)
                            reg_value[0] = reg.detach()
                            total = loss + lamb * reg
                        weight = par.weight()
                        (total * weight if weight != 1.0 else total).backward()
                        return par.global_loss(total)

                    if optimizer == "lbfgs":
                        total = opt.step(closure)
                    else:
                        total = closure()
                        opt.step()
                    problem = None
                    if total is None or not torch.isfinite(torch.as_tensor(total)):
                        problem = "the training loss became non-finite"
                    else:  # an LBFGS line search may end on non-finite weights although its first loss was finite
                        with torch.no_grad():
                            train_rep = report(loss_fn(model(x_tr), y_tr)) if loader is None else report(
                                torch.tensor(par.global_mean(float(loss_fn(model(xb), yb)), len(xb))))
                        if not math.isfinite(train_rep):
                            problem = "the model produced non-finite outputs"
                    if problem is None:
                        break
                    if on_divergence == "raise" or n_reductions >= MAX_LR_REDUCTIONS:
                        model.load_state_dict(last_good)
                        tried = f" after {n_reductions} learning-rate reductions" if n_reductions else ""
                        hint = "" if tried else ", or pass on_divergence='reduce_lr'"
                        raise TrainingDivergedError(
                            f"{problem} at stage {stage}, step {s}{tried}; the model was restored to the last "
                            f"finite state. Lower the learning rate or use optimizer='adam'{hint}.")
                    # a blow-up is usually visible before it is non-finite: go back to the stage's best weights
                    model.load_state_dict(best_good)
                    lr_now = (lr_now if lr_now is not None else opt.param_groups[0]["lr"]) * LR_FACTOR
                    n_reductions += 1
                    state.lr = lr_now
                    log.warning("%s at stage %d, step %d: restored the stage's best weights, retrying with lr=%g",
                                problem, stage, s, lr_now)
                    params = [p for p in model.parameters() if p.requires_grad]
                    opt = OPTIMIZERS[optimizer](params, lr_now)
                    net = par.wrap(model)
                    state.optimizer = opt
                last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if on_divergence == "reduce_lr" and train_rep < best_loss:
                    best_good, best_loss = last_good, train_rep
                    state.best = (best_good, best_loss)  # checkpointed: a resume restores the same weights
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
                state.stop = par.any(state.stop)
                if par.any(guard.requested) and not (stage == len(stages) - 1 and s == steps - 1):
                    state.stop = state.interrupted = True
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
        try:
            for cb in cbs:
                cb.on_train_end(state)
        finally:
            guard.__exit__(None, None, None)
    model.eval()
    if state.interrupted:
        raise TrainingInterrupted(f"training interrupted after step {state.step} (stage {state.stage}, stage step "
                                  f"{state.stage_step}); the model holds that step's weights", state.step)
    return history


def _restore(resume: Mapping[str, Any], state: TrainState, gen: torch.Generator | None, optimizer: str,
             n_stages: int) -> tuple[int, int]:
    """Put a saved training state (see :mod:`kanlab.train.checkpoint`) back; returns (stage, stage step)."""
    try:
        stage, stage_step, step = int(resume["stage"]), int(resume["stage_step"]), int(resume["step"])
        if min(stage, stage_step, step) < 0:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError("resume must be a training state from kanlab.io.load_train_state "
                         "(stage, stage_step and step are missing)") from None
    if resume.get("optimizer_name", optimizer) != optimizer:
        raise ValueError(f"cannot resume: the checkpoint was trained with optimizer "
                         f"{resume['optimizer_name']!r}, not {optimizer!r}")
    if not 0 <= stage < max(n_stages, 1):
        raise ValueError(f"cannot resume: the checkpoint is at grid stage {stage} but this fit has "
                         f"{n_stages} stage(s); pass the same grids as the interrupted run")
    current = dict(state.fit_args)
    if "data" in (resume.get("fit_args") or {}) and state.data_fingerprint is not None:
        current["data"] = state.data_fingerprint()
    check_resume_compatible(resume.get("fit_args"), current)
    if resume.get("lr") is not None:
        state.lr = float(resume["lr"])  # lowered by on_divergence="reduce_lr" before the interruption
    if gen is not None and resume.get("generator") is not None:
        gen.set_state(resume["generator"])
    for key, values in (resume.get("history") or {}).items():
        if hasattr(state.history, key):
            setattr(state.history, key, list(values) if isinstance(values, (list, tuple)) else values)
    state.step, state.stage, state.stage_step = step, stage, stage_step
    return stage, stage_step
