"""KAN vs MLP at equal training budget: test RMSE against parameter count (the KAN paper's scaling figure).

    rows = compare_kan_mlp(data, grids=(3, 5, 10, 20), mlp_hidden=(4, 8, 16, 32), steps=50)
    text = format_table(rows); plot_scaling(rows, "scaling.png")

The KAN is trained once with grid extension: each grid size of the schedule is one point (its parameter count
grows with the grid).  Every MLP (``depth`` hidden layers of each width in ``mlp_hidden``) is trained from
scratch with the same optimizer for the KAN's *total* number of steps, so MLPs never get less budget than
any KAN point.  The fitted log-log slope of each family is the empirical scaling exponent (theory for cubic
B-spline KANs: RMSE ∝ N^-4).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .models.kan import KAN
from .models.mlp import MLP
from .train.callbacks import Callback, TrainState
from .train.loop import fit
from .utils import seeded

__all__ = ["compare_kan_mlp", "format_table", "plot_scaling", "scaling_exponent"]


def _rmse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if x is None or len(x) == 0:
        return math.nan
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


class _StageRecorder(Callback):
    """Records one row per grid stage: grid size, parameter count, RMSEs and elapsed time."""

    def __init__(self, data: dict, width: list) -> None:
        self.data, self.width, self.rows = data, width, []
        self.start = time.perf_counter()

    def on_stage_end(self, state: TrainState) -> None:
        model = state.model
        self.rows.append({
            "model": "KAN", "width": self.width, "grid_size": getattr(model, "grid_size", None),
            "n_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "train_rmse": _rmse(model, self.data["train_input"], self.data["train_label"]),
            "test_rmse": _rmse(model, self.data.get("test_input"), self.data.get("test_label")),
            "steps": state.step, "seconds": time.perf_counter() - self.start,
        })


def _check_sizes(values: Sequence[int], what: str) -> list[int]:
    out = list(values)
    if not out or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in out):
        raise ValueError(f"{what} must be a non-empty list of positive integers, got {values!r}")
    return out


def compare_kan_mlp(data: dict, *, kan_width: Sequence[Any] | None = None, grids: Sequence[int] = (3, 5, 10, 20),
                    mlp_hidden: Sequence[int] = (4, 8, 16, 32), mlp_depth: int = 2, steps: int = 50,
                    optimizer: str = "lbfgs", seed: int = 0, dtype: torch.dtype = torch.float64,
                    mlp_activation: str = "silu") -> list[dict[str, Any]]:
    """Train one KAN (grid extension over ``grids``) and one MLP per hidden width; return the rows.

    Arguments:
        data: a kanlab data dict (``train_input``, ``train_label``, ``test_input``, ``test_label``).
        kan_width: KAN widths (default ``[n, 2n+1, n_out]``).
        grids: grid-extension schedule; one KAN row per grid size.
        mlp_hidden, mlp_depth: one MLP per hidden width, ``mlp_depth`` hidden layers each.
        steps: optimisation steps per KAN grid stage; each MLP gets ``steps * len(grids)``.
    Returns:
        rows ``{model, width, grid_size (KAN), n_params, train_rmse, test_rmse, steps, seconds}``.
    """
    grids = _check_sizes(grids, "grids")
    mlp_hidden = _check_sizes(mlp_hidden, "mlp_hidden")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(mlp_depth, int) or mlp_depth < 1:
        raise ValueError(f"mlp_depth must be a positive integer, got {mlp_depth!r}")
    data = {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in data.items()}
    for key in ("train_label", "test_label"):
        if isinstance(data.get(key), torch.Tensor) and data[key].dim() == 1:
            data[key] = data[key][:, None]
    n_in, n_out = data["train_input"].shape[1], data["train_label"].shape[1]
    width = list(kan_width) if kan_width else [n_in, 2 * n_in + 1, n_out]
    lo, hi = float(data["train_input"].min()), float(data["train_input"].max())
    with seeded(seed):
        kan = KAN(width, grid_size=grids[0], grid_range=(lo, hi) if hi > lo else (lo - 1, hi + 1), dtype=dtype)
    recorder = _StageRecorder(data, [list(w) if isinstance(w, tuple) else w for w in kan.widths])
    fit(kan, data, steps=steps, grids=grids, optimizer=optimizer, seed=seed, callbacks=[recorder], progress=False)
    rows = list(recorder.rows)
    budget = steps * len(grids)
    for h in mlp_hidden:
        widths = [n_in] + [h] * mlp_depth + [n_out]
        with seeded(seed):
            mlp = MLP(widths, activation=mlp_activation, dtype=dtype)
        start = time.perf_counter()
        fit(mlp, data, steps=budget, optimizer=optimizer, seed=seed, progress=False)
        rows.append({"model": "MLP", "width": widths, "grid_size": None, "n_params": mlp.n_params,
                     "train_rmse": _rmse(mlp, data["train_input"], data["train_label"]),
                     "test_rmse": _rmse(mlp, data.get("test_input"), data.get("test_label")),
                     "steps": budget, "seconds": time.perf_counter() - start})
    return rows


def scaling_exponent(rows: Sequence[dict[str, Any]], model: str) -> float:
    """Least-squares slope of log(test RMSE) against log(parameters) over one family's rows (nan if < 2)."""
    pts = [(math.log(r["n_params"]), math.log(r["test_rmse"])) for r in rows
           if r["model"] == model and r.get("test_rmse") and r["test_rmse"] > 0 and math.isfinite(r["test_rmse"])]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of the rows plus each family's fitted scaling exponent."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3e}" if v == v else "nan"
        if isinstance(v, list):
            return "[" + ",".join(map(str, v)) + "]"
        return "" if v is None else str(v)

    lines = ["| model | width | grid | params | steps | train RMSE | test RMSE | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {cell(r['width'])} | {cell(r.get('grid_size'))} | {r['n_params']} | "
                     f"{r.get('steps', '')} | {cell(r['train_rmse'])} | {cell(r['test_rmse'])} | "
                     f"{r.get('seconds', float('nan')):.1f} |")
    slopes = ", ".join(f"{m} {scaling_exponent(rows, m):.2f}" for m in ("KAN", "MLP")
                       if any(r["model"] == m for r in rows))
    lines.append("")
    lines.append(f"Fitted scaling exponent (test RMSE ∝ params^slope): {slopes}")
    return "\n".join(lines)


def plot_scaling(rows: Sequence[dict[str, Any]], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Log-log plot of test RMSE against parameters for each family, with the N^-4 reference from the first
    KAN point; written as PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2), dpi=110)
    ax = fig.add_subplot()
    styles = {"KAN": ("#3b6fd8", "o-"), "MLP": ("#e8590c", "s-")}
    for name, (color, style) in styles.items():
        fam = sorted((r for r in rows if r["model"] == name and r["test_rmse"] > 0), key=lambda r: r["n_params"])
        if fam:
            slope = scaling_exponent(rows, name)
            ax.plot([r["n_params"] for r in fam], [r["test_rmse"] for r in fam], style, color=color,
                    label=f"{name} (slope {slope:.2f})" if slope == slope else name)
    kan = sorted((r for r in rows if r["model"] == "KAN" and r["test_rmse"] > 0), key=lambda r: r["n_params"])
    if len(kan) >= 2:
        n0, e0 = kan[0]["n_params"], kan[0]["test_rmse"]
        ns = [n0, kan[-1]["n_params"]]
        ax.plot(ns, [e0 * (n / n0) ** -4 for n in ns], "--", color="#888", label="N$^{-4}$ (theory)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of parameters")
    ax.set_ylabel("test RMSE")
    ax.set_title(title or "KAN vs MLP at equal training budget")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
