"""The main job behind ``kanlab fit`` and ``kanlab demo``: train a KAN (grid-extension schedule), optionally
prune and snap to symbols, and compare with an equal-parameter MLP.  Returns the model and a JSON-safe result.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .models.kan import KAN
from .models.mlp import matched_mlp
from .train.loop import fit
from .utils import seeded

__all__ = ["FitJob", "run_job", "default_width", "rmse"]

log = logging.getLogger(__name__)


@dataclass
class FitJob:
    """Settings of one fit job (the CLI's options)."""

    width: Sequence[Any] | None = None
    basis: str = "bspline"
    grids: Sequence[int] = (3, 5, 10, 20)
    steps: int = 50
    optimizer: str = "lbfgs"
    lr: float | None = None
    lamb: float = 0.0
    prune: bool = False
    symbolic: bool = False
    compare_mlp: bool = False
    seed: int = 0
    dtype: torch.dtype = torch.float64
    basis_kwargs: dict[str, Any] = field(default_factory=dict)
    progress: bool | None = None
    callbacks: Sequence[Any] = ()
    # Before the grid schedule: an Adam warm-up (finds a good basin; LBFGS from a random start can stall on
    # plateaus), then a sparsity stage (the KAN paper's L1 + entropy regularisation) after which edges below
    # `sparsify_threshold` of their layer's largest are switched off with the pruning masks.
    warmup_steps: int = 200
    sparsify: bool = True
    sparsify_lamb: float = 0.01
    sparsify_entropy: float = 10.0
    sparsify_threshold: float = 1e-2
    on_divergence: str = "raise"


def default_width(n_in: int, n_out: int = 1) -> list[int]:
    """The Kolmogorov–Arnold shape ``[n, 2n+1, n_out]``."""
    return [n_in, 2 * n_in + 1, n_out]


def rmse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Root-mean-square error of ``model`` on ``(x, y)`` (nan for empty data)."""
    if x is None or len(x) == 0:
        return math.nan
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def _prepare(data: dict, dtype: torch.dtype) -> dict:
    out = dict(data)
    for key in ("train_input", "train_label", "test_input", "test_label"):
        if out.get(key) is not None:
            t = out[key].to(dtype)
            out[key] = t[:, None] if key.endswith("label") and t.dim() == 1 else t
    return out


def run_job(data: dict, job: FitJob, *, model: nn.Module | None = None,
            resume: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Run a fit job on a data dict (``make_dataset`` / ``load_csv_dataset`` format).

    ``model`` (loaded from a checkpoint) and ``resume`` (its training state) continue an interrupted job.

    Returns ``(model, result)`` where ``result`` holds ``train_rmse``, ``test_rmse``, ``n_params``, ``seconds``,
    ``width``, ``staircase`` (per grid size), and, as requested, the symbolic and MLP entries.
    """
    data = _prepare(data, job.dtype)
    n_in = data["train_input"].shape[1]
    n_out = data["train_label"].shape[1]
    width = list(job.width) if job.width else default_width(n_in, n_out)
    if width[0] != n_in:
        raise ValueError(f"width starts with {width[0]} inputs but the data has {n_in} input columns")
    last = width[-1] if isinstance(width[-1], int) else sum(width[-1])
    if last != n_out:
        raise ValueError(f"width ends with {last} outputs but the data has {n_out} target columns")
    grids = list(job.grids)
    kwargs = dict(job.basis_kwargs)
    if job.basis == "bspline":
        kwargs.setdefault("grid_size", grids[0])
        lo = float(data["train_input"].min())
        hi = float(data["train_input"].max())
        kwargs.setdefault("grid_range", (lo, hi) if hi > lo else (lo - 1, hi + 1))
    if model is None:
        with seeded(job.seed):
            model = KAN(width, basis=job.basis, dtype=job.dtype, **kwargs)
    start = time.perf_counter()
    uses_grid = model.layers[0].basis.supports_grid
    result: dict[str, Any] = {"staircase": []}
    if not job.symbolic:  # the symbolic workflow runs its own training schedule (kanlab.interpret.pipeline)
        if resume is None:  # a resumed job restarts inside the grid schedule; these stages are in its checkpoint
            result.update(_prelude(model, data, job))
        history = fit(model, data, steps=job.steps, optimizer=job.optimizer, lr=job.lr, lamb=job.lamb,
                      grids=grids if uses_grid else None, seed=job.seed, progress=job.progress,
                      callbacks=job.callbacks, resume=resume, on_divergence=job.on_divergence)
        result["staircase"] = [{"grid_size": r["grid_size"], "train_rmse": r["train_loss"],
                                "test_rmse": r["test_loss"]} for r in history.stage_end()]
        result["history"] = {k: list(history[k]) for k in ("step", "stage", "grid_size", "train_loss",
                                                            "test_loss")}
    if job.prune or job.symbolic:
        model, extra = _interpret(model, data, job)
        result.update(extra)
    result["seconds"] = time.perf_counter() - start
    result.update({
        "train_rmse": rmse(model, data["train_input"], data["train_label"]),
        "test_rmse": rmse(model, data.get("test_input"), data.get("test_label")),
        "n_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "width": [list(w) if isinstance(w, tuple) else w for w in getattr(model, "widths", width)],
        "basis": job.basis,
        "grids": grids,
    })
    if job.compare_mlp:
        stages = max(1, len(grids)) + (1 if job.sparsify else 0)
        result.update(compare_with_mlp(data, result["n_params"], job, steps=job.steps * stages))
    return model, result


def _prelude(model: KAN, data: dict, job: FitJob) -> dict[str, Any]:
    """Adam warm-up and the sparsity stage (see :class:`FitJob`); returns what it did for the result."""
    from .train.regularization import mask_small_edges

    out: dict[str, Any] = {}
    if job.warmup_steps:
        h = fit(model, data, steps=job.warmup_steps, optimizer="adam", lr=1e-2, update_grid_every=10,
                seed=job.seed, progress=job.progress, on_divergence=job.on_divergence)
        out["warmup_test_rmse"] = h.test_loss[-1] if h.test_loss else math.nan
    if job.sparsify:
        h = fit(model, data, steps=job.steps, optimizer=job.optimizer, lr=job.lr, lamb=job.sparsify_lamb,
                lamb_entropy=job.sparsify_entropy, seed=job.seed, progress=job.progress,
                on_divergence=job.on_divergence)
        kept = mask_small_edges(model, data["train_input"], job.sparsify_threshold)
        out["sparsify"] = {"test_rmse": h.test_loss[-1] if h.test_loss else math.nan, "active_edges": kept,
                           "edges": int(sum(layer.mask.numel() for layer in model.layers))}
    return out


def _interpret(model: KAN, data: dict, job: FitJob) -> tuple[nn.Module, dict[str, Any]]:
    """Prune and/or snap to symbols (provided by :mod:`kanlab.interpret`)."""
    try:
        from .interpret.pipeline import science_workflow
    except ImportError:
        raise ValueError("--prune/--symbolic need kanlab.interpret, which is not available in this build") \
            from None
    return science_workflow(model, data, job)


def compare_with_mlp(data: dict, n_params: int, job: FitJob, *, steps: int) -> dict[str, Any]:
    """Train an MLP with about ``n_params`` parameters on the same data and budget."""
    n_in = data["train_input"].shape[1]
    n_out = data["train_label"].shape[1]
    with seeded(job.seed):
        mlp = matched_mlp(n_in, n_out, n_params, depth=2, activation="silu", dtype=job.dtype)
    start = time.perf_counter()
    if job.warmup_steps:  # the same budget as the KAN: its warm-up, then as many optimizer steps
        fit(mlp, data, steps=job.warmup_steps, optimizer="adam", lr=1e-2, seed=job.seed, progress=job.progress)
    fit(mlp, data, steps=steps, optimizer=job.optimizer, lr=job.lr, seed=job.seed, progress=job.progress)
    return {
        "mlp_train_rmse": rmse(mlp, data["train_input"], data["train_label"]),
        "mlp_test_rmse": rmse(mlp, data.get("test_input"), data.get("test_label")),
        "mlp_n_params": int(mlp.n_params),
        "mlp_width": mlp.widths,
        "mlp_seconds": time.perf_counter() - start,
    }
