"""The science workflow behind ``kanlab fit --prune --symbolic``: sparsify, prune, refine, snap to symbols,
retrain the constants, and read off a verified formula.

``science_workflow(model, data, job) -> (model, extra)`` is what :mod:`kanlab.workflow` calls.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import torch
from torch import Tensor

from ..models.kan import KAN, normalize_widths
from ..utils import seeded
from .prune import prune
from .symbolic.auto import auto_symbolic
from .symbolic.expression import to_torch
from .symbolic.formula import raw_formula
from .symbolic.refine import expression_rmse, snap_constants
from .training import refit_symbolic_constants, train_lbfgs

__all__ = ["science_workflow", "discover_formula", "sparsify", "rescale_output", "formula_confidence", "Discovery",
           "SymbolicSettings"]

log = logging.getLogger(__name__)


@dataclass
class SymbolicSettings:
    """Schedule of one discovery attempt."""

    grid: int = 5
    lamb: float = 0.01
    lamb_product: float = 0.003  # for the [n, (0, 1)] product shape
    sparsify_steps: int = 20
    prune_rounds: int = 3
    warmup_steps: int = 0  # unregularised steps before the sparsity phase
    threshold: float = 0.03
    refine_grid: int = 10
    refine_steps: int = 20
    constant_steps: int = 20
    weight_simple: float = 1.0
    max_train_samples: int = 500
    exact_tol: float = 1e-7  # relative test RMSE under which a formula counts as reproducing the data
    budget_s: float = 30.0  # CPU seconds after which no further attempt starts (beyond the first two)


@dataclass
class Discovery:
    """One attempt's outcome."""

    model: Any
    expr: Any
    train_rmse: float
    rel_train_rmse: float  # decides whether the formula is verified (the test data stay untouched)
    test_rmse: float
    rel_test_rmse: float
    edges: list = field(default_factory=list)
    seconds: float = 0.0
    width: list = field(default_factory=list)
    network_rmse: float = math.nan  # the pruned spline network's training RMSE before snapping


def _data(data: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, y = data["train_input"], data["train_label"]
    xt, yt = data.get("test_input"), data.get("test_label")
    if xt is None or len(xt) == 0:
        xt, yt = x, y
    if y.dim() == 1:
        y, yt = y[:, None], yt[:, None]
    return x, y, xt, yt


def _edge_report(model, names, records) -> list[dict]:
    out = []
    for r in records:
        out.append({"layer": r["layer"], "i": r["i"], "j": r["j"], "expr": r["name"], "r2": r["r2"],
                    "alternatives": [{"expr": n, "r2": v} for n, v in r["alternatives"]],
                    **({"lookahead": r["lookahead"]} if "lookahead" in r else {})})
    return out


def sparsify(model, x: Tensor, y: Tensor, *, lamb: float = 0.01, steps: int = 20, threshold: float = 0.03,
             rounds: int = 3, round_steps: int = 10):
    """Train ``model`` with sparsity regularisation, then prune progressively: prune, train the smaller
    model with the same regularisation for ``round_steps`` steps, prune again, until the widths stop
    shrinking (at most ``rounds`` prunings).  Returns the pruned model (``model`` itself is trained in
    place but not pruned)."""
    train_lbfgs(model, x, y, steps=steps, lamb=lamb, update_grid_every=5, stop_grid_update=steps - 5)
    current = model
    for r in range(rounds):
        pruned = prune(current, x, threshold=threshold)
        shrunk = [sum(p) for p in pruned.width_pairs] != [sum(p) for p in current.width_pairs]
        current = pruned
        if not shrunk or r == rounds - 1:
            break
        train_lbfgs(current, x, y, steps=round_steps, lamb=lamb)
    return current


@torch.no_grad()
def rescale_output(model, scale: float, shift: float = 0.0) -> None:
    """Make ``model`` predict ``scale·f + shift`` where it predicted ``f`` (undoes label standardisation).

    With multiplication nodes in the output layer only ``shift = 0`` is possible (one factor is scaled)."""
    last = model.layers[-1]
    n_sum, n_mult = model.width_pairs[-1]
    rows = list(range(n_sum)) + [n_sum + 2 * m for m in range(n_mult)]  # one factor per product
    if n_mult and shift:
        raise ValueError("cannot shift the output of a multiplication node")
    r = torch.tensor(rows)
    last.base_weight[r] *= scale
    last.spline_scaler[r] *= scale
    last.symbolic_affine[r, :, 0] *= scale
    last.symbolic_affine[r, :, 3] *= scale
    if last.bias is not None:
        last.bias[r] *= scale
        last.bias[: n_sum] += shift


def discover_formula(width: Sequence, data: dict, *, seed: int = 0, dtype=torch.float64,
                     settings: SymbolicSettings | None = None, names: Sequence[str] | None = None) -> Discovery:
    """One attempt: train a KAN of ``width`` with sparsity regularisation, prune, refine, snap, fit constants."""
    s = settings or SymbolicSettings()
    start = time.perf_counter()
    x, y, xt, yt = _data(data)
    x, y, xt, yt = (t.to(dtype) for t in (x, y, xt, yt))
    names = list(names or data.get("names") or [f"x{k + 1}" for k in range(x.shape[1])])
    x_all, y_all = x, y
    if len(x) > s.max_train_samples:  # structure discovery on a subsample; constants are fitted on all rows
        x, y = x[:s.max_train_samples], y[:s.max_train_samples]
    # the network learns standardised labels, so that the sparsity strength means the same for every scale
    # (only rescaled, not centred, when the output node multiplies: a product cannot absorb a shift)
    mult_output = normalize_widths(list(width))[-1][1] > 0
    y_mean = 0.0 if mult_output else float(y.mean())
    y_std = float((y - y_mean).pow(2).mean().sqrt()) or 1.0
    y = (y - y_mean) / y_std
    lo, hi = float(x.min()), float(x.max())
    with seeded(seed):
        model = KAN(list(width), grid_size=s.grid, grid_range=(lo, hi), dtype=dtype)
    marks = [time.perf_counter()]
    if s.warmup_steps:
        train_lbfgs(model, x, y, steps=s.warmup_steps, update_grid_every=5, stop_grid_update=s.warmup_steps)
    model = sparsify(model, x, y, lamb=s.lamb, steps=s.sparsify_steps, threshold=s.threshold,
                     rounds=s.prune_rounds)
    marks.append(time.perf_counter())
    log.info("sparsify: pruned to %s", model.widths)
    if s.refine_grid and s.refine_grid != s.grid:
        model.refine(s.refine_grid)
    r = train_lbfgs(model, x, y, steps=s.refine_steps, update_grid_every=5, stop_grid_update=s.refine_steps - 5)
    network_rmse = r * y_std
    marks.append(time.perf_counter())
    log.info("refine: rmse %.2e", r)
    records = auto_symbolic(model, x, y, weight_simple=s.weight_simple)
    marks.append(time.perf_counter())
    consts = [l.symbolic_affine for l in model.layers if "symbolic_affine" in l._parameters]
    consts += [l.bias for l in model.layers if l.bias is not None]
    r = train_lbfgs(model, x, y, steps=s.constant_steps, params=consts)
    marks.append(time.perf_counter())
    log.info("symbolic: rmse %.2e", r)
    expr = raw_formula(model, names)[0] * y_std + y_mean
    rescale_output(model, y_std, y_mean)
    snapped = snap_constants(expr, names, x_all, y_all[:, 0])
    rel_train = snapped.rmse / (float(y_all.std()) or 1.0)
    if rel_train <= s.exact_tol:
        # the data are reproduced exactly, so the model must be too; the LBFGS above stops its constants at a
        # relative error of ~1e-6..1e-4 (a first-order method on a redundant, ill-conditioned parametrisation):
        # Gauss–Newton steps on all training rows take them to the precision the formula shows is reachable
        r = refit_symbolic_constants(model, x_all, y_all)
        log.info("verified: model rmse %.2e after the constant refit", r)
    marks.append(time.perf_counter())
    log.info("phase seconds: %s", [round(b - a, 1) for a, b in zip(marks, marks[1:])])
    expr = snapped.expr
    test = expression_rmse(expr, names, xt, yt[:, 0])
    return Discovery(model=model, expr=expr, train_rmse=snapped.rmse, rel_train_rmse=rel_train, test_rmse=test,
                     rel_test_rmse=test / (float(yt.std()) or 1.0), edges=_edge_report(model, names, records),
                     seconds=time.perf_counter() - start, network_rmse=network_rmse)


def _product_width(width: Sequence) -> list | None:
    """The fallback shape for a plain width with ``n >= 2`` inputs and one output: ``[n, (0, 1)]``, one
    multiplication node of two sums of edges (``x·y``, ``sin(x)·exp(-y)``, ``x·(x² - 2y)``)."""
    if any(not isinstance(w, int) for w in width) or width[0] < 2 or width[-1] != 1:
        return None
    return [width[0], (0, 1)]


def _verified(d: Discovery, tol: float) -> bool:
    """The formula reproduces the training data to ``tol`` (relative RMSE)."""
    return math.isfinite(d.rel_train_rmse) and d.rel_train_rmse <= tol


def _best(attempts: list[Discovery], tol: float) -> Discovery:
    exact = [d for d in attempts if _verified(d, tol)]
    if exact:
        import sympy

        return min(exact, key=lambda d: sympy.count_ops(d.expr))
    return min(attempts, key=lambda d: d.rel_train_rmse if math.isfinite(d.rel_train_rmse) else math.inf)


def _symbolic(model, data: dict, job) -> tuple[Any, dict[str, Any]]:
    import sympy

    start = time.perf_counter()
    label = data["train_label"]
    if label.dim() == 2 and label.shape[1] != 1:
        raise ValueError(f"--symbolic finds a formula for one target column, the data have {label.shape[1]}")
    settings = SymbolicSettings()
    tol = settings.exact_tol
    width = list(getattr(model, "widths", None) or job.width)
    product = _product_width(width)
    plain = settings
    # a product node fights the sparsity penalty (a product of two small factors is smaller still)
    prod = replace(settings, lamb=settings.lamb_product, refine_steps=2 * settings.refine_steps)
    plans = []
    for k in range(4):  # the given width first, then the product shape, then other initialisations
        plans.append((width, job.seed + k, plain))
        if product is not None:
            plans.append((product, job.seed + k, prod))
    attempts: list[Discovery] = []
    cpu_start = time.process_time()
    for n_plan, (w, seed, plan_settings) in enumerate(plans):
        # the first two plans always run; later ones only while the CPU budget lasts (CPU time, not wall
        # time, so that a busy machine does not change the result)
        if n_plan >= 2 and time.process_time() - cpu_start > settings.budget_s:
            break
        try:
            d = discover_formula(w, data, seed=seed, dtype=torch.float64, settings=plan_settings)
        except (ValueError, RuntimeError) as err:  # one failed attempt must not end the workflow
            log.warning("symbolic attempt with width %s failed: %s", w, err)
            continue
        d.width = w
        attempts.append(d)
        log.info("attempt %s seed %d: %s (relative train RMSE %.1e, %.1fs)", w, seed, d.expr, d.rel_train_rmse,
                 d.seconds)
        if _verified(d, tol):
            break
    if not attempts:
        raise ValueError("symbolic regression failed in every attempt; try --width or more --steps")
    best = _best(attempts, tol)
    names = list(data.get("names") or [f"x{k + 1}" for k in range(data["train_input"].shape[1])])
    _, _, xt, _ = _data(data)
    xt = xt.to(torch.float64)
    with torch.no_grad():  # the formula and the returned model must agree
        agree = float(torch.sqrt(torch.mean((to_torch(best.expr, names)(xt) - best.model(xt)[:, 0]) ** 2)))
    best.model.to(job.dtype)
    extra = {
        "formula": str(best.expr),
        "formula_latex": sympy.latex(best.expr),
        "formula_test_rmse": best.test_rmse,
        "formula_train_rmse": best.train_rmse,
        "formula_relative_test_rmse": best.rel_test_rmse,
        "formula_model_rmse": agree,
        "formula_verified": _verified(best, tol),
        "network_train_rmse": best.network_rmse,
        "symbolic_edges": best.edges,
        "symbolic_min_r2": min((e["r2"] for e in best.edges), default=math.nan),
        "symbolic_attempts": [{"width": [list(v) if isinstance(v, tuple) else v for v in d.width],
                               "formula": str(d.expr), "formula_test_rmse": d.test_rmse,
                               "relative_train_rmse": d.rel_train_rmse, "relative_test_rmse": d.rel_test_rmse,
                               "seconds": d.seconds} for d in attempts],
        "input_names": names,
        "symbolic_basis": "bspline",
    }
    return best.model, extra


def _prune_only(model, data: dict, job) -> tuple[Any, dict[str, Any]]:
    settings = SymbolicSettings()
    x, y, _, _ = _data(data)
    x, y = x.to(job.dtype), y.to(job.dtype)
    before = list(model.widths)
    # the penalty grows like std(y), the error like var(y): scale lamb so that it means the same for any y
    lamb = settings.lamb * (float(y.std()) or 1.0)
    pruned = sparsify(model, x, y, lamb=lamb, steps=0 if job.lamb else settings.sparsify_steps,
                      threshold=settings.threshold, rounds=settings.prune_rounds)
    train_lbfgs(pruned, x, y, steps=settings.refine_steps)
    return pruned, {"width_before_pruning": [list(v) if isinstance(v, tuple) else v for v in before]}


def formula_confidence(result: dict[str, Any]) -> str:
    """One line saying how far a workflow result's formula can be trusted (for the CLI)."""
    ftrain = result.get("formula_train_rmse", math.nan)
    net = result.get("network_train_rmse", math.nan)
    edges = f"lowest edge R² {result.get('symbolic_min_r2', math.nan):.6f}"
    if result.get("formula_verified"):
        return "verified: the formula reproduces the training data"
    if ftrain <= 1.2 * net:
        return (f"as accurate as the spline network (formula train RMSE {ftrain:.2e}, network {net:.2e}): "
                f"right up to the noise in the data, but not verified; {edges}")
    return (f"APPROXIMATE: the formula does not reproduce the data (train RMSE {ftrain:.2e}, spline network "
            f"{net:.2e}); {edges}; see symbolic_edges and symbolic_attempts in --json")


def science_workflow(model, data: dict, job) -> tuple[Any, dict[str, Any]]:
    """Prune and/or snap to symbols, as asked by ``job`` (a :class:`kanlab.workflow.FitJob`).

    With ``job.symbolic`` the workflow runs its own schedule from scratch (``model`` gives the width):
    sparsity-regularised training, pruning, grid refinement, symbolic snapping with lookahead, constant
    retraining and verified constant snapping (the model of a verified formula then gets its constants refitted
    by Gauss–Newton, so that it predicts as exactly as the formula); if the formula does not reproduce the test
    data, it tries again with multiplication nodes and then with another seed, and keeps the best formula.
    Discovery always uses B-spline edges in float64 (grid extension, exact snapping), whatever
    ``job.basis``/``job.dtype`` say; the returned model is converted to ``job.dtype``.
    A formula is *verified* when it reproduces the training data to a relative RMSE of 1e-7; the test data
    are only used for the reported ``formula_test_rmse``.  Attempts stop at the first verified formula or
    when the CPU budget is spent; the schedule ignores ``job.steps``/``job.grids``.
    With only ``job.prune`` the trained ``model`` is regularised (if it was not), pruned progressively and
    retrained.

    Returns ``(model, extra)``: ``extra`` holds ``formula`` (a sympy-parsable string in the input column
    names), ``formula_test_rmse``, ``formula_model_rmse`` (formula vs returned model), ``formula_verified``,
    ``symbolic_edges`` (``[{layer, i, j, expr, r2, alternatives}]``) and the attempts made.
    """
    if getattr(job, "symbolic", False):
        return _symbolic(model, data, job)
    return _prune_only(model, data, job)
