"""Constants of a formula, fitted to data and snapped only where the data agree.

:func:`fit_constants` treats every float of an expression as a free constant and fits them all by LBFGS
(float64) to ``(x, y)``.  :func:`snap_constants` then tries, constant by constant (the ones closest to a
nice value first), to replace a constant by 0, a small integer, a simple fraction or a rational multiple of
π, refits the others, and keeps the replacement only when the error stays within ``rel_tol`` of the
unsnapped fit (plus ``abs_tol``·std(y)).  A constant that the data really need is therefore never snapped,
and terms whose coefficient snaps to 0 disappear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import torch
from torch import Tensor

from .expression import expression_symbols, torch_function
from .formula import canonical, prettify, rebuild, tidy

__all__ = ["fit_constants", "snap_constants", "SnapResult", "candidates_for", "expression_rmse"]


def _parametrize(expr):
    """Replace every float of ``expr`` by a symbol ``_c{k}``; return (template, {symbol: value})."""
    import sympy

    floats = sorted(expr.atoms(sympy.Float), key=lambda f: (abs(float(f)), str(f)))
    params = {}
    reps = {}
    for k, f in enumerate(floats):
        s = sympy.Symbol(f"_c{k}")
        reps[f] = s
        params[s] = float(f)
    return expr.xreplace(reps), params


def _substitute(template, params: dict):
    import sympy

    return rebuild(template.xreplace({s: sympy.Float(v) for s, v in params.items()}))


def _columns(x: Tensor) -> list[Tensor]:
    return list(x.to(torch.float64).unbind(-1))


def expression_rmse(expr, names: Sequence[str], x: Tensor, y: Tensor) -> float:
    """RMSE of ``expr`` (in the variables ``names``, columns of ``x (N, n)``) against ``y (N,)``; inf when the
    expression is not finite on the data."""
    f = torch_function(expr, expression_symbols(expr, names))
    with torch.no_grad():
        pred = f(*_columns(x))
    err = torch.sqrt(torch.mean((pred.reshape(-1) - y.reshape(-1).to(torch.float64)) ** 2))
    return float(err) if torch.isfinite(err) else math.inf


def _fit(template, params: dict, names: Sequence[str], x: Tensor, y: Tensor, steps: int) -> tuple[dict, float]:
    """LBFGS fit of ``params`` (a dict symbol → value) in ``template``; returns (values, rmse)."""
    syms = list(params)
    variables = expression_symbols(template, names)
    f = torch_function(template, variables + syms)
    cols = _columns(x)
    target = y.reshape(-1).to(torch.float64)

    def loss_of(theta: Tensor) -> Tensor:
        pred = f(*cols, *theta.unbind(0)) if syms else f(*cols)
        return torch.mean((pred.reshape(-1) - target) ** 2)

    theta = torch.tensor([params[s] for s in syms], dtype=torch.float64)
    with torch.no_grad():
        start = float(loss_of(theta))
    if not syms or steps <= 0:
        return dict(params), math.sqrt(start) if math.isfinite(start) else math.inf
    theta.requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-30, tolerance_change=1e-30)

    def closure():
        opt.zero_grad()
        loss = loss_of(theta)
        if not torch.isfinite(loss):
            return loss
        loss.backward()
        return loss

    best = theta.detach().clone()
    try:
        opt.step(closure)
        with torch.no_grad():
            end = float(loss_of(theta))
        if math.isfinite(end) and (end <= start or not math.isfinite(start)) and torch.isfinite(theta).all():
            best = theta.detach().clone()
        else:
            end = start
    except (RuntimeError, IndexError):  # IndexError: torch's strong-Wolfe search on a non-finite loss
        end = start
    values = {s: float(v) for s, v in zip(syms, best)}
    return values, math.sqrt(end) if math.isfinite(end) else math.inf


def fit_constants(expr, names: Sequence[str], x: Tensor, y: Tensor, *, steps: int = 200):
    """Fit every float constant of ``expr`` to data ``x (N, n)``, ``y (N,)``; returns (expression, rmse)."""
    template, params = _parametrize(expr)
    values, err = _fit(template, params, names, x, y, steps)
    return _substitute(template, values), err


def candidates_for(value: float, max_denominator: int = 12) -> list:
    """Nice values to try for a constant, most plausible first: 0, the nearest integer, the nearest simple
    fraction and the nearest rational multiple of π (those within 25% of ``value``)."""
    import sympy

    v = float(value)
    out = []

    def add(c):
        if all(c != o for o in out):
            out.append(c)

    near = []
    n = round(v)
    near.append((abs(v - n), sympy.Integer(n)))
    frac = Fraction(v).limit_denominator(max_denominator)
    near.append((abs(v - float(frac)), sympy.Rational(frac.numerator, frac.denominator)))
    over_pi = Fraction(v / math.pi).limit_denominator(6)
    if over_pi != 0:
        near.append((abs(v - float(over_pi) * math.pi),
                     sympy.Rational(over_pi.numerator, over_pi.denominator) * sympy.pi))
    near.sort(key=lambda t: (t[0], sympy.count_ops(t[1])))
    scale = max(abs(v), 1e-300)
    close = [c for dist, c in near if dist <= 1e-3 * max(1.0, abs(v))]
    for c in close:
        add(c)
    add(sympy.Integer(0))
    add(sympy.Integer(1 if v > 0 else -1))  # degenerate scales: another constant absorbs the difference
    for dist, c in near:
        if dist <= 0.25 * scale:
            add(c)
    return out


@dataclass
class SnapResult:
    """Outcome of :func:`snap_constants`."""

    expr: object
    rmse: float
    base_rmse: float
    snapped: list = field(default_factory=list)  # [(old value, new value)]
    kept: list = field(default_factory=list)  # values the data needed


def _closeness(v: float) -> float:
    """How close ``v`` is to a nice value, weighted by how nice it is (an integer beats 6/7, π/2 counts like
    a denominator of 3): smaller is closer.  Constants are snapped in this order."""
    import sympy

    best = math.inf
    for c in candidates_for(v):
        q = int(c.q) if isinstance(c, sympy.Rational) else 3
        best = min(best, abs(v - float(c)) / max(1.0, abs(v)) * q)
    return best


def snap_constants(expr, names: Sequence[str], x: Tensor, y: Tensor, *, rel_tol: float = 0.2,
                   abs_tol: float = 1e-6, steps: int = 100, max_refits: int = 100) -> SnapResult:
    """Greedy, verified snapping of the constants of ``expr`` (see the module doc).

    Arguments:
        expr: a sympy expression in the variables ``names`` (columns of ``x``).
        x, y: data ``(N, n)``, ``(N,)``.
        rel_tol, abs_tol: a snap is kept when the refitted RMSE is at most
            ``(1 + rel_tol)·base + abs_tol·std(y)`` where ``base`` is the RMSE with every constant free.
        steps: LBFGS iterations per refit.  max_refits: budget of refits.
    """
    import sympy

    y = y.reshape(-1).to(torch.float64)
    expr = canonical(expr)  # one constant per job (log(k·u) → log k + log u, ...)
    template, params = _parametrize(expr)
    params, base = _fit(template, params, names, x, y, 2 * steps)
    limit = (1 + rel_tol) * base + abs_tol * float(y.std())
    result = SnapResult(expr=_substitute(template, params), rmse=base, base_rmse=base)
    refits = 0
    current = base
    for _ in range(2):  # a second pass: a constant kept early may be snappable once the others are
        decided: set = set()
        snapped_before = len(result.snapped)
        result.kept = []
        while refits < max_refits:
            open_syms = [s for s in params if s not in decided and s in template.free_symbols]
            if not open_syms:
                break
            s = min(open_syms, key=lambda q: _closeness(params[q]))
            decided.add(s)
            for cand in candidates_for(params[s]):
                if refits >= max_refits:
                    break
                trial = rebuild(template.xreplace({s: cand}))
                rest = {q: v for q, v in params.items() if q != s and q in trial.free_symbols}
                refits += 1
                values, err = _fit(trial, rest, names, x, y, steps)
                if err <= limit:
                    result.snapped.append((params[s], cand))
                    template, params, current = trial, values, err
                    break
            else:
                result.kept.append(params[s])
        if not result.kept or len(result.snapped) == snapped_before:
            break
    expr, current = _final_snap(_substitute(template, params), names, x, y, limit, current)
    result.expr = prettify(tidy(expr))
    result.rmse = current
    return result


def _final_snap(expr, names, x: Tensor, y: Tensor, limit: float, current: float, tol: float = 1e-6):
    """Snap the floats left that are within ``tol`` of a nice value without refitting (all at once, else
    one by one), keeping each change only while the error stays under ``limit``."""
    import sympy

    from .formula import nice_number

    reps = {}
    for f in expr.atoms(sympy.Float):
        nice = nice_number(float(f), tol)
        if nice is not None:
            reps[f] = nice
    if not reps:
        return expr, current
    trial = tidy(expr.xreplace(reps))
    err = expression_rmse(trial, names, x, y)
    if err <= limit:
        return trial, err
    for f, nice in reps.items():
        trial = tidy(expr.xreplace({f: nice}))
        err = expression_rmse(trial, names, x, y)
        if err <= limit:
            expr, current = trial, err
    return expr, current
