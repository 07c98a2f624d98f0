"""Fitting one edge with ``a·f(b·x + c) + d``, ranking primitives, and snapping edges of a model.

The fit is a search over the nonlinear constants ``(b, c)`` (a grid over the free ones, then repeated local
zooms around the best candidates) with the linear constants ``(a, d)`` in closed form by least squares:
for a fixed ``g = f(b·x + c)`` the best ``a, d`` give ``R² = corr(g, y)²``.  Candidates whose argument leaves
the primitive's domain on any sample are rejected, so a fitted edge is always valid on the data it was
fitted to.

Candidates are ranked by ``score = -log10(max(1 - R², r2_floor)) - weight_simple · complexity`` (higher is
better): one unit of complexity must buy a tenfold smaller unexplained variance (with the default weight 1).
A scaled primitive whose argument ``b·x + c`` spans less than ``DEGENERATE_SPAN`` over the data (``cos(0.3x)``
imitating a parabola) counts one unit more complex.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import Tensor

from .library import Primitive, get_primitive, list_primitives

__all__ = ["EdgeFit", "fit_primitive", "rank_primitives", "suggest_symbolic", "fix_symbolic", "unfix_symbolic",
           "edge_samples", "default_library"]

#: primitives tried by :func:`auto_symbolic` unless a library is given: every registered one but "0" (an edge
#: that contributes nothing is pruned, not snapped; ranking "0" against a poor fit would hide the poor fit)
#: a scaled primitive whose argument spans less than this over the data counts one unit more complex
DEGENERATE_SPAN = 1.0


def default_library() -> list[str]:
    return [n for n in list_primitives() if n != "0"]


@dataclass
class EdgeFit:
    """The best ``a·f(b·x + c) + d`` for one primitive on one edge.

    Attributes: ``name``, constants ``a, b, c, d``, ``r2`` (coefficient of determination on the samples),
    ``complexity`` and ``score`` (higher is better; see the module doc).
    """

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: float
    score: float = -math.inf

    @property
    def affine(self) -> tuple[float, float, float, float]:
        return (self.a, self.b, self.c, self.d)

    def expr(self, var):
        """The sympy expression of this fit applied to ``var``."""
        p = get_primitive(self.name)
        import sympy

        return sympy.Float(self.a) * p.sympy(sympy.Float(self.b) * var + sympy.Float(self.c)) + sympy.Float(self.d)

    def as_dict(self) -> dict:
        return asdict(self)


def _score(r2: float, complexity: float, weight_simple: float, r2_floor: float) -> float:
    if not math.isfinite(r2):
        return -math.inf
    return -math.log10(max(1.0 - r2, r2_floor)) - weight_simple * complexity


def _corr2(g: Tensor, y: Tensor, valid: Tensor) -> Tensor:
    """Row-wise ``corr(g, y)²`` for ``g (M, N)``; ``-inf`` for invalid or constant rows."""
    gc = g - g.mean(dim=1, keepdim=True)
    yc = y - y.mean()
    var_g = (gc * gc).sum(dim=1)
    var_y = (yc * yc).sum()
    cov = (gc * yc).sum(dim=1)
    r2 = cov * cov / (var_g * var_y).clamp_min(1e-300)
    scale = (g.abs().amax(dim=1) ** 2 * g.shape[1]).clamp_min(1e-300)
    ok = valid & torch.isfinite(r2) & (var_g > 1e-24 * scale)
    return torch.where(ok, r2.clamp(max=1.0), torch.full_like(r2, -math.inf))


def _evaluate(prim: Primitive, x: Tensor, y: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``R²`` of ``f(b·x + c)`` against ``y`` for candidate vectors ``b, c (M,)`` → ``(M,)``.

    Rows whose argument leaves the domain, or whose values overflow, get ``-inf``."""
    z = b[:, None] * x[None, :] + c[:, None]
    restricted = prim.restricted
    if restricted:
        inside = prim.valid(z, margin=1e-9)
        valid = inside.all(dim=1)
        z = torch.where(inside, z, torch.full_like(z, _inside(prim)))
    else:
        valid = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
    with torch.no_grad():
        g = prim.torch_fn(z)
    return _corr2(g, y, valid)  # inf/nan values make the row's r2 non-finite → rejected


def _inside(prim: Primitive) -> float:
    """A point inside the primitive's domain (used to mask invalid arguments before evaluation)."""
    lo, hi, _, _ = prim.domain
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2
    if math.isfinite(lo):
        return lo + 1.0
    if math.isfinite(hi):
        return hi - 1.0
    return 1.0 if prim.excluded is not None else 0.0


def _linear(g: Tensor, y: Tensor) -> tuple[float, float]:
    gm, ym = g.mean(), y.mean()
    var = ((g - gm) ** 2).sum()
    a = float(((g - gm) * (y - ym)).sum() / var) if var > 0 else 0.0
    return a, float(ym - a * gm)


def _candidate_grid(prim: Primitive, x: Tensor, n_scale: int, n_shift: int) -> tuple[Tensor, Tensor, float, float]:
    """Initial ``(b, c)`` candidates and the zoom steps ``(hb, hc)`` in the original units of ``x``."""
    dt = x.dtype
    lo, hi = float(x.min()), float(x.max())
    mid, half = (hi + lo) / 2, max((hi - lo) / 2, 1e-12)
    free = set(prim.free)
    if free == {"b", "c"}:
        bn = torch.linspace(-10, 10, n_scale + 1, dtype=dt)
        bn = bn[bn != 0]
        cn = torch.linspace(-10, 10, n_shift, dtype=dt)
        bb, cc = torch.meshgrid(bn, cn, indexing="ij")
        b = (bb / half).reshape(-1)
        c = (cc - bb * mid / half).reshape(-1)
        return b, c, float(20 / n_scale / half), float(20 / (n_shift - 1))
    if free == {"b"}:
        bn = torch.linspace(-10, 10, 4 * n_scale + 1, dtype=dt)
        bn = bn[bn != 0]
        return bn / half, -bn * mid / half, float(5 / n_scale / half), 0.0
    signs = [1.0, -1.0] if prim.signed_scale else [1.0]
    if free == {"c"}:
        # candidate positions p of the argument's zero (vertex, pole, domain edge): inside the data range,
        # around it, and log-spaced just outside both ends
        t = torch.linspace(-6, 6, 8 * n_shift + 1, dtype=dt)
        near = 1 + torch.logspace(-4, 1, 2 * n_shift, dtype=dt)
        t = torch.cat([t, near, -near])
        p = mid + half * t
        b = torch.cat([torch.full_like(p, s) for s in signs])
        c = torch.cat([-s * p for s in signs])
        return b, c, 0.0, float(12 * half / (8 * n_shift))
    b = torch.tensor(signs, dtype=dt)
    return b, torch.zeros_like(b), 0.0, 0.0


def fit_primitive(x: Tensor, y: Tensor, name: str, *, n_scale: int = 24, n_shift: int = 25, zooms: int = 10,
                  top_k: int = 2, weight_simple: float = 1.0, r2_floor: float = 1e-10,
                  search_samples: int = 100) -> EdgeFit:
    """Best ``a·f(b·x + c) + d`` for primitive ``name`` on samples ``x, y (N,)``.

    Returns an :class:`EdgeFit` (``r2 = -inf`` when no candidate keeps the argument inside the domain).
    """
    prim = get_primitive(name)
    x = torch.as_tensor(x).detach().reshape(-1).to(torch.float64)
    y = torch.as_tensor(y).detach().reshape(-1).to(torch.float64)
    if x.shape != y.shape or x.numel() < 3:
        raise ValueError(f"x and y must be 1-D with the same length >= 3, got {tuple(x.shape)}, {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("edge samples contain NaN or infinite values")
    y_var = float(((y - y.mean()) ** 2).mean())
    y_scale = float(y.abs().max()) + 1e-300

    def done(a, b, c, d, r2):
        complexity = prim.complexity
        if "b" in prim.free and abs(float(b)) * float(x.max() - x.min()) < DEGENERATE_SPAN:
            # the argument barely moves: f is in its Taylor regime, where a polynomial says the same thing
            complexity += 1
        return EdgeFit(name, float(a), float(b), float(c), float(d), float(r2), complexity,
                       _score(float(r2), complexity, weight_simple, r2_floor))

    if y_var <= (1e-14 * y_scale) ** 2:  # a constant edge: every primitive fits it with a = 0
        return done(0.0, 1.0, 0.0, float(y.mean()), 1.0)
    if name == "0":
        return done(0.0, 1.0, 0.0, float(y.mean()), 0.0)
    b, c, hb, hc = _candidate_grid(prim, x, n_scale, n_shift)
    xs, ys = x, y
    if x.numel() > search_samples:  # search on an even subsample (sorted by x), final fit on all samples
        pick = torch.argsort(x)[torch.linspace(0, x.numel() - 1, search_samples).round().long()]
        xs, ys = x[pick], y[pick]
    r2 = _evaluate(prim, xs, ys, b, c)
    if not prim.free:
        best = int(torch.argmax(r2))
        bb, cc = b[best], c[best]
    else:
        order = torch.argsort(r2, descending=True)[:top_k]
        results = []
        for idx in order.tolist():
            if not math.isfinite(float(r2[idx])):
                continue
            results.append(_zoom(prim, xs, ys, float(b[idx]), float(c[idx]), float(r2[idx]), hb, hc, zooms))
        if not results:
            return done(0.0, 1.0, 0.0, float(y.mean()), -math.inf)
        bb, cc, _ = max(results, key=lambda t: t[2])
        bb, cc = torch.tensor(bb, dtype=x.dtype), torch.tensor(cc, dtype=x.dtype)
    g = prim.torch_fn(bb * x + cc)
    if not (torch.isfinite(g).all() and bool(prim.valid(bb * x + cc).all())):
        return done(0.0, 1.0, 0.0, float(y.mean()), -math.inf)
    a, d = _linear(g, y)
    theta = torch.tensor([a, float(bb), float(cc), d], dtype=torch.float64)
    if prim.free:
        theta = _polish(prim, x, y, theta)
    a, bb, cc, d = theta.tolist()
    resid = y - (a * prim.torch_fn(bb * x + cc) + d)
    r2_final = 1.0 - float((resid ** 2).mean()) / y_var
    return done(a, bb, cc, d, r2_final)


def _jacobian(prim: Primitive, x: Tensor, t: Tensor) -> Tensor:
    """``∂(a·f(b·x + c) + d)/∂(a, b, c, d)``: ``(N, 4)``, with ``f'`` from one autograd pass (f is
    elementwise)."""
    with torch.enable_grad():
        z = (t[1] * x + t[2]).detach().requires_grad_(True)
        g = prim.torch_fn(z)
        (dg,) = torch.autograd.grad(g.sum(), z, allow_unused=True)
    g = g.detach()
    dg = torch.zeros_like(z) if dg is None else dg
    return torch.stack([g, t[0] * dg * x, t[0] * dg, torch.ones_like(x)], dim=1)


def _polish(prim: Primitive, x: Tensor, y: Tensor, theta: Tensor, iters: int = 12) -> Tensor:
    """Levenberg–Marquardt on ``(a, b, c, d)`` (only the free nonlinear constants move), staying inside the
    domain; returns the improved constants (or ``theta`` unchanged)."""
    free = torch.tensor([True, "b" in prim.free, "c" in prim.free, True])

    def resid(t: Tensor) -> Tensor:
        return t[0] * prim.torch_fn(t[1] * x + t[2]) + t[3] - y

    def sse(t: Tensor) -> float:
        z = t[1] * x + t[2]
        if prim.restricted and not bool(prim.valid(z, margin=1e-9).all()):
            return math.inf
        r = resid(t)
        v = float((r * r).sum())
        return v if math.isfinite(v) else math.inf

    best, best_sse, lam = theta.clone(), sse(theta), 1e-3
    if not math.isfinite(best_sse):
        return theta
    for _ in range(iters):
        jac = _jacobian(prim, x, best)[:, free]  # (N, n_free)
        if not torch.isfinite(jac).all():
            break
        r = resid(best)
        jtj = jac.t() @ jac
        grad = jac.t() @ r
        improved = False
        for _ in range(6):
            step = torch.linalg.solve(jtj + lam * torch.diag(jtj.diagonal().clamp_min(1e-12)), -grad)
            trial = best.clone()
            trial[free] += step
            v = sse(trial)
            if v < best_sse:
                best, best_sse, lam, improved = trial, v, max(lam / 10, 1e-12), True
                break
            lam *= 10
        if not improved:
            break
    return best


def _zoom(prim: Primitive, x: Tensor, y: Tensor, b: float, c: float, r2: float, hb: float, hc: float,
          rounds: int) -> tuple[float, float, float]:
    """Local refinement: a 7-point (per free constant) grid around the best point, shrinking 3x per round."""
    offsets = torch.linspace(-1, 1, 7, dtype=x.dtype)
    for _ in range(rounds):
        if hb > 0 and hc > 0:
            ob, oc = torch.meshgrid(offsets * hb, offsets * hc, indexing="ij")
            bs, cs = b + ob.reshape(-1), c + oc.reshape(-1)
        elif hb > 0:
            bs, cs = b + offsets * hb, torch.full_like(offsets, c)
        else:
            bs, cs = torch.full_like(offsets, b), c + offsets * hc
        if hb > 0 and "c" not in prim.free:  # exp: the shift follows the scale (kept at c = -b·mid)
            cs = c * bs / b if b != 0 else cs
        vals = _evaluate(prim, x, y, bs, cs)
        k = int(torch.argmax(vals))
        if float(vals[k]) >= r2:
            b, c, r2 = float(bs[k]), float(cs[k]), float(vals[k])
        hb, hc = hb / 3, hc / 3
    return b, c, r2


def rank_primitives(x: Tensor, y: Tensor, library: Sequence[str] | None = None, *, weight_simple: float = 1.0,
                    r2_floor: float = 1e-10, **kwargs) -> list[EdgeFit]:
    """Fit every primitive of ``library`` (default: all registered) to ``x, y``; best score first."""
    names = list(library) if library is not None else list_primitives()
    fits = [fit_primitive(x, y, n, weight_simple=weight_simple, r2_floor=r2_floor, **kwargs) for n in names]
    # scores within 0.1 (a ~25% difference in unexplained variance) are a tie: the earlier name wins
    order = sorted(range(len(fits)), key=lambda k: (-round(fits[k].score, 1), k))
    return [fits[k] for k in order]


# ---- edges of a model ----------------------------------------------------------------------------------------
def _layer(model, l: int):
    from ..attribution import _check_model

    _check_model(model)
    if not 0 <= l < len(model.layers):
        raise IndexError(f"layer {l} does not exist: the model has {len(model.layers)} KAN layers")
    return model.layers[l]


def _check_edge(layer, l: int, i: int, j: int) -> None:
    if not (0 <= i < layer.in_features and 0 <= j < layer.out_features):
        raise IndexError(f"edge (l={l}, i={i}, j={j}) does not exist: layer {l} has {layer.in_features} inputs "
                         f"and {layer.out_features} outputs")


@torch.no_grad()
def edge_samples(model, l: int, i: int, j: int, x: Tensor, max_samples: int = 512) -> tuple[Tensor, Tensor]:
    """The input and output of edge ``(l, i, j)`` on the data ``x``: two ``(n,)`` tensors sorted by input
    (at most ``max_samples`` points, evenly spread over the sorted inputs)."""
    from ..attribution import capture_layer_inputs

    layer = _layer(model, l)
    _check_edge(layer, l, i, j)
    h = capture_layer_inputs(model, x)[l]
    return _edge_samples_from(layer, h, i, j, max_samples)


def _edge_samples_from(layer, h: Tensor, i: int, j: int, max_samples: int) -> tuple[Tensor, Tensor]:
    order = torch.argsort(h[:, i])
    if len(order) > max_samples:
        order = order[torch.linspace(0, len(order) - 1, max_samples).round().long()]
    hs = h[order]
    y = layer.edge_outputs(hs)[:, j, i]
    return hs[:, i].to(torch.float64), y.to(torch.float64)


def suggest_symbolic(model, l: int, i: int, j: int, x: Tensor, *, library: Sequence[str] | None = None,
                     top: int = 5, weight_simple: float = 1.0, r2_floor: float = 1e-10) -> list[EdgeFit]:
    """The ``top`` best primitives for edge ``(l, i, j)`` (input node ``i`` of layer ``l`` → node ``j``) on
    data ``x`` (N, n_inputs), best score first."""
    xs, ys = edge_samples(model, l, i, j, x)
    return rank_primitives(xs, ys, library, weight_simple=weight_simple, r2_floor=r2_floor)[:top]


def fix_symbolic(model, l: int, i: int, j: int, name: str, x: Tensor | None = None, *,
                 affine: Sequence[float] | None = None) -> EdgeFit | None:
    """Snap edge ``(l, i, j)`` to primitive ``name``.

    With ``x`` the constants are fitted to the edge's current function on that data (and the fit is
    returned); otherwise ``affine = (a, b, c, d)`` is used as given (default ``(1, 1, 0, 0)``).
    """
    layer = _layer(model, l)
    _check_edge(layer, l, i, j)
    get_primitive(name)
    fit = None
    if x is not None:
        xs, ys = edge_samples(model, l, i, j, x)
        fit = fit_primitive(xs, ys, name)
        if not math.isfinite(fit.r2):
            raise ValueError(f"{name!r} cannot be fitted to edge (l={l}, i={i}, j={j}): its domain excludes "
                             f"the edge's inputs")
        affine = fit.affine
    layer.set_symbolic(j, i, name, affine)
    return fit


def unfix_symbolic(model, l: int, i: int, j: int) -> None:
    """Make edge ``(l, i, j)`` numeric again (its spline, kept while it was symbolic, takes over)."""
    layer = _layer(model, l)
    _check_edge(layer, l, i, j)
    layer.set_symbolic(j, i, None)
