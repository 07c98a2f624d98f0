"""Optimizer overhead of FastLBFGS against torch.optim.LBFGS, measured side by side.

Usage::

    python benchmarks/lbfgs_overhead.py              # ~1 min on one core
    python benchmarks/lbfgs_overhead.py --reps 3 --threads 2

Both optimizers run the configuration ``kanlab.fit`` uses (``lr=1, history_size=10, max_iter=20,
line_search_fn="strong_wolfe", tolerance_grad=tolerance_change=1e-32``; also without line search) on

* ``quadratic``: an ill-conditioned separable quadratic over 8 tensors holding 400 float64 elements, whose
  closure sets the gradients by hand (no autograd), so nearly all remaining time is the optimizer's;
* ``KAN f32`` / ``KAN f64``: ``kanlab.KAN([2, 3, 1], grid_size=5)`` (94 parameters in 8 tensors) fitting
  ``x*y`` on 200 points, with the closure ``kanlab.fit`` uses (grads set to None, forward, MSE, backward).

Overhead per function evaluation = (wall time of the steps - time inside the closure) / closure calls; the
timed closure returns a detached loss so that freeing the autograd graph is charged to the closure.
Each repetition runs every optimizer from the same starting point, interleaved; the table shows the median
over repetitions.  ``FastLBFGS exact`` is ``match_torch_rounding = True`` (bitwise torch iterates).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import kanlab  # noqa: E402
from kanlab.train.lbfgs import FastLBFGS  # noqa: E402
from kanlab.utils import seeded  # noqa: E402
from machine_info import cpu_line  # noqa: E402

FIT = dict(lr=1, history_size=10, max_iter=20, tolerance_grad=1e-32, tolerance_change=1e-32)
OPTIMIZERS = {
    "torch.optim.LBFGS": lambda params, **kw: torch.optim.LBFGS(params, **kw),
    "FastLBFGS": lambda params, **kw: FastLBFGS(params, **kw),
    "FastLBFGS exact": lambda params, **kw: _exact(FastLBFGS(params, **kw)),
}


def _exact(opt: FastLBFGS) -> FastLBFGS:
    opt.match_torch_rounding = True
    return opt


def quadratic() -> SimpleNamespace:
    """sum_i w_i (x_i - c_i)^2 with w spanning 1e-2..1e2, gradients written directly."""
    g = torch.Generator().manual_seed(0)
    shapes = [(10, 5), (50,), (4, 4, 4), (30,), (6, 11), (70,), (25, 2), (20,)]
    params = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64)) for s in shapes]
    weights = [10 ** (4 * torch.rand(s, generator=g, dtype=torch.float64) - 2) for s in shapes]
    centres = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    start = [p.detach().clone() for p in params]

    def closure() -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        with torch.no_grad():
            for p, w, c in zip(params, weights, centres):
                r = p - c
                p.grad = 2 * w * r
                total += (w * r * r).sum()
        return total
    return SimpleNamespace(params=params, start=start, closure=closure, n=sum(p.numel() for p in params))


def tiny_kan(dtype: torch.dtype) -> SimpleNamespace:
    with seeded(0):
        model = kanlab.KAN([2, 3, 1], grid_size=5, dtype=dtype)
    data = kanlab.make_dataset("x*y", n_train=200, seed=0, dtype=dtype)
    x, y = data["train_input"], data["train_label"]
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]

    def closure() -> torch.Tensor:
        for p in params:
            p.grad = None
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    return SimpleNamespace(params=params, start=start, closure=closure, n=sum(p.numel() for p in params))


def measure(problem: SimpleNamespace, make_opt, steps: int, **kw) -> tuple[float, float, int]:
    """(wall seconds, seconds inside the closure, closure calls) for ``steps`` steps from the start."""
    with torch.no_grad():
        for p, s in zip(problem.params, problem.start):
            p.copy_(s)
    opt = make_opt(problem.params, **kw)
    inside, calls = 0.0, 0
    clock = time.perf_counter

    def timed() -> torch.Tensor:
        nonlocal inside, calls
        t0 = clock()
        out = problem.closure().detach()  # the autograd graph is freed here, inside the timing
        inside += clock() - t0
        calls += 1
        return out
    t0 = clock()
    for _ in range(steps):
        opt.step(timed)
    return clock() - t0, inside, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median reported)")
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps per measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    problems = {"quadratic f64": quadratic(), "KAN f32": tiny_kan(torch.float32),
                "KAN f64": tiny_kan(torch.float64)}
    print(f"machine: {cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"Python {platform.python_version()}\n")
    print("Optimizer overhead per function evaluation (µs), median of", args.reps, "interleaved repetitions\n")
    names = list(OPTIMIZERS)
    print("| problem | line search | closure µs | evals/step | " + " | ".join(names) +
          " | torch / FastLBFGS | torch / exact |")
    print("|---|---|---:|---:|" + "---:|" * (len(names) + 2))
    for pname, problem in problems.items():
        for ls in ("strong_wolfe", None):
            kw = dict(FIT, line_search_fn=ls, lr=1 if ls else (0.05 if pname == "quadratic f64" else 0.2))
            for name in names:  # warm-up
                measure(problem, OPTIMIZERS[name], 1, **kw)
            per: dict[str, list[float]] = {name: [] for name in names}
            closure_us, evals = [], 0
            for _ in range(args.reps):
                for name in names:
                    wall, inside, calls = measure(problem, OPTIMIZERS[name], args.steps, **kw)
                    per[name].append((wall - inside) / calls * 1e6)
                    closure_us.append(inside / calls * 1e6)
                    evals = calls
            med = {name: statistics.median(v) for name, v in per.items()}
            base = med["torch.optim.LBFGS"]
            print(f"| {pname} ({problem.n} params) | {ls or 'none'} | {statistics.median(closure_us):.0f} | "
                  f"{evals / args.steps:.1f} | " + " | ".join(f"{med[n]:.0f}" for n in names) +
                  f" | {base / med['FastLBFGS']:.1f}x | {base / med['FastLBFGS exact']:.1f}x |")

    print("\nWall time of 20 `kanlab.fit`-style L-BFGS steps on the tiny KAN (median of", args.reps, "runs)\n")
    print("| problem | " + " | ".join(names) + " | speed-up (FastLBFGS) |")
    print("|---|" + "---:|" * (len(names) + 1))
    for pname in ("KAN f32", "KAN f64"):
        walls: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.reps):
            for name in names:
                walls[name].append(measure(problems[pname], OPTIMIZERS[name], 20,
                                           **dict(FIT, line_search_fn="strong_wolfe"))[0])
        med = {name: statistics.median(v) for name, v in walls.items()}
        print(f"| {pname} | " + " | ".join(f"{med[n] * 1e3:.0f} ms" for n in names) +
              f" | {med['torch.optim.LBFGS'] / med['FastLBFGS']:.2f}x |")


if __name__ == "__main__":
    main()
