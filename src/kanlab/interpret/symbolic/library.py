"""The registry of symbolic primitives an edge can be snapped to.

Each :class:`Primitive` carries a torch function (exact, for fitting and checking), a *safe* torch function (the
argument clamped into the valid domain, used inside models so that retraining never produces NaN), a sympy
function, its valid domain and a complexity.  An edge snapped to primitive ``f`` computes
``a·f(b·x + c) + d``.  ``free`` says which of ``b`` and ``c`` are searched when fitting; the others are fixed
because they are redundant (``(b·x)²`` is ``b²·x²``, so ``x^2`` only searches the shift ``c``;
``exp(b·x + c) = e^c·exp(b·x)``, so ``exp`` only searches the scale ``b``).

New primitives are added with :func:`register_primitive`; names are JSON-safe strings stored on the layers
(never functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Primitive", "register_primitive", "get_primitive", "list_primitives", "PRIMITIVES"]

_EPS = 1e-6


@dataclass(frozen=True)
class Primitive:
    """One symbolic function.

    Attributes:
        name: registry key (stored on layers).
        torch_fn: the exact function on tensors.
        sympy_fn: builds the sympy expression from a sympy argument.
        complexity: cost used when ranking candidates (``0`` for the zero function, 1 for ``x``, ...).
        free: which of ``"b"`` (scale) and ``"c"`` (shift) are searched; a fixed ``b`` is 1 (or ±1 when
            ``signed_scale``), a fixed ``c`` is 0.
        signed_scale: with a fixed scale, also try ``b = -1`` (``sqrt(c - x)``, ``log(c - x)``).
        domain: ``(low, high, closed_low, closed_high)``: valid arguments ``z = b·x + c``.
        excluded: a single excluded point (the pole of ``1/z``), or None.
    """

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable
    complexity: float
    free: tuple[str, ...] = ("b", "c")
    signed_scale: bool = False
    domain: tuple[float, float, bool, bool] = (-math.inf, math.inf, False, False)
    excluded: float | None = None

    @property
    def restricted(self) -> bool:
        """True when some real arguments are invalid (bounded domain or a pole)."""
        lo, hi, _, _ = self.domain
        return lo > -math.inf or hi < math.inf or self.excluded is not None

    def valid(self, z: Tensor, margin: float = 0.0) -> Tensor:
        """Boolean mask of arguments inside the domain (``margin`` keeps away from open ends and poles)."""
        lo, hi, closed_lo, closed_hi = self.domain
        ok = ~torch.isnan(z)
        if lo > -math.inf:
            ok = ok & ((z >= lo) if closed_lo and margin == 0 else (z > lo + margin))
        if hi < math.inf:
            ok = ok & ((z <= hi) if closed_hi and margin == 0 else (z < hi - margin))
        if self.excluded is not None:
            ok = ok & ((z - self.excluded).abs() > max(margin, 1e-12))
        return ok

    def safe(self, z: Tensor) -> Tensor:
        """The function with its argument clamped into the domain (finite everywhere; used in models)."""
        lo, hi, _, _ = self.domain
        if lo > -math.inf or hi < math.inf:
            span = (hi - lo) if (lo > -math.inf and hi < math.inf) else 1.0
            eps = _EPS * span
            lo_c = lo + eps if lo > -math.inf else None
            hi_c = hi - eps if hi < math.inf else None
            z = z.clamp(min=lo_c, max=hi_c)
        if self.excluded is not None:
            p = self.excluded
            near = (z - p).abs() < _EPS
            z = torch.where(near, p + torch.where(z >= p, torch.full_like(z, _EPS), torch.full_like(z, -_EPS)), z)
        return self.torch_fn(z)

    def sympy(self, arg):
        """The sympy expression ``f(arg)``."""
        return self.sympy_fn(arg)


PRIMITIVES: dict[str, Primitive] = {}


def register_primitive(primitive: Primitive, *, replace: bool = False) -> Primitive:
    """Add a primitive to the registry (names must be unique unless ``replace``)."""
    if not isinstance(primitive, Primitive):
        raise TypeError(f"expected a Primitive, got {type(primitive).__name__}")
    if primitive.name in PRIMITIVES and not replace:
        raise ValueError(f"symbolic primitive {primitive.name!r} is already registered")
    if not set(primitive.free) <= {"b", "c"}:
        raise ValueError(f"free must be a subset of ('b', 'c'), got {primitive.free!r}")
    PRIMITIVES[primitive.name] = primitive
    return primitive


def get_primitive(name: str) -> Primitive:
    """The primitive registered as ``name``; a clear error listing the known names otherwise."""
    try:
        return PRIMITIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown symbolic function {name!r}; known: {', '.join(list_primitives())}") from None


def list_primitives() -> list[str]:
    """Registered primitive names in registration order (the built-ins simplest first); ties in ranking go
    to the earlier name."""
    return list(PRIMITIVES)


# ---- the built-in library ---------------------------------------------------------------------------------
def _sp():
    import sympy

    return sympy


def _zero(z: Tensor) -> Tensor:
    return torch.zeros_like(z)


def _identity(z: Tensor) -> Tensor:
    return z


def _pow(n: int) -> Callable[[Tensor], Tensor]:
    def f(z: Tensor) -> Tensor:
        return z ** n

    f.__name__ = f"pow{n}"
    return f


def _inv(z: Tensor) -> Tensor:
    return 1.0 / z


def _inv2(z: Tensor) -> Tensor:
    return 1.0 / (z * z)


def _inv_sqrt(z: Tensor) -> Tensor:
    return torch.rsqrt(z)


def _gaussian(z: Tensor) -> Tensor:
    return torch.exp(-z * z)


def _sym_gaussian(z):
    return _sp().exp(-z ** 2)


def _sym_sigmoid(z):
    return 1 / (1 + _sp().exp(-z))


def _sym_pow(n: int):
    def f(z):
        return z ** n

    return f


def _sym_name(name: str):
    def f(z):
        return getattr(_sp(), name)(z)

    return f


def _builtin() -> list[Primitive]:
    inf = math.inf
    half_pi = math.pi / 2
    return [
        Primitive("0", _zero, lambda z: _sp().Integer(0), 0, free=()),
        Primitive("x", _identity, lambda z: z, 1, free=()),
        Primitive("x^2", _pow(2), _sym_pow(2), 2, free=("c",)),
        Primitive("x^3", _pow(3), _sym_pow(3), 3, free=("c",)),
        Primitive("x^4", _pow(4), _sym_pow(4), 3, free=("c",)),
        Primitive("x^5", _pow(5), _sym_pow(5), 4, free=("c",)),
        Primitive("1/x", _inv, lambda z: 1 / z, 2, free=("c",), excluded=0.0),
        Primitive("1/x^2", _inv2, lambda z: 1 / z ** 2, 2, free=("c",), excluded=0.0),
        Primitive("sqrt", torch.sqrt, _sym_name("sqrt"), 2, free=("c",), signed_scale=True,
                  domain=(0.0, inf, True, False)),
        Primitive("1/sqrt", _inv_sqrt, lambda z: 1 / _sp().sqrt(z), 2, free=("c",), signed_scale=True,
                  domain=(0.0, inf, False, False)),
        Primitive("exp", torch.exp, _sym_name("exp"), 2, free=("b",)),
        Primitive("log", torch.log, _sym_name("log"), 2, free=("c",), signed_scale=True,
                  domain=(0.0, inf, False, False)),
        Primitive("sin", torch.sin, _sym_name("sin"), 2),
        Primitive("cos", torch.cos, _sym_name("cos"), 2),
        Primitive("tan", torch.tan, _sym_name("tan"), 3, domain=(-half_pi, half_pi, False, False)),
        Primitive("tanh", torch.tanh, _sym_name("tanh"), 3),
        Primitive("sigmoid", torch.sigmoid, _sym_sigmoid, 3.5),  # = (1 + tanh(z/2))/2: tanh wins ties
        Primitive("asin", torch.asin, _sym_name("asin"), 4, domain=(-1.0, 1.0, True, True)),
        Primitive("acos", torch.acos, _sym_name("acos"), 4, domain=(-1.0, 1.0, True, True)),
        Primitive("atan", torch.atan, _sym_name("atan"), 4),
        Primitive("atanh", torch.atanh, _sym_name("atanh"), 4, domain=(-1.0, 1.0, False, False)),
        Primitive("abs", torch.abs, _sym_name("Abs"), 3, free=("c",)),
        Primitive("sign", torch.sign, _sym_name("sign"), 4, free=("c",)),
        Primitive("gaussian", _gaussian, _sym_gaussian, 3),
        Primitive("cosh", torch.cosh, _sym_name("cosh"), 3),
        Primitive("sinh", torch.sinh, _sym_name("sinh"), 3),
    ]


for _p in _builtin():
    register_primitive(_p)
