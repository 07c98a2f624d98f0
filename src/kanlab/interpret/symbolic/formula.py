"""The formula of a (fully symbolic) KAN: one sympy expression per output, in the input names.

Every active edge must be symbolic (see :func:`~kanlab.interpret.symbolic.auto_symbolic`); multiplication
nodes multiply their two factors.  Constants are snapped to nearby "nice" values (small integers, simple
fractions, rational multiples of π) and the rest rounded to ``digits`` significant digits.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import torch

from .library import get_primitive

__all__ = ["formula", "raw_formula", "edge_formula", "tidy", "canonical", "prettify", "nice_number", "snap_numbers", "round_numbers", "input_names",
           "NotSymbolicError"]


class NotSymbolicError(ValueError):
    """The model still has numeric (spline) edges, so it has no closed-form formula yet."""


def input_names(model, names: Sequence[str] | None = None) -> list[str]:
    """``names`` checked against the model's inputs, else the names stored on the model, else ``x1, x2, ...``."""
    n = model.in_features
    if names is None:
        names = getattr(model, "names", None) or [f"x{k + 1}" for k in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"need {n} input names, got {len(names)}: {names}")
    if len(set(names)) != n:
        raise ValueError(f"input names must be distinct, got {names}")
    return names


def _symbols(names: Sequence[str]):
    import sympy

    return [sympy.Symbol(s) for s in names]


def raw_formula(model, names: Sequence[str] | None = None) -> list:
    """Unsimplified sympy expressions, one per output, with the model's constants as floats.

    Raises :class:`NotSymbolicError` listing the edges that are still numeric.
    """
    import sympy

    from ..attribution import _check_model

    _check_model(model)
    names = input_names(model, names)
    numeric = [(l, i, j) for l, layer in enumerate(model.layers)
               for j in range(layer.out_features) for i in range(layer.in_features)
               if layer.mask[j, i] != 0 and not layer.symbolic_name(j, i)]
    if numeric:
        shown = ", ".join(f"(l={l}, i={i}, j={j})" for l, i, j in numeric[:6])
        raise NotSymbolicError(f"{len(numeric)} edge(s) are still numeric splines: {shown}"
                               f"{' ...' if len(numeric) > 6 else ''}; snap them with auto_symbolic or "
                               f"fix_symbolic (or prune them) before asking for a formula")
    values = _symbols(names)
    for l, layer in enumerate(model.layers):
        affine = layer.symbolic_affine.detach().to(torch.float64).cpu()
        bias = layer.bias.detach().to(torch.float64).cpu() if layer.bias is not None else None
        outs = []
        for j in range(layer.out_features):
            acc = sympy.Float(float(bias[j])) if bias is not None else sympy.Integer(0)
            for i in range(layer.in_features):
                if layer.mask[j, i] == 0:
                    continue
                a, b, c, d = (sympy.Float(float(v)) for v in affine[j, i])
                prim = get_primitive(layer.symbolic_name(j, i))
                acc = acc + a * prim.sympy(b * values[i] + c) + d
            outs.append(acc)
        n_sum, n_mult = model.width_pairs[l + 1]
        values = outs[:n_sum] + [outs[n_sum + 2 * m] * outs[n_sum + 2 * m + 1] for m in range(n_mult)]
    return values


def edge_formula(model, l: int, i: int, j: int, var: str | None = None, *, tol: float = 1e-4, digits: int = 4):
    """The symbolic function of edge ``(l, i, j)`` as a sympy expression ``a·f(b·v + c) + d`` in ``var``
    (default: the input name for layer 0, else ``h{l}_{i}``), constants snapped and rounded; None when the
    edge is numeric."""
    import sympy

    layer = model.layers[l]
    name = layer.symbolic_name(j, i)
    if not name:
        return None
    if var is None:
        names = getattr(model, "names", None)
        var = names[i] if l == 0 and names else (f"x{i + 1}" if l == 0 else f"h{l}_{i}")
    a, b, c, d = (sympy.Float(float(v)) for v in layer.symbolic_affine[j, i].detach())
    expr = a * get_primitive(name).sympy(b * sympy.Symbol(var) + c) + d
    return round_numbers(snap_numbers(canonical(expr), tol), digits)


def nice_number(value: float, tol: float = 1e-4, max_denominator: int = 12):
    """The simplest "nice" number within relative tolerance ``tol`` of ``value``: an integer, a fraction
    ``p/q`` with ``q <= max_denominator``, or a rational multiple of π (``q <= 6``); None if none is close."""
    import sympy

    v = float(value)
    scale = max(1.0, abs(v))
    if abs(v) <= tol:
        return sympy.Integer(0)
    n = round(v)
    if abs(v - n) <= tol * scale:
        return sympy.Integer(n)
    frac = Fraction(v).limit_denominator(max_denominator)
    if abs(v - float(frac)) <= tol * scale:
        return sympy.Rational(frac.numerator, frac.denominator)
    over_pi = Fraction(v / math.pi).limit_denominator(6)
    if over_pi != 0 and abs(v - float(over_pi) * math.pi) <= tol * scale:
        return sympy.Rational(over_pi.numerator, over_pi.denominator) * sympy.pi
    return None


def snap_numbers(expr, tol: float = 1e-4, max_denominator: int = 12):
    """Replace every float in ``expr`` that is within ``tol`` (relative) of a nice number by that number."""
    reps = {}
    for f in expr.atoms(_float_type()):
        nice = nice_number(float(f), tol, max_denominator)
        if nice is not None:
            reps[f] = nice
    return expr.xreplace(reps) if reps else expr


def round_numbers(expr, digits: int = 4):
    """Round the remaining floats of ``expr`` to ``digits`` significant digits."""
    import sympy

    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        reps[f] = sympy.Float(float(f"{v:.{digits}g}"), digits) if v != 0 else sympy.Integer(0)
    return expr.xreplace(reps) if reps else expr


def _float_type():
    import sympy

    return sympy.Float


def rebuild(expr):
    """Re-evaluate every node bottom-up (``xreplace`` can leave ``Mul(-1, 2, x)`` unmerged)."""
    if expr.is_Atom:
        return expr
    return expr.func(*[rebuild(a) for a in expr.args])


def tidy(expr):
    """Cheap algebraic clean-up: expand products of sums (not inside exp/log), then recombine powers."""
    import sympy

    expr = rebuild(expr)
    out = sympy.expand(expr, deep=True, mul=True, multinomial=True, power_exp=False, power_base=False, log=False)
    out = sympy.powsimp(out)
    return out


def canonical(expr):
    """Pull numeric factors out of functions so that no two constants do the same job:
    ``log(k·u) → log(k) + log(u)`` (k > 0), ``exp(k + u) → e^k·exp(u)``, ``(k·u)^p → k^p·u^p`` (k > 0 or p an
    integer); then expand products.  The result is equal to ``expr`` wherever ``expr`` is real."""
    import sympy

    def monic(e):
        """``e = c·rest`` with the first non-constant term of ``rest`` having coefficient 1."""
        if e.is_Add:
            terms = e.as_ordered_terms()
            lead = next((t for t in terms if not t.is_Number), None)
            if lead is not None:
                c, head = lead.as_coeff_Mul()
                if c.is_Number and c != 0 and c != 1:
                    others = [t for t in terms if t is not lead]
                    return c, head + sympy.Add(*[sympy.expand(t / c) for t in others])
            return sympy.Integer(1), e
        return e.as_coeff_Mul()

    def walk(e):
        if e.is_Atom:
            return e
        e = e.func(*[walk(a) for a in e.args])
        if isinstance(e, sympy.log):
            c, rest = monic(e.args[0])
            if c.is_Number and c > 0 and c != 1:
                return sympy.log(c) + sympy.log(rest)
        elif isinstance(e, sympy.exp):
            c, rest = sympy.expand(e.args[0]).as_coeff_Add()
            if c.is_Number and c != 0:
                return sympy.exp(c) * sympy.exp(rest)
        elif e.is_Pow and e.exp.is_Number:
            c, rest = monic(e.base)
            if c.is_Number and c != 1 and c != 0 and (c > 0 or e.exp.is_integer):
                return c ** e.exp * rest ** e.exp
        return e

    return tidy(walk(expr))


def prettify(expr, simplify_limit: int = 40):
    """The shortest of a few equivalent forms (``cancel``, ``factor_terms``, and ``simplify`` for small
    expressions), by operation count; the input wins ties."""
    import sympy

    forms = [expr]
    for fn in (sympy.cancel, sympy.factor_terms):
        try:
            forms.append(fn(expr))
        except (sympy.PolynomialError, TypeError, ValueError, RecursionError):
            pass
    if sympy.count_ops(expr) <= simplify_limit and not expr.atoms(sympy.Float):
        try:
            forms.append(sympy.simplify(expr))
        except (TypeError, ValueError, RecursionError):
            pass
    return min(forms, key=lambda e: (sympy.count_ops(e), len(str(e))))


def formula(model, names: Sequence[str] | None = None, *, snap: bool = True, tol: float = 1e-4,
            digits: int = 4, simplify: bool = True) -> list:
    """One sympy expression per output of a fully symbolic ``model``, written in ``names``.

    Arguments:
        names: input names (default: ``model.names`` if set, else ``x1, x2, ...``).
        snap: replace constants within ``tol`` (relative) of small integers, simple fractions or rational
            multiples of π by those values.
        digits: significant digits kept for the remaining constants.
        simplify: expand products and combine like terms (cheap; never calls ``sympy.simplify``).
    """
    exprs = raw_formula(model, names)
    out = []
    for e in exprs:
        if simplify:
            e = canonical(e)
        if snap:
            e = snap_numbers(e, tol)
            if simplify:
                e = prettify(tidy(e))
        out.append(round_numbers(e, digits))
    return out
