"""The spline tour as static figures (PNG), computed with ``kanlab.splines``.

    python examples/spline_tour.py [OUT_DIR]        # default OUT_DIR: spline_tour_figures/

Writes three figures:

* ``bspline_basis.png`` — the B-spline basis of orders 0–3 on a uniform and on a non-uniform knot vector;
* ``partition_of_unity.png`` — cubic B-splines sum to one inside the grid range (and only there);
* ``local_vs_global.png`` — move one control point and plot the change of the curve for Catmull–Rom,
  the natural cubic spline and the cubic B-spline: the first and the last change on a few intervals only
  (local control), the natural spline everywhere.

The interactive version of the same ideas: ``kanlab splines`` (an HTML page to drag the points yourself).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from kanlab.splines import bspline_basis, catmull_rom, natural_cubic, uniform_knots  # noqa: E402

F64 = torch.float64
COLORS = {"catmull_rom": "#e8710a", "natural": "#1a73e8", "bspline": "#13935a"}


def tour_points(n: int = 8) -> np.ndarray:
    """The control points the interactive page starts from: x = 0..n-1, a wavy row of heights."""
    i = np.arange(n, dtype=np.float64)
    return np.stack([i, np.round(1.1 + 0.85 * np.sin(1.75 * i + 0.6) + 0.3 * np.cos(0.8 * i), 2)], axis=1)


def basis_values(x: np.ndarray, knots: np.ndarray, order: int) -> np.ndarray:
    return bspline_basis(torch.as_tensor(x, dtype=F64), torch.as_tensor(knots, dtype=F64), order).numpy()


def plot_basis_panel(ax, knots: np.ndarray, order: int, title: str) -> None:
    x = np.linspace(knots[0], knots[-1], 1201)
    values = basis_values(x, knots, order)
    n = len(knots) - order - 1
    ax.axvspan(knots[order], knots[n], color="#13935a", alpha=0.07, lw=0)
    cmap = plt.get_cmap("viridis")
    for i in range(values.shape[1]):
        ax.plot(x, values[:, i], color=cmap(i / max(values.shape[1] - 1, 1)), lw=1.6)
    for t in np.unique(knots):
        ax.axvline(t, color="#c3c8d3", lw=0.8, zorder=0)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(-0.05, 1.08)
    ax.set_xticks(np.unique(knots))
    ax.tick_params(labelsize=7)


def figure_basis(out: Path, dpi: int = 110) -> Path:
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.4), sharey=True, constrained_layout=True)
    nonuniform_inner = np.array([0.0, 0.15, 0.25, 0.6, 0.7, 1.0])
    for k in range(4):
        uniform = uniform_knots(5, k, (0.0, 1.0), dtype=F64).numpy()
        plot_basis_panel(axes[0, k], uniform, k, f"order {k}, uniform knots")
        step_left, step_right = 0.1 * np.arange(k, 0, -1), 0.1 * np.arange(1, k + 1)
        nonuniform = np.r_[-step_left, nonuniform_inner, 1.0 + step_right]
        plot_basis_panel(axes[1, k], nonuniform, k, f"order {k}, non-uniform knots")
    for ax in axes[1]:
        ax.tick_params(axis="x", labelrotation=60)
    fig.suptitle("B-spline basis functions by the Cox–de Boor recursion (shaded: the grid range)", fontsize=12)
    path = out / "bspline_basis.png"
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def figure_partition_of_unity(out: Path, dpi: int = 110) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True, constrained_layout=True)
    clamped = np.r_[[0.0] * 4, 0.2, 0.3, 0.65, [1.0] * 4]
    kan_grid = uniform_knots(5, 3, (-1.0, 1.0), dtype=F64).numpy()
    cases = [(kan_grid, "uniform, extended by 3 knots per side (a KAN grid)"),
             (clamped, "clamped, non-uniform (end knots repeated 4 times)")]
    for ax, (knots, title) in zip(axes, cases):
        plot_basis_panel(ax, knots, 3, title)
        x = np.linspace(knots[0], knots[-1], 1201)
        ax.plot(x, basis_values(x, knots, 3).sum(axis=1), "k--", lw=1.4, label="Σᵢ Bᵢ(x)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.93), fontsize=9, frameon=False)
    fig.suptitle("Partition of unity: inside the grid range the cubic B-splines are ≥ 0 and sum to 1", fontsize=12)
    path = out / "partition_of_unity.png"
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def moved_curves(points: np.ndarray, j: int, dy: float):
    """Per curve: (x samples, before, after, breakpoints) when control point ``j`` moves up by ``dy``."""
    moved = points.copy()
    moved[j, 1] += dy
    xk = torch.as_tensor(points[:, 0], dtype=F64)
    x = np.linspace(points[0, 0], points[-1, 0], 1401)
    xt = torch.as_tensor(x, dtype=F64)
    out = {}
    for name, make in (("catmull_rom", catmull_rom), ("natural", natural_cubic)):
        before = make(xk, torch.as_tensor(points[:, 1], dtype=F64))(xt).numpy()
        after = make(xk, torch.as_tensor(moved[:, 1], dtype=F64))(xt).numpy()
        out[name] = (x, before, after, points[:, 0])
    # the cubic B-spline with the points' heights as coefficients, on the tour's KAN grid (Greville x = i)
    n = len(points)
    knots = uniform_knots(n - 3, 3, (1.0, n - 2.0), dtype=F64)
    u = np.linspace(1.0, n - 2.0, 1001)
    b = basis_values(u, knots.numpy(), 3)
    out["bspline"] = (u, b @ points[:, 1], b @ moved[:, 1], knots.numpy()[3:n + 1])
    return out


def figure_local_vs_global(out: Path, j: int = 3, dy: float = 0.8, dpi: int = 110) -> Path:
    points = tour_points()
    curves = moved_curves(points, j, dy)
    titles = {"catmull_rom": "Catmull–Rom (C¹): local", "natural": "natural cubic (C²): global",
              "bspline": "cubic B-spline (C²): local"}
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [3, 2]})
    for col, (name, (x, before, after, breaks)) in enumerate(curves.items()):
        top, bottom = axes[0, col], axes[1, col]
        color = COLORS[name]
        diff = np.abs(after - before)
        # shade the intervals where the curve changed at all
        for a, b in zip(breaks[:-1], breaks[1:]):
            inside = (x > a) & (x < b)
            if (diff[inside] > 0).any():
                for ax in (top, bottom):
                    ax.axvspan(a, b, color=color, alpha=0.1, lw=0)
        top.plot(x, before, color="#8d93a3", lw=1.5, ls="--", label="before")
        top.plot(x, after, color=color, lw=2.2, label=f"after moving P{j} up by {dy}")
        moved = points.copy()
        moved[j, 1] += dy
        top.plot(points[:, 0], points[:, 1], "o", mfc="white", mec="#8d93a3", ms=6)
        top.plot(moved[j, 0], moved[j, 1], "o", color="#d93025", ms=7)
        top.set_title(titles[name], fontsize=11)
        top.legend(fontsize=8, loc="upper right", frameon=False)
        bottom.semilogy(x, np.maximum(diff, 1e-17), color=color, lw=1.8)
        bottom.set_ylim(1e-17, 10)
        bottom.set_xlabel("x")
        for t in breaks:
            for ax in (top, bottom):
                ax.axvline(t, color="#c3c8d3", lw=0.8, zorder=0)
        changed = sum(1 for a, b in zip(breaks[:-1], breaks[1:]) if (diff[(x > a) & (x < b)] > 0).any())
        bottom.set_title(f"|change|: {changed} of {len(breaks) - 1} pieces moved", fontsize=10)
    axes[1, 0].set_ylabel("|after − before|")
    fig.suptitle("Local vs global control: move one point, see which pieces of the curve change "
                 "(bottom: log scale, an exact zero is drawn at 1e-17)", fontsize=12)
    path = out / "local_vs_global.png"
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="spline_tour_figures", help="folder for the PNG files")
    parser.add_argument("--dpi", type=int, default=110, help="resolution of the PNG files (default 110)")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [figure_basis(out, args.dpi), figure_partition_of_unity(out, args.dpi),
             figure_local_vs_global(out, dpi=args.dpi)]
    for p in paths:
        print(f"wrote {p}")
    return paths


if __name__ == "__main__":
    main()
