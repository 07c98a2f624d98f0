"""Continual learning: a 1-D KAN keeps what it learned earlier, an MLP of the same size forgets.

The target has five Gaussian bumps on [-1, 1].  The data arrive one region at a time (first the region
around the first bump, then the second, ...) and each model is trained only on the current region.  A
B-spline edge is *local*: a sample moves only the few coefficients whose basis functions cover it, so
training on region 5 leaves regions 1-4 as they were (the KAN has no global base branch, no bias and a fixed
spline scale here, and its grid stays fixed).  An MLP's weights are shared by all inputs, so it overwrites the earlier bumps.

Run:  python examples/continual_learning.py
"""

from __future__ import annotations

import math

import torch

import kanlab

CENTERS = (-0.8, -0.4, 0.0, 0.4, 0.8)
WIDTH = 0.07  # bump width
HALF = 0.2  # half-width of each region


def target(x: torch.Tensor) -> torch.Tensor:
    """Five Gaussian bumps, ``(N, 1)`` → ``(N, 1)``."""
    return sum(torch.exp(-((x - c) / WIDTH) ** 2) for c in CENTERS)


def region(k: int, n: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` evenly spaced points of region ``k`` and their targets."""
    x = torch.linspace(CENTERS[k] - HALF, CENTERS[k] + HALF, n, dtype=dtype)[:, None]
    return x, target(x)


def rmse(model, x, y) -> float:
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def run(grid_size: int = 100, steps: int = 20, n_per_region: int = 200, seed: int = 0) -> dict:
    """Train a KAN and an equal-size MLP region by region.

    Returns ``{"kan": {...}, "mlp": {...}}`` with, per model, ``n_params``, ``after_each`` (RMSE on each
    region right after learning it), ``final`` (RMSE on every region after the last phase) and
    ``earlier_final`` (RMSE over regions 1-4 after the last phase).
    """
    dtype = torch.float64
    with kanlab.utils.seeded(seed):
        kan = kanlab.KAN([1, 1], grid_size=grid_size, grid_range=(-1.0, 1.0), base_activation="zero", bias=False,
                         dtype=dtype)
        # the spline scale w_s multiplies every coefficient of the edge: it is the one non-local parameter
        kan.layers[0].spline_scaler.requires_grad_(False)
        mlp = kanlab.matched_mlp(1, 1, sum(p.numel() for p in kan.parameters()), depth=2, activation="silu",
                                 dtype=dtype)
    results = {}
    for name, model in (("kan", kan), ("mlp", mlp)):
        after_each = []
        for k in range(len(CENTERS)):
            x, y = region(k, n_per_region, dtype)
            kanlab.fit(model, {"train_input": x, "train_label": y}, steps=steps, update_grid_every=None,
                       seed=seed, progress=False)
            after_each.append(rmse(model, x, y))
        final = [rmse(model, *region(k, n_per_region, dtype)) for k in range(len(CENTERS))]
        xs = torch.cat([region(k, n_per_region, dtype)[0] for k in range(len(CENTERS) - 1)])
        results[name] = {"n_params": int(sum(p.numel() for p in model.parameters())), "after_each": after_each,
                         "final": final, "earlier_final": rmse(model, xs, target(xs))}
    return results


def main() -> None:
    res = run()
    print("| model | params | RMSE on regions 1-4 after phase 5 | RMSE on region 5 |")
    print("|---|---|---|---|")
    for name in ("kan", "mlp"):
        r = res[name]
        print(f"| {name.upper()} | {r['n_params']} | {r['earlier_final']:.2e} | {r['final'][-1]:.2e} |")
    ratio = res["mlp"]["earlier_final"] / max(res["kan"]["earlier_final"], 1e-300)
    print(f"\nThe MLP's error on the earlier regions is {ratio:.0f}x the KAN's: it forgot them.")


if __name__ == "__main__":
    main()
