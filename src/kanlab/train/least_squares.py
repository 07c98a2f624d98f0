"""Levenberg–Marquardt for small least-squares problems (the CLI workflow's final polish and the symbolic
pipeline's constant refit share it).

First-order methods (LBFGS, Adam) crawl on ill-conditioned sums of squares — a fine-grid KAN, the redundant
constants of a symbolic formula — while damped Gauss–Newton steps converge in a few iterations when the
Jacobian is small enough to form.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["levenberg_marquardt"]


def levenberg_marquardt(residual: Callable[[Tensor], Tensor], jacobian: Callable[[Tensor], Tensor], theta: Tensor,
                        *, iters: int, rtol: float, lam: float = 1e-3, tries: int = 8,
                        accept: Optional[Callable[[Tensor], bool]] = None,
                        normal_equations: bool = False) -> tuple[Tensor, float, int]:
    """Minimise ``‖residual(θ)‖²`` from ``theta`` (1-D, float64 recommended).

    Arguments:
        residual: ``θ → r (m,)``.  jacobian: ``θ → J (m, n)`` (``∂r/∂θ``).
        iters: at most this many accepted steps.  rtol: stop when a step lowers the sum of squares by less than
            this fraction.  lam: initial damping.  tries: damping increases (×10) per iteration before giving
            up.  accept: an extra condition a trial point must meet (e.g. a domain), besides a lower sum.
        normal_equations: solve the damped normal equations by Cholesky instead of the augmented system by QR:
            less precise (the condition number is squared) but the same bits whatever the thread count, which a
            bit-identical resume of a training run needs; QR (LAPACK's blocked least squares) may round
            differently with another number of threads.

    Each step solves ``[J; √λ·D] δ = [-r; 0]`` by least squares (QR keeps the precision the normal equations
    would square away), ``D`` the column norms (Marquardt scaling; columns that are all zero stay fixed).  A
    step is kept only when it lowers the sum of squares (and meets ``accept``), so the result is never worse
    than the start.  Returns ``(θ, sum of squares, accepted steps)``.
    """
    def sse(t: Tensor) -> float:
        with torch.no_grad():
            r = residual(t)
        v = float(r @ r)
        return v if math.isfinite(v) else math.inf

    best, steps = sse(theta), 0
    for _ in range(iters if math.isfinite(best) else 0):
        with torch.no_grad():
            r0 = residual(theta).to(torch.float64)
        jac = jacobian(theta).to(torch.float64)
        if not (torch.isfinite(jac).all() and torch.isfinite(r0).all()):
            break
        norms = (jac * jac).sum(0).sqrt()
        active = norms > 0
        if not bool(active.any()):
            break
        ja, scale = jac[:, active], norms[active]
        if normal_equations:  # columns scaled to unit norm: J'J has a unit diagonal, λ·I is Marquardt's damping
            js = ja / scale
            gram, rhs = js.T @ js, -(js.T @ r0)
            eye = torch.eye(len(scale), dtype=gram.dtype, device=gram.device)
        improved = False
        for _ in range(tries):
            step = torch.zeros_like(theta)
            if normal_equations:
                chol, info = torch.linalg.cholesky_ex(gram + lam * eye)
                if int(info) != 0:
                    lam *= 10
                    continue
                step[active] = (torch.cholesky_solve(rhs[:, None], chol)[:, 0] / scale).to(theta)
            else:
                a = torch.cat([ja, math.sqrt(lam) * torch.diag(scale)])
                b = torch.cat([-r0, r0.new_zeros(len(scale))])
                step[active] = torch.linalg.lstsq(a, b[:, None]).solution[:, 0].to(theta)
            trial = theta + step
            v = sse(trial)
            if v < best and (accept is None or accept(trial)):
                gain = best - v
                theta, best, lam, improved = trial, v, max(lam / 10, 1e-15), True
                steps += 1
                break
            lam *= 10
        if not improved or gain <= rtol * (best + gain):  # relative to the sum before the step
            break
    return theta, best, steps
