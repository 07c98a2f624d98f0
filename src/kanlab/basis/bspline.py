"""B-spline basis (the KAN paper's default): order-k splines on a per-feature knot grid.

Each input feature ``i`` has its own knot row ``grid[i]`` of ``G + 2k + 1`` knots: ``G`` intervals on the grid
range, extended by ``k`` knots on each side with the end spacing, so the ``K = G + k`` basis functions form a
partition of unity on the grid range.

Extrapolation rule (``extrapolate=``): ``"linear"`` (default) continues every edge's spline along its tangent
at the nearest end of the grid range, ``B_k(x) = B_k(e) + B_k'(e)·(x − e)`` — C¹, the partition of unity is
kept, unseen data slightly past the training range costs O(δ²), and gradients never vanish outside the grid
(the distance ``x − e`` is capped at 10⁶ grid widths, so even ``±inf`` inputs stay finite).  ``"clamp"``
holds the spline constant at its end value.  ``"zero"`` (the reference implementation's rule) lets the basis decay smoothly to zero over the ``k`` extended
knots and be exactly zero beyond them.  Values are never NaN, whatever the input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..splines import bspline_basis, bspline_basis_derivative
from .base import Basis, register_basis
from .refit import least_squares_refit

__all__ = ["BSpline"]

# How the spline behaves outside the grid range [t_k, t_{M-k-1}]:
_EXTRAPOLATION = {
    "linear": "the spline continues along its tangent at the nearest end of the grid range (C1)",
    "clamp": "the spline is held constant at its value at the nearest end of the grid range",
    "zero": "the basis decays smoothly to zero over the k extended knots and is exactly zero beyond them",
}


@register_basis("bspline")
class BSpline(Basis):
    """B-spline basis of order ``order`` with ``grid_size`` intervals per feature.

    Arguments:
        in_features: number of input features (or None to bind later).
        grid_size: number of grid intervals ``G >= 1``.
        order: polynomial degree ``k >= 0`` (3 = cubic).
        grid_range: ``(low, high)`` of the initial uniform grid.
        grid_eps: mix used by :meth:`update_grid`: ``1`` = uniform over the data range, ``0`` = knots at
            the data's quantiles.
        extrapolate: rule outside the grid range, ``"linear"`` (default), ``"clamp"`` or ``"zero"`` (see
            module doc).
    Shape:
        input ``(*, in)`` → output ``(*, in, G + k)``.
    """

    supports_local = True
    supports_grid = True
    domain = ("any real input; outside the grid range the spline continues along its tangent "
              "(extrapolate='linear', capped at 1e6 grid ranges), is held constant ('clamp') or decays to zero "
              "over the extended knots ('zero'); never NaN")

    def __init__(self, in_features: int | None = None, *, grid_size: int = 5, order: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), grid_eps: float = 0.02,
                 extrapolate: str = "linear", out_features: int | None = None, device=None,
                 dtype=None) -> None:
        if not isinstance(grid_size, int) or isinstance(grid_size, bool) or grid_size < 1:
            raise ValueError(f"grid_size must be an integer >= 1, got {grid_size!r}")
        if not isinstance(order, int) or isinstance(order, bool) or order < 0:
            raise ValueError(f"order must be an integer >= 0, got {order!r}")
        lo, hi = (float(v) for v in grid_range)
        if not (torch.isfinite(torch.tensor([lo, hi])).all() and hi > lo):
            raise ValueError(f"grid_range must be finite with low < high, got {tuple(grid_range)!r}")
        if not 0.0 <= float(grid_eps) <= 1.0:
            raise ValueError(f"grid_eps must lie in [0, 1], got {grid_eps!r}")
        self.grid_size = grid_size
        self.order = order
        self.grid_range = (lo, hi)
        self.grid_eps = float(grid_eps)
        if extrapolate not in _EXTRAPOLATION:
            raise ValueError(f"extrapolate must be one of {sorted(_EXTRAPOLATION)}, got {extrapolate!r}")
        self.extrapolate = extrapolate
        super().__init__(in_features, out_features=out_features, device=device, dtype=dtype)

    def _build(self, device=None, dtype=None) -> None:
        n_knots = self.grid_size + 2 * self.order + 1
        self.register_buffer("grid", torch.empty(self.in_features, n_knots, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.grid.copy_(self._uniform_grid(self.grid_size, self.grid_range, self.grid.dtype, self.grid.device))

    def _uniform_grid(self, grid_size: int, grid_range, dtype, device) -> Tensor:
        lo, hi = grid_range
        h = (hi - lo) / grid_size
        idx = torch.arange(-self.order, grid_size + self.order + 1, dtype=torch.float64, device=device)
        row = (lo + idx * h).to(dtype)
        return row.expand(self.in_features, -1).clone()

    @property
    def num_functions(self) -> int:
        return self.grid_size + self.order

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, grid_size={self.grid_size}, order={self.order}, "
                f"grid_range={self.grid_range}")

    def config(self) -> dict[str, Any]:
        return {"grid_size": self.grid_size, "order": self.order, "grid_range": list(self.grid_range),
                "grid_eps": self.grid_eps, "extrapolate": self.extrapolate}

    # ---- evaluation ----------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """``(*, in)`` → ``(*, in, G + k)``."""
        self._check_input(x)
        values = bspline_basis(self._extrapolated(x), self.grid.to(x.dtype), self.order)
        tangent = self._tangent_term(x)
        if tangent is not None:
            below, above, slopes = tangent
            values = values + below.unsqueeze(-1) * slopes[0] + above.unsqueeze(-1) * slopes[1]
        return values

    def _range(self, dtype) -> tuple[Tensor, Tensor]:
        """Per-feature grid range ``(low (in,), high (in,))``."""
        k = self.order
        grid = self.grid.to(dtype)
        return grid[:, k], grid[:, grid.shape[1] - k - 1]

    def _extrapolated(self, x: Tensor) -> Tensor:
        """Inputs at which the basis is evaluated: clamped to the grid range unless the rule is ``"zero"``.
        (``torch.clamp`` passes the whole gradient at the ends; the tangent term's is zero there.)"""
        if self.extrapolate == "zero":
            return x
        lo, hi = self._range(x.dtype)
        return torch.clamp(x, lo, hi)

    def _tangent_term(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
        """For ``"linear"``: ``(distance past the end (*, in), slope at low end (in, K), at high end (in, K))``;
        the distances are zero (with zero gradient) at and inside the ends and capped at 1e6 grid ranges."""
        if self.extrapolate != "linear" or self.order == 0:
            return None
        lo, hi = self._range(x.dtype)
        cap = 1e6 * (hi - lo)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        below = torch.where(x < lo, torch.clamp(x - lo, -cap), zero)
        above = torch.where(x > hi, torch.clamp(x - hi, None, cap), zero)
        return below, above, self._end_slopes(x.dtype)

    def __getstate__(self) -> dict:
        """Pickling/deepcopy leave out the slope cache, keyed on the grid's version (a copy's may coincide)."""
        state = super().__getstate__()
        state.pop("_slopes_cache", None)
        return state

    def _end_slopes(self, dtype) -> Tensor:
        """Every basis function's slope at the low and the high grid end, ``(2, in, K)``: cached for the grid's
        current contents (outside compilation and inference mode), as it changes only with grid updates."""
        grid = self.grid
        cacheable = not (torch.compiler.is_compiling() or torch.is_inference_mode_enabled())
        cached = self.__dict__.get("_slopes_cache")
        if cacheable and cached is not None and cached[0] is grid and cached[1] == grid._version \
                and cached[2] == dtype:
            return cached[3]
        lo, hi = self._range(dtype)
        knots = grid.to(dtype)
        with torch.no_grad():  # the grid is a buffer: nothing to differentiate
            low = bspline_basis_derivative(lo[None], knots, self.order, 1)[0]
            # The slope of the last piece inside the range (a derivative at hi would take the piece beyond it,
            # which differs for order 1): mirror the knots, so hi becomes the low end of the mirrored row.
            high = -bspline_basis_derivative(-hi[None], -knots.flip(-1), self.order, 1)[0].flip(-1)
        slopes = torch.stack([low, high], dim=0)
        if cacheable:
            self.__dict__["_slopes_cache"] = (grid, grid._version, dtype, slopes)
        return slopes

    def _values_no_grad(self, x: Tensor) -> Tensor:
        """:meth:`forward`'s values ``(N, in, K)`` without autograd, by the C++ kernel when it applies (grid
        updates and extensions evaluate the basis on thousands of samples)."""
        from ..kernels import ops

        if self.extrapolate == "zero" or not (ops.uses_extension(x, self.order) and ops._plain(x)):
            return self.forward(x)
        with torch.no_grad():  # the k + 1 non-zero values (and the tangent on them), then spread out
            flat = x.reshape(-1, self.in_features)
            v, first = ops.local_values(self._extrapolated(flat), self.grid, self.order, 0)
            tangent = self._tangent_term(flat)
            if tangent is not None and self._outside(flat):
                v = v + self._window_tangent(*tangent, first)
            window = first[..., None] + torch.arange(self.order + 1, device=first.device)
            values = v.new_zeros(*flat.shape, self.num_functions).scatter_(2, window, v)
        return values.reshape(*x.shape, self.num_functions)

    def _window_tangent(self, below: Tensor, above: Tensor, slopes: Tensor, first: Tensor) -> Tensor:
        """The tangent term on the local window starting at ``first (N, in)``: ``(N, in, k+1)`` to add to the
        local values (``below``/``above``/``slopes`` from :meth:`_tangent_term`, inputs flattened to ``(N, in)``)."""
        window = first[..., None] + torch.arange(self.order + 1, device=first.device)  # (N, in, k+1)
        n = first.shape[0]
        lo_s = torch.gather(slopes[0].expand(n, -1, -1), 2, window)
        hi_s = torch.gather(slopes[1].expand(n, -1, -1), 2, window)
        return below[..., None] * lo_s + above[..., None] * hi_s

    def _outside(self, x: Tensor) -> bool:
        """Whether any input lies strictly outside its feature's grid range (a synchronising check)."""
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] == 0:
            return False
        lo, hi = self._range(x.dtype)
        low, high = torch.aminmax(flat)  # NaN compares false (validated elsewhere)
        if bool((low >= lo.max()) & (high <= hi.min())):  # inside every row's range (one contiguous pass)
            return False
        low, high = torch.aminmax(flat, dim=0)  # per feature (rows with different ranges)
        return bool(((low < lo) | (high > hi)).any())

    def derivative(self, x: Tensor, n: int = 1) -> Tensor:
        """``n``-th derivative of the basis values, ``(*, in, G + k)``."""
        self._check_input(x)
        d = bspline_basis_derivative(self._extrapolated(x), self.grid.to(x.dtype), self.order, n)
        if self.extrapolate != "zero":
            lo, hi = self._range(x.dtype)
            inside = (x >= lo) & (x <= hi)
            keep = self.extrapolate == "linear" and n == 1  # the tangent's slope continues outside
            if not keep:
                d = d * inside.unsqueeze(-1).to(d.dtype)
        return d

    def local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ``k + 1`` possibly non-zero basis values and the index of the first.

        Returns ``values (*, in, k+1)`` and ``first (*, in)`` (int64) with ``0 <= first <= K - k - 1`` such
        that ``forward(x)[..., first + r] == values[..., r]`` and all other basis values are zero.
        """
        self._check_input(x)
        tangent = self._tangent_term(x)
        x_raw = x
        x = self._extrapolated(x)
        k = self.order
        grid = self.grid.to(x.dtype)  # (in, M)
        n_fun = self.num_functions
        # pad k+1 knots on each side with the end spacing; padded functions are discarded below
        h_lo = (grid[:, 1] - grid[:, 0]).clamp_min(torch.finfo(x.dtype).tiny)[:, None]
        h_hi = (grid[:, -1] - grid[:, -2]).clamp_min(torch.finfo(x.dtype).tiny)[:, None]
        steps = torch.arange(1, k + 2, dtype=x.dtype, device=x.device)
        padded = torch.cat([grid[:, :1] - h_lo * steps.flip(0), grid, grid[:, -1:] + h_hi * steps], dim=1)
        flat = x.reshape(-1, self.in_features)  # (N, in)
        # interval j with padded[j] <= x < padded[j+1]
        j = torch.searchsorted(padded.contiguous(), flat.detach().t().contiguous(), right=True).t() - 1
        # the right end of the real knot span is closed (as in forward): x == grid[:, -1] lies in the last
        # real interval, not in the padding
        j = torch.where(flat == grid[None, :, -1], j - 1, j)
        m_pad = padded.shape[1]
        j = j.clamp(k, m_pad - k - 2)  # (N, in)
        t = padded[None].expand(flat.shape[0], -1, -1)  # (N, in, M_pad)
        # de Boor's triangular scheme on the k+1 non-zero values of the padded basis
        vals = [torch.ones_like(flat)]
        for r in range(1, k + 1):
            new = [None] * (r + 1)
            saved = torch.zeros_like(flat)
            for s in range(r):
                t_right = torch.gather(t, 2, (j + s + 1)[..., None])[..., 0]
                t_left = torch.gather(t, 2, (j + s + 1 - r)[..., None])[..., 0]
                den = t_right - t_left
                safe = torch.where(den > 0, den, torch.ones_like(den))
                temp = torch.where(den > 0, vals[s] / safe, torch.zeros_like(flat))
                new[s] = saved + (t_right - flat) * temp
                saved = (flat - t_left) * temp
            new[r] = saved
            vals = new
        v = torch.stack(vals, dim=-1)  # (N, in, k+1): padded functions j-k .. j
        inside = (flat >= padded[None, :, 0]) & (flat < padded[None, :, -1])
        v = v * inside[..., None].to(v.dtype)
        first_pad = j - k  # index into padded functions; real function index = pad index - (k+1)
        first = first_pad - (k + 1)
        idx = first[..., None] + torch.arange(k + 1, device=x.device)  # (N, in, k+1) real indices
        v = v * ((idx >= 0) & (idx < n_fun)).to(v.dtype)
        # shift so that first lies in [0, K-k-1]; values move along with it
        clamped = first.clamp(0, n_fun - k - 1)
        shift = first - clamped  # positive: window moved left, negative: moved right
        if bool((shift != 0).any()):
            src = torch.arange(k + 1, device=x.device) - shift[..., None]  # position in v of each output slot
            ok = (src >= 0) & (src <= k)
            v = torch.gather(v, 2, src.clamp(0, k)) * ok.to(v.dtype)
        if tangent is not None:  # outside the range the window sits at the end: add the tangent slopes there
            below, above, slopes = tangent
            v = v + self._window_tangent(below.reshape(flat.shape), above.reshape(flat.shape), slopes, clamped)
        return v.reshape(*x_raw.shape, k + 1), clamped.reshape(x_raw.shape)

    # ---- grids ---------------------------------------------------------------------------------------
    def _extend(self, interior: Tensor) -> Tensor:
        """Interior knots ``(in, G+1)`` → full knot rows ``(in, G+2k+1)`` extended with the end spacing."""
        k = self.order
        if k == 0:
            return interior
        g = interior.shape[1] - 1
        h = (interior[:, -1:] - interior[:, :1]) / g
        steps = torch.arange(1, k + 1, dtype=interior.dtype, device=interior.device)
        return torch.cat([interior[:, :1] - h * steps.flip(0), interior, interior[:, -1:] + h * steps], dim=1)

    def widen(self, x: Tensor, margin: float, coef: Tensor) -> Tensor:
        """Move the two end knots outwards to ``margin`` of the range beyond both the grid range and the
        samples ``x (N, in)``, keeping every other knot; returns the transferred ``coef (out, in, K)``.

        The splines keep their breakpoints, so on the old range the new spline space contains the old one (the
        transfer is exact up to rounding), and over the margin each edge continues its last polynomial piece
        instead of the tangent line it extrapolates with.
        """
        self._check_input(x)
        inner = self.interior_knots()  # (in, G+1)
        x = x.reshape(-1, self.in_features).to(inner.dtype)
        lo = torch.minimum(inner[:, 0], x.amin(dim=0))
        hi = torch.maximum(inner[:, -1], x.amax(dim=0))
        new = inner.clone()
        new[:, 0], new[:, -1] = lo - margin * (hi - lo), hi + margin * (hi - lo)
        t = torch.linspace(0, 1, 8 * self.num_functions + 64, dtype=inner.dtype, device=inner.device)
        samples = inner[:, 0] + (inner[:, -1] - inner[:, 0]) * t[:, None]  # the old range: (n, in)
        old_values = self(samples)
        self.grid = self._extend(new).to(self.grid.dtype).contiguous()
        return least_squares_refit(old_values, coef, self(samples))

    def interior_knots(self) -> Tensor:
        """The ``G + 1`` knots on the grid range, per feature: ``(in, G + 1)``."""
        k = self.order
        return self.grid[:, k: self.grid.shape[1] - k]

    def adaptive_grid(self, x: Tensor, grid_size: int | None = None) -> Tensor:
        """Knot rows fitted to samples ``x`` ``(N, in)``: ``grid_eps``·uniform + (1 − ``grid_eps``)·quantiles."""
        g = grid_size or self.grid_size
        xs = torch.sort(x.detach().to(self.grid.dtype), dim=0).values  # (N, in)
        n = xs.shape[0]
        pos = torch.linspace(0, n - 1, g + 1, device=xs.device, dtype=torch.float64)
        lo_i, hi_i = pos.floor().long(), pos.ceil().long()
        frac = (pos - lo_i).to(xs.dtype)[:, None]
        adaptive = (xs[lo_i] * (1 - frac) + xs[hi_i] * frac).t()  # (in, g+1)
        lo, hi = xs[0], xs[-1]
        width = hi - lo
        tiny = width <= 1e-8 * (1 + lo.abs())
        lo = torch.where(tiny, lo - 0.5, lo)
        hi = torch.where(tiny, hi + 0.5, hi)
        a = torch.linspace(0, 1, g + 1, device=xs.device, dtype=xs.dtype)
        uniform = lo[:, None] + (hi - lo)[:, None] * a
        adaptive = torch.where(tiny[:, None], uniform, adaptive)
        interior = self.grid_eps * uniform + (1 - self.grid_eps) * adaptive
        interior, _ = torch.sort(interior, dim=1)
        return self._extend(interior)

    def update_grid(self, x: Tensor, coef: Tensor) -> Tensor:
        """Move the knots towards the quantiles of ``x`` ``(N, in)``; return refitted ``coef (out, in, K)``."""
        self._check_input(x)
        x = x.reshape(-1, self.in_features)
        if x.shape[0] < 2:
            raise ValueError("update_grid needs at least 2 samples")
        if not torch.isfinite(x).all():
            raise ValueError("update_grid got NaN or infinite samples")
        new_grid = self.adaptive_grid(x)
        samples = torch.cat([x.detach(), self._dense_samples(new_grid, 4 * self.num_functions)], dim=0)
        return self._switch(new_grid, self.grid_size, coef, samples)

    def refine(self, grid_size: int, coef: Tensor) -> Tensor:
        """Grid extension to ``grid_size`` intervals over the same range; returns the transferred ``coef``.

        A finer grid keeps every current interior knot and splits each interval into pieces (as evenly as the
        old knots allow, more pieces for wider intervals), so the old spline space is contained in the new
        one and the represented functions are kept exactly on the grid range (up to rounding).  A coarser
        grid maps the knots piecewise-linearly and transfers by least squares (approximate).
        """
        if not isinstance(grid_size, int) or isinstance(grid_size, bool) or grid_size < 1:
            raise ValueError(f"grid_size must be an integer >= 1, got {grid_size!r}")
        old = self.interior_knots().to(torch.float64)  # (in, G+1)
        g_old = old.shape[1] - 1
        if grid_size >= g_old:
            interior = _split_intervals(old, grid_size)
        else:
            u = torch.linspace(0, g_old, grid_size + 1, dtype=torch.float64, device=old.device)
            lo_i = u.floor().long().clamp(max=g_old - 1)
            frac = u - lo_i
            interior = old[:, lo_i] * (1 - frac) + old[:, lo_i + 1] * frac
        new_grid = self._extend(interior).to(self.grid.dtype)
        n = max(16 * (grid_size + self.order), 400)
        samples = self._dense_samples(self.grid, n)
        return self._switch(new_grid, grid_size, coef, samples)

    def _dense_samples(self, grid: Tensor, n: int) -> Tensor:
        """``n`` evenly spaced points over each feature's grid range: ``(n, in)``."""
        k = self.order
        lo = grid[:, k]
        hi = grid[:, grid.shape[1] - k - 1]
        a = torch.linspace(0, 1, n, dtype=grid.dtype, device=grid.device)[:, None]
        return lo[None] + (hi - lo)[None] * a

    def _switch(self, new_grid: Tensor, grid_size: int, coef: Tensor, samples: Tensor) -> Tensor:
        old_values = self._values_no_grad(samples.to(self.grid.dtype))  # (N, in, K_old)
        self.grid_size = grid_size
        self.grid = new_grid.to(self.grid.dtype).contiguous()
        new_values = self._values_no_grad(samples.to(self.grid.dtype))  # (N, in, K_new)
        return least_squares_refit(old_values, coef, new_values)


def _split_intervals(knots: Tensor, grid_size: int) -> Tensor:
    """Refine knot rows ``(F, G+1)`` to ``(F, grid_size+1)`` keeping every old knot.

    Interval ``j`` of width ``w_j`` gets ``n_j >= 1`` equal pieces with ``Σ n_j = grid_size`` and ``n_j``
    proportional to ``w_j`` (largest remainder), so uniform grids refined by an integer factor stay uniform.
    """
    rows = []
    for row in knots:
        widths = row[1:] - row[:-1]
        g = widths.numel()
        total = float(widths.sum())
        share = widths / total * grid_size if total > 0 else torch.full_like(widths, grid_size / g)
        counts = share.floor().clamp_min(1).long()
        while int(counts.sum()) > grid_size:  # clamp_min(1) may overshoot: take back from the largest
            counts[int(torch.argmax(counts))] -= 1
        remainder = share - counts
        order = torch.argsort(remainder, descending=True, stable=True)
        missing = grid_size - int(counts.sum())
        for idx in order[:missing].tolist():
            counts[idx] += 1
        pieces = [row[:1]]
        for j in range(g):
            frac = torch.arange(1, int(counts[j]) + 1, dtype=row.dtype, device=row.device) / int(counts[j])
            pieces.append(row[j] + frac * widths[j])
        rows.append(torch.cat(pieces))
    return torch.stack(rows)
