"""Data sets from formulas: ``make_dataset("exp(sin(pi*x)+y**2)", ranges={"x": (-1, 1)})``."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["make_dataset", "parse_formula", "parse_ranges"]


def parse_formula(expr: str) -> tuple[Callable[..., Tensor], list[str]]:
    """A sympy string → (torch function of the variables, variable names sorted alphabetically)."""
    import sympy

    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("formula must be a non-empty string such as 'exp(sin(pi*x)+y**2)'")
    try:
        parsed = sympy.sympify(expr, locals={"e": sympy.E})
    except (sympy.SympifyError, SyntaxError, TypeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(err).__name__
        raise ValueError(f"cannot parse formula {expr!r} ({reason}); write a sympy expression such as "
                         f"'exp(sin(pi*x)+y**2)'") from None
    if not isinstance(parsed, sympy.Expr):
        raise ValueError(f"formula {expr!r} is not an expression")
    symbols = sorted(parsed.free_symbols, key=lambda s: s.name)
    if not symbols:
        raise ValueError(f"formula {expr!r} has no variables")
    fn = sympy.lambdify(symbols, parsed, modules="numpy")
    names = [s.name for s in symbols]

    def torch_fn(*cols: Tensor) -> Tensor:
        import numpy as np

        with np.errstate(all="ignore"):
            out = fn(*[c.detach().cpu().numpy() for c in cols])
        out = np.broadcast_to(np.asarray(out, dtype=np.float64), cols[0].shape)
        return torch.as_tensor(np.array(out), dtype=cols[0].dtype)

    return torch_fn, names


def parse_ranges(ranges, names: Sequence[str]) -> list[tuple[float, float]]:
    """Ranges given as None (all ``[-1, 1]``), one ``(lo, hi)`` for every variable, a list of pairs, a dict
    ``{name: (lo, hi)}`` (missing names default to ``[-1, 1]``), or a CLI string ``"x=-1:1,y=0:2"``."""
    if ranges is None:
        out = [(-1.0, 1.0)] * len(names)
    elif isinstance(ranges, str):
        d: dict[str, tuple[float, float]] = {}
        for part in filter(None, (p.strip() for p in ranges.split(","))):
            if "=" not in part or ":" not in part:
                raise ValueError(f"bad range {part!r}; expected NAME=LOW:HIGH, e.g. x=-1:1")
            name, span = part.split("=", 1)
            lo, hi = span.split(":", 1)
            try:
                d[name.strip()] = (float(lo), float(hi))
            except ValueError:
                raise ValueError(f"bad range {part!r}; LOW and HIGH must be numbers") from None
        return parse_ranges(d, names)
    elif isinstance(ranges, Mapping):
        unknown = set(ranges) - set(names)
        if unknown:
            raise ValueError(f"ranges name unknown variables {sorted(unknown)}; the formula's variables are {names}")
        out = [tuple(map(float, ranges.get(n, (-1.0, 1.0)))) for n in names]
    else:
        seq = list(ranges)
        if len(seq) == 2 and all(isinstance(v, (int, float)) for v in seq):
            out = [(float(seq[0]), float(seq[1]))] * len(names)
        elif len(seq) == len(names):
            out = [tuple(map(float, r)) for r in seq]
        else:
            raise ValueError(f"need one (low, high) range per variable ({len(names)}), got {len(seq)}")
    for name, (lo, hi) in zip(names, out):
        if not (lo < hi) or not all(map(lambda v: v == v and abs(v) != float("inf"), (lo, hi))):
            raise ValueError(f"range of {name!r} must be finite with low < high, got ({lo}, {hi})")
    return out


def make_dataset(formula: str | Callable[[Tensor], Tensor], ranges=None, n_train: int = 1000,
                 n_test: int = 1000, seed: int = 0, *, n_var: int | None = None, noise: float = 0.0,
                 dtype: torch.dtype | None = None) -> dict:
    """Sample a regression data set from a formula, uniformly over box ranges.

    Arguments:
        formula: a sympy string such as ``"exp(sin(pi*x)+y**2)"`` (variables sorted by name become the
            input columns) or a callable mapping ``(N, n_var)`` inputs to ``(N,)`` or ``(N, n_out)``.
        ranges: see :func:`parse_ranges`.
        n_train, n_test: sample counts.  seed: a local generator's seed (global RNGs untouched).
        n_var: number of inputs, required for a callable.  noise: std of Gaussian label noise.
    Returns:
        dict with ``train_input (n_train, n_var)``, ``train_label (n_train, n_out)``, ``test_input``,
        ``test_label`` and ``names`` (input column names).
    """
    from ..validation import check_nonnegative_int, check_nonnegative_number, check_positive_int, check_seed

    check_positive_int("n_train", n_train)
    check_nonnegative_int("n_test", n_test)
    check_nonnegative_number("noise", noise)
    check_seed(seed)
    if n_var is not None:
        check_positive_int("n_var", n_var)
    dtype = dtype or torch.get_default_dtype()
    if isinstance(formula, str):
        fn, names = parse_formula(formula)

        def target(x: Tensor) -> Tensor:
            return fn(*x.unbind(-1))
    elif callable(formula):
        if n_var is None:
            raise ValueError("n_var is required when formula is a callable")
        names = [f"x{i + 1}" for i in range(n_var)]
        target = formula
    else:
        raise TypeError(f"formula must be a string or a callable, got {type(formula).__name__}")
    box = torch.tensor(parse_ranges(ranges, names), dtype=torch.float64)
    gen = torch.Generator().manual_seed(int(seed))

    def sample(n: int) -> tuple[Tensor, Tensor]:
        u = torch.rand(n, len(names), generator=gen, dtype=torch.float64)
        x = (box[:, 0] + u * (box[:, 1] - box[:, 0])).to(dtype)
        y = target(x)
        if not isinstance(y, Tensor) or y.dim() == 0 or y.shape[0] != n:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"the formula must return a tensor of shape (N,) or (N, n_out) for inputs (N, "
                             f"{len(names)}); got {got} for N={n}")
        y = y.to(dtype).reshape(n, -1)
        if noise:
            y = y + noise * torch.randn(y.shape, generator=gen, dtype=torch.float64).to(dtype)
        if not torch.isfinite(y).all():
            raise ValueError("the formula gives NaN or infinite values on the given ranges; narrow the ranges")
        return x, y

    x_tr, y_tr = sample(n_train)
    x_te, y_te = sample(n_test) if n_test else (x_tr[:0], y_tr[:0])
    return {"train_input": x_tr, "train_label": y_tr, "test_input": x_te, "test_label": y_te, "names": names}
