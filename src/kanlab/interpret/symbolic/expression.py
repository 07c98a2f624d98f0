"""Symbolic expressions as code: sympy → torch (for fitting constants and exporting) and the exporters
(LaTeX, a numpy function, a torch function).

The torch translation walks the sympy tree once and builds a tree of small closures; it knows ``Add``,
``Mul``, ``Pow``, numbers (``pi``, ``E``, rationals, floats), symbols and the functions of the primitive
library (``exp``, ``log``, ``sin``, ``cos``, ``tan``, ``sinh``, ``cosh``, ``tanh``, ``asin``, ``acos``,
``atan``, ``atanh``, ``Abs``, ``sign``).  Anything else raises a clear error.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["torch_function", "to_torch", "to_numpy", "to_latex", "expression_symbols"]

_FUNCS = {
    "exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "asin": torch.asin, "acos": torch.acos,
    "atan": torch.atan, "atanh": torch.atanh, "Abs": torch.abs, "sign": torch.sign,
}


def _compile(expr, index: Mapping) -> Callable[[Sequence[Tensor]], Tensor]:
    """Closure evaluating ``expr`` given a list of leaf tensors (symbol ``s`` → ``leaves[index[s]]``)."""
    import sympy

    if expr.is_Symbol:
        if expr not in index:
            raise ValueError(f"the expression uses {expr}, which is not one of the given variables "
                             f"{[str(s) for s in index]}")
        k = index[expr]
        return lambda leaves: leaves[k]
    if expr.is_Number or expr.is_NumberSymbol:
        value = float(expr)
        return lambda leaves: value
    args = [_compile(a, index) for a in expr.args]
    if expr.is_Add:
        def add(leaves):
            out = args[0](leaves)
            for f in args[1:]:
                out = out + f(leaves)
            return out
        return add
    if expr.is_Mul:
        def mul(leaves):
            out = args[0](leaves)
            for f in args[1:]:
                out = out * f(leaves)
            return out
        return mul
    if expr.is_Pow:
        base, exp_ = args
        e = expr.args[1]
        if e.is_Integer:
            n = int(e)
            return lambda leaves: base(leaves) ** n
        if e == sympy.Rational(1, 2):
            return lambda leaves: torch.sqrt(torch.as_tensor(base(leaves)))
        if e == sympy.Rational(-1, 2):
            return lambda leaves: torch.rsqrt(torch.as_tensor(base(leaves)))
        return lambda leaves: torch.as_tensor(base(leaves)) ** exp_(leaves)
    name = type(expr).__name__
    if name in _FUNCS and len(args) == 1:
        fn = _FUNCS[name]
        inner = args[0]
        return lambda leaves: fn(torch.as_tensor(inner(leaves)))
    raise ValueError(f"cannot translate {name} ({expr}) to torch; supported: +, *, **, numbers and "
                     f"{', '.join(sorted(_FUNCS))}")


def torch_function(expr, symbols: Sequence) -> Callable[..., Tensor]:
    """``f(*tensors)`` evaluating ``expr`` with ``symbols[k]`` bound to the k-th argument (broadcasting)."""
    index = {s: k for k, s in enumerate(symbols)}
    body = _compile(expr, index)

    def f(*values: Tensor) -> Tensor:
        if len(values) != len(symbols):
            raise ValueError(f"expected {len(symbols)} inputs ({', '.join(map(str, symbols))}), got {len(values)}")
        out = body(list(values))
        like = next((v for v in values if isinstance(v, Tensor)), None)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=like.dtype if like is not None else None)
        if like is not None and out.shape != like.shape:
            out = out.expand(torch.broadcast_shapes(out.shape, like.shape))
        return out

    return f


def expression_symbols(expr, names: Sequence[str]) -> list:
    """The sympy symbols named ``names`` (taking the expression's own symbols when they match)."""
    import sympy

    own = {s.name: s for s in expr.free_symbols}
    return [own.get(n, sympy.Symbol(n)) for n in names]


def to_torch(expr, names: Sequence[str]) -> Callable[[Tensor], Tensor]:
    """A torch function of one tensor ``(*, len(names))`` → ``(*,)`` (column ``k`` is ``names[k]``)."""
    f = torch_function(expr, expression_symbols(expr, names))
    n = len(names)

    def g(x: Tensor) -> Tensor:
        if x.shape[-1] != n:
            raise ValueError(f"expected input (*, {n}) with columns {list(names)}, got {tuple(x.shape)}")
        return f(*x.unbind(-1))

    return g


def to_numpy(expr, names: Sequence[str]) -> Callable:
    """A numpy function ``f(x1, x2, ...)`` of the named inputs (``sympy.lambdify``)."""
    import sympy

    return sympy.lambdify(expression_symbols(expr, names), expr, modules="numpy")


def to_latex(expr) -> str:
    """LaTeX source of the expression."""
    import sympy

    return sympy.latex(expr)
