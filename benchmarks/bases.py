"""Every basis family on one task: fit f(x, y) = exp(sin(πx) + y²) with a [2, 5, 1] KAN.

Each family gets hyperparameters that give about the same parameter count (≈ 150, the B-spline KAN with
G = 5, k = 3); an MLP with the same parameter count and the same optimiser budget is the baseline.  All
models train with ``kanlab.fit`` under one protocol (LBFGS, the same number of steps; grid updates off by
default so every model sees the same plain optimiser — ``--update-grid-every 5`` restores ``fit``'s default
for the grid-based families) on 1000 training points and are scored on 1000 test points.

Run::

    PYTHONPATH=src python benchmarks/bases.py [--steps 100] [--seeds 0,1] [--dtype float64]

Prints a markdown table: family, parameters, test RMSE (median over seeds), seconds (mean per fit).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time

import torch

import kanlab
from kanlab.models import matched_mlp
from kanlab.utils import seeded

FORMULA = "exp(sin(pi*x)+y**2)"

#: per-family arguments chosen for K ≈ 8 basis functions per input (≈ 150 parameters in a [2, 5, 1] KAN)
FAMILIES: dict[str, dict] = {
    "bspline": {"grid_size": 5, "order": 3},
    "catmull_rom": {"grid_size": 7},
    "natural_cubic": {"grid_size": 7},
    "rbf": {"num_centers": 8},
    "relu": {"grid_size": 5, "order": 3},
    "chebyshev": {"degree": 7},
    "legendre": {"degree": 7},
    "gram": {"degree": 6},
    "jacobi": {"degree": 7},
    "bernstein": {"degree": 7},
    "fourier": {"num_frequencies": 4},
    "mexican_hat": {"num_wavelets": 4},
    "morlet": {"num_wavelets": 4},
    "dog": {"num_wavelets": 4},
    "meyer": {"num_wavelets": 4},
    "shannon": {"num_wavelets": 4},
    "rational": {"numerator_degree": 5, "denominator_degree": 4},
}


def rmse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def run_one(build, data: dict, steps: int, seed: int, update_grid_every: int) -> tuple[int, float, float]:
    with seeded(seed):
        model = build()
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start = time.perf_counter()
    try:
        kanlab.fit(model, data, steps=steps, optimizer="lbfgs", seed=seed, progress=False,
                   update_grid_every=update_grid_every or None)
        err = rmse(model, data["test_input"], data["test_label"])
    except kanlab.TrainingDivergedError:
        err = float("nan")
    return n_params, err, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="LBFGS steps per model (default 100)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; the table shows the median RMSE")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--update-grid-every", type=int, default=0,
                        help="grid updates every N steps for grid-based families (0: off, the default)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    dtype = getattr(torch, args.dtype)
    seeds = [int(s) for s in args.seeds.split(",")]
    data = kanlab.make_dataset(FORMULA, n_train=1000, n_test=1000, seed=0, dtype=dtype)

    builders = {name: (lambda name=name: kanlab.KAN([2, 5, 1], basis=name, dtype=dtype, **FAMILIES[name]))
                for name in args.families.split(",")}
    reference = kanlab.KAN([2, 5, 1], basis="bspline", dtype=dtype, **FAMILIES["bspline"]).n_params
    builders["mlp"] = lambda: matched_mlp(2, 1, reference, depth=2, dtype=dtype)

    rows = []
    for name, build in builders.items():
        results = [run_one(build, data, args.steps, seed, args.update_grid_every) for seed in seeds]
        errs = [r[1] for r in results]
        rows.append((name, results[0][0], statistics.median(errs), statistics.mean(r[2] for r in results)))
        print(f"  {name}: {rows[-1][2]:.2e}", flush=True)

    print(f"\nf(x, y) = {FORMULA}, [2, 5, 1] KAN, 1000 train / 1000 test points, LBFGS {args.steps} steps, "
          f"grid updates every {args.update_grid_every or 'never'}, {args.dtype}, seeds {args.seeds}")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, Python {platform.python_version()}\n")
    print("| family | params | test RMSE | seconds |")
    print("|---|---:|---:|---:|")
    for name, n_params, err, secs in sorted(rows, key=lambda r: (r[2] != r[2], r[2])):
        print(f"| {name} | {n_params} | {err:.2e} | {secs:.1f} |")
    mlp = next(r for r in rows if r[0] == "mlp")
    for name in ("bspline", "rbf"):
        row = next((r for r in rows if r[0] == name), None)
        if row is not None:
            verdict = "beats" if row[2] < mlp[2] else "does NOT beat"
            print(f"\n{name} {verdict} the MLP ({row[2]:.2e} vs {mlp[2]:.2e})")


if __name__ == "__main__":
    main()
