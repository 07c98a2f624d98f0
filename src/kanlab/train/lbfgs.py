"""Low-overhead L-BFGS: the algorithm of :class:`torch.optim.LBFGS` without its per-op cost.

For small models ``torch.optim.LBFGS`` spends most of its time dispatching tiny
torch ops (per-parameter slices and copies, ~40 dot/axpy calls per iteration,
line-search bookkeeping in 0-dim tensors).  :class:`FastLBFGS` runs the same
iteration with the flat vectors as NumPy arrays (the state holds CPU tensors
sharing their memory), NumPy scalars standing in for 0-dim tensors (so dtype
promotion, e.g. float32 rounding of ``f + c1 * t * gtd``, follows torch's rules),
and one ``torch._foreach_*`` call per parameter read or write, with ``x + t * d``
formed by torch's own fused ``add`` kernel so parameter updates round as in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["FastLBFGS"]

_C1 = 1e-4  # sufficient-decrease constant of the strong Wolfe conditions
_C2 = 0.9  # curvature constant of the strong Wolfe conditions
_LS_TOLERANCE = 1e-9  # torch never forwards tolerance_change to its line search


class _Incompatible(Exception):
    """Internal signal: this step must run on torch's implementation."""


def _sqrt(v):
    """``sqrt`` rounded as torch's (its vectorised square root is not always correctly rounded; NumPy's is)."""
    dtype = torch.float32 if isinstance(v, np.float32) else torch.float64
    return type(v)(torch.tensor(v, dtype=dtype).sqrt().item())


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clipped to the
    bounds (their midpoint when there is none).  NumPy scalars stand in for torch's 0-dim
    tensors, so each operation rounds in the dtype torch would use."""
    if bounds is None:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    else:
        lo, hi = bounds
    rise = 3 * (f1 - f2)
    run = x1 - x2
    # torch evaluates ``number / tensor`` as ``tensor.reciprocal() * number``.
    secant = (1.0 / run) * rise if isinstance(run, np.generic) else rise / run
    d1 = g1 + g2 - secant
    disc = d1 * d1 - g1 * g2
    if not disc >= 0:
        return (lo + hi) / 2.0
    d2 = _sqrt(disc)
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def _strong_wolfe_search(evaluate, t, d_norm, f, g, gtd, max_ls):
    """Line search for a step satisfying the strong Wolfe conditions.

    ``evaluate(t)`` returns ``(loss, grad, grad . d)`` at ``x + t d``.  A bracketing
    phase grows the step by cubic extrapolation until an interval is known to hold
    an acceptable point, then a zoom phase shrinks it by safeguarded cubic
    interpolation.  Each bracket end is a tuple ``(t, f, g, gtd)``.  Returns
    ``(loss, grad, t, n_evaluations)`` at the best end found.
    """
    f_new, g_new, gtd_new = evaluate(t)
    n_evals = 1
    prev = (0, f, g, gtd)
    done = False
    n_ls = 0
    while n_ls < max_ls:
        cur = (t, f_new, g_new, gtd_new)
        if f_new > (f + _C1 * t * gtd) or (n_ls > 1 and f_new >= prev[1]):
            ends = [prev, cur]
            break
        if abs(gtd_new) <= -_C2 * gtd:
            ends = [cur]
            done = True
            break
        if gtd_new >= 0:
            ends = [prev, cur]
            break
        t_next = _cubic_minimum(prev[0], prev[1], prev[3], t, f_new, gtd_new,
                                bounds=(t + 0.01 * (t - prev[0]), t * 10))
        prev = cur
        t = t_next
        f_new, g_new, gtd_new = evaluate(t)
        n_evals += 1
        n_ls += 1
    if n_ls == max_ls:
        ends = [(0, f, g, None), (t, f_new, g_new, None)]

    # ``ends`` is unbound only when max_ls < 0; torch fails there the same way.
    low = 0 if ends[0][1] <= ends[-1][1] else 1
    stalled = False
    while not done and n_ls < max_ls:
        a, b = ends
        if abs(b[0] - a[0]) * d_norm < _LS_TOLERANCE:
            break
        t = _cubic_minimum(a[0], a[1], a[3], b[0], b[1], b[3])
        t_hi, t_lo = max(a[0], b[0]), min(a[0], b[0])
        margin = 0.1 * (t_hi - t_lo)
        if min(t_hi - t, t - t_lo) < margin:
            # Too close to an end: accept once, then (or when outside) move inwards.
            if stalled or t >= t_hi or t <= t_lo:
                t = t_hi - margin if abs(t - t_hi) < abs(t - t_lo) else t_lo + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new, gtd_new = evaluate(t)
        n_evals += 1
        n_ls += 1
        cur = (t, f_new, g_new, gtd_new)
        high = 1 - low
        if f_new > (f + _C1 * t * gtd) or f_new >= ends[low][1]:
            ends[high] = cur
            low = 0 if ends[0][1] <= ends[1][1] else 1
        else:
            if abs(gtd_new) <= -_C2 * gtd:
                done = True
            elif gtd_new * (ends[high][0] - ends[low][0]) >= 0:
                ends[high] = ends[low]
            ends[low] = cur
    t, f_new, g_new, _ = ends[low]
    return f_new, g_new, t, n_evals


class _History:
    """Curvature pairs ``(y, s, 1 / y.s)`` as NumPy data, with the objects torch stores."""

    def __init__(self) -> None:
        self.y: list[np.ndarray] = []
        self.s: list[np.ndarray] = []
        self.ro: list[Any] = []
        self.saved: list[list] = []  # [y, s, ro] as kept in the state (ro: None until stored)

    def push(self, y: np.ndarray, s: np.ndarray, ro: Any, saved: list | None = None) -> None:
        self.y.append(y)
        self.s.append(s)
        self.ro.append(ro)
        self.saved.append(saved or [torch.from_numpy(y), torch.from_numpy(s), None])


def _to_state(v: Any) -> Any:
    """NumPy scalar -> 0-dim tensor of its dtype (what torch keeps); others unchanged."""
    return torch.from_numpy(np.asarray(v)) if isinstance(v, np.generic) else v


def _from_state(v: Any) -> Any:
    """State scalar -> Python number or NumPy scalar (a 0-dim tensor's stand-in)."""
    if isinstance(v, Tensor):
        if not v.is_cpu or v.numel() != 1 or not v.is_floating_point():
            raise _Incompatible
        return v.detach().numpy().reshape(())[()]
    if v is not None and not isinstance(v, (int, float)):
        raise _Incompatible
    return v


def _torch_step() -> Callable[..., Any]:
    """``torch.optim.LBFGS.step`` without the hook wrapper ``Optimizer`` patches in."""
    fn = torch.optim.LBFGS.step
    while getattr(fn, "hooked", False):
        fn = fn.__wrapped__
    return fn


class FastLBFGS(torch.optim.LBFGS):
    """Drop-in :class:`torch.optim.LBFGS` with far less per-evaluation overhead.

    Same constructor, ``step(closure)`` semantics, return value and state layout
    (``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``), so state dicts move
    freely between the two classes.  Iterates equal torch's up to rounding: dot
    products use NumPy's BLAS instead of torch's, and the two-loop recursion's
    ``q += a * y`` rounds twice where torch fuses it.  Setting the attribute
    ``match_torch_rounding = True`` routes those through torch too, making the
    iterates bitwise identical to ``torch.optim.LBFGS`` (at some extra cost).
    Parameters that are not dense CPU float32/float64 tensors of one dtype (or an
    unusual saved state) make a step run ``torch.optim.LBFGS.step`` unchanged.
    """

    match_torch_rounding: bool = False

    def __init__(self, params: Any, lr: float | Tensor = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        super().__init__(params, lr=lr, max_iter=max_iter, max_eval=max_eval,
                         tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                         history_size=history_size, line_search_fn=line_search_fn)
        self._flat_buffers: SimpleNamespace | None = None

    def _buffers(self) -> SimpleNamespace:
        """Flat buffers x, w, d, g with per-parameter views (rebuilt when shapes change)."""
        params = self._params
        dtype = params[0].dtype
        if dtype not in (torch.float32, torch.float64) or any(
                p.dtype is not dtype or not p.is_cpu or p.layout is not torch.strided
                or type(p) not in (torch.nn.Parameter, Tensor) for p in params):
            raise _Incompatible
        key = (dtype, tuple(p.shape for p in params))
        bufs = getattr(self, "_flat_buffers", None)
        if bufs is None or bufs.key != key:
            sizes = [p.numel() for p in params]
            bufs = SimpleNamespace(key=key, n=sum(sizes))
            if bufs.n == 0:
                raise _Incompatible
            for name in ("x", "w", "d", "g"):  # point, trial point, direction, gradient
                flat = torch.empty(bufs.n, dtype=dtype)
                setattr(bufs, name, flat)
                setattr(bufs, name + "_np", flat.numpy())
                setattr(bufs, name + "_views",
                        [v.view(p.shape) for v, p in zip(flat.split(sizes), params)])
            self._flat_buffers = bufs
        return bufs

    @staticmethod
    def _load_state(state: dict, bufs: SimpleNamespace) -> tuple:
        """NumPy views of the saved state; raises _Incompatible for unusual contents."""
        twins: dict[int, tuple[np.ndarray, Tensor]] = {}

        def vec(v: Any) -> np.ndarray | None:
            if v is None:
                return None
            if (not isinstance(v, Tensor) or v.dtype is not bufs.x.dtype or not v.is_cpu
                    or v.layout is not torch.strided or v.shape != (bufs.n,)):
                raise _Incompatible
            arr = v.detach().numpy()
            twins[id(arr)] = (arr, v)
            return arr

        hist = None
        dirs, stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        if dirs is not None:
            if not (isinstance(dirs, list) and isinstance(stps, list) and isinstance(ro, list)
                    and len(dirs) == len(stps) == len(ro)):
                raise _Incompatible
            hist = _History()
            for y, s, r in zip(dirs, stps, ro):
                hist.push(vec(y), vec(s), _from_state(r), [y, s, r])
        return (vec(state.get("d")), _from_state(state.get("t")), hist,
                _from_state(state.get("H_diag")), vec(state.get("prev_flat_grad")),
                state.get("prev_loss"), twins)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Perform one optimisation step (up to ``max_iter`` L-BFGS iterations).

        Args:
            closure: re-evaluates the model, calls ``backward()`` and returns the loss.

        Returns:
            The loss returned by the first closure call, as ``torch.optim.LBFGS`` does.
        """
        if len(self.param_groups) != 1:
            raise AssertionError(
                f"Expected exactly one param_group, but got {len(self.param_groups)}")
        try:
            bufs = self._buffers()
            lr = self.param_groups[0]["lr"]
            lr = _from_state(lr) if isinstance(lr, Tensor) else lr  # torch: 0-dim tensor
            state = self.state[self._params[0]]
            saved = self._load_state(state, bufs)
        except _Incompatible:
            return _torch_step()(self, closure)
        with np.errstate(all="ignore"):
            return self._fast_step(torch.enable_grad()(closure), state, lr, bufs, saved)

    def _fast_step(self, closure: Callable[[], Any], state: dict, lr: Any,
                   bufs: SimpleNamespace, saved: tuple) -> Any:
        group = self.param_groups[0]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        params, exact = self._params, self.match_torch_rounding
        g_views, g_np, d_np = bufs.g_views, bufs.g_np, bufs.d_np
        tmp = np.empty_like(g_np)
        to_scalar = g_np.dtype.type
        foreach_copy_, from_np = torch._foreach_copy_, torch.from_numpy
        mul, add, sub = np.multiply, np.add, np.subtract

        dot: Callable[[np.ndarray, np.ndarray], Any] = np.dot
        if exact:
            # torch's BLAS sums a dot product in an order that depends on the operands' alignment: copy them
            # into torch-allocated (64-byte aligned, like torch's own flat vectors) buffers first
            dot_a, dot_b = torch.empty_like(bufs.g), torch.empty_like(bufs.g)

            def dot(a: np.ndarray, b: np.ndarray) -> Any:
                dot_a.copy_(from_np(a))
                dot_b.copy_(from_np(b))
                return to_scalar(torch.dot(dot_a, dot_b).item())

        def gather() -> np.ndarray:
            try:
                foreach_copy_(g_views, [p.grad for p in params])
            except (TypeError, RuntimeError):  # a grad is None (-> zeros) or sparse
                for view, p in zip(g_views, params):
                    g = p.grad
                    view.zero_() if g is None else view.copy_(g.to_dense() if g.is_sparse else g)
            return g_np.copy()

        # x: the point a line search starts from; w: trial points.  After a line search the
        # parameters hold w, which becomes the next x (torch re-reads them: the same values).
        x, x_views, w, w_views = bufs.x, bufs.x_views, bufs.w, bufs.w_views
        x_is_params = False

        def move_to(step: Any) -> None:  # params <- x + step * d, with torch's fused kernel
            if exact:  # per parameter, as torch does: a kernel's vector body and scalar tail may round
                w.copy_(x)  # differently (FMA contraction), so element positions must match torch's
                torch._foreach_add_(w_views, bufs.d_views, alpha=float(step))
            else:
                torch.add(x, bufs.d, alpha=float(step), out=w)
            foreach_copy_(params, w_views)

        evaluated = [False]  # True once torch would have restored x after an evaluation

        def evaluate(step: Any) -> tuple[float, np.ndarray, Any]:
            evaluated[0] = False
            move_to(step)
            f = float(closure())
            g = gather()
            evaluated[0] = True
            return f, g, dot(g, d_np)

        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = closure()
        loss, current_evals = float(orig_loss), 1
        state["func_evals"] += 1
        flat_grad = gather()
        opt_cond = np.abs(flat_grad).max() <= tolerance_grad
        if opt_cond:
            return orig_loss

        d, t, hist, H_diag, prev_flat_grad, prev_loss, twins = saved
        al: list | None = None  # two-loop coefficients, mirrored into state["al"]
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # ---- search direction d = -H g by the two-loop recursion
            if state["n_iter"] == 1:
                d = np.negative(flat_grad)
                hist = _History()
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * float(t)
                ys = dot(y, s)
                if ys > 1e-10:
                    if len(hist.y) == group["history_size"]:
                        for seq in (hist.y, hist.s, hist.ro, hist.saved):
                            del seq[0]
                    hist.push(y, s, 1.0 / ys)
                    H_diag = ys / dot(y, y)
                if "al" not in state:
                    state["al"] = [None] * group["history_size"]
                if al is None:
                    al = [None] * len(state["al"])
                Y, S, ro, m = hist.y, hist.s, hist.ro, len(hist.y)
                q = np.negative(flat_grad)
                if exact:  # torch's dot and fused add_, on tensors sharing the arrays
                    q_t, pairs = from_np(q), hist.saved
                    for i in range(m - 1, -1, -1):
                        al[i] = to_scalar(pairs[i][1].dot(q_t).item()) * ro[i]
                        q_t.add_(pairs[i][0], alpha=-float(al[i]))
                    d = r = q * float(H_diag)
                    r_t = from_np(r)
                    for i in range(m):
                        be = to_scalar(pairs[i][0].dot(r_t).item()) * ro[i]
                        r_t.add_(pairs[i][1], alpha=float(al[i] - be))
                else:
                    for i in range(m - 1, -1, -1):
                        al[i] = S[i].dot(q) * ro[i]
                        sub(q, mul(Y[i], al[i], tmp), q)
                    d = r = q * float(H_diag)
                    for i in range(m):
                        add(r, mul(S[i], al[i] - Y[i].dot(r) * ro[i], tmp), r)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                np.copyto(prev_flat_grad, flat_grad)
            prev_loss = loss

            # ---- step length
            if state["n_iter"] == 1:
                g_sum = to_scalar(from_np(flat_grad).abs().sum().item())  # torch's summation
                t = min(1.0, 1.0 / g_sum) * lr
            else:
                t = lr
            gtd = dot(flat_grad, d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            np.copyto(d_np, d)
            if group["line_search_fn"] is not None:
                if group["line_search_fn"] != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                if not x_is_params:
                    foreach_copy_(x_views, params)
                try:
                    loss, flat_grad, t, ls_func_evals = _strong_wolfe_search(
                        evaluate, t, np.abs(d).max(), loss, flat_grad, gtd, max_eval - current_evals)
                except BaseException:  # leave the parameters where torch's would be
                    if evaluated[0]:
                        foreach_copy_(params, x_views)
                    raise
                move_to(t)
                x, x_views, w, w_views, x_is_params = w, w_views, x, x_views, True
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                torch._foreach_add_(params, bufs.d_views, alpha=float(t))
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = gather()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # ---- stopping tests, in torch's order
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * float(t)).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        def vec(a: np.ndarray | None) -> Tensor | None:
            if a is None:
                return None
            twin = twins.get(id(a))
            return twin[1] if twin is not None and twin[0] is a else from_np(a)

        if hist is not None:
            for entry, ro_value in zip(hist.saved, hist.ro):
                if entry[2] is None:
                    entry[2] = _to_state(ro_value)
        state["old_dirs"] = None if hist is None else [e[0] for e in hist.saved]
        state["old_stps"] = None if hist is None else [e[1] for e in hist.saved]
        state["ro"] = None if hist is None else [e[2] for e in hist.saved]
        for i, v in enumerate(al or ()):
            if v is not None:
                state["al"][i] = _to_state(v)
        state["d"], state["t"], state["H_diag"] = vec(d), _to_state(t), _to_state(H_diag)
        state["prev_flat_grad"], state["prev_loss"] = vec(prev_flat_grad), prev_loss
        return orig_loss
