"""DeepOKAN learns the solution operator of the 1-D heat equation and is compared with the exact fields.

    PYTHONPATH=src python examples/deepokan_heat.py OUT.png [--steps 3000] [--seed 0]

The operator maps an initial condition ``u_0(x) = Σ_n c_n sin(nπx)`` (seen at 32 sensors) to the solution
``u(x, t)`` of ``u_t = α u_xx`` with zero boundary values, ``α = 0.05``, on ``[0, 1] × [0, 1]``
(:func:`kanlab.data.heat_operator`, exact sine-series solution).  A DeepOKAN with Gaussian-RBF KAN branch
``[32, 24, 16]`` and trunk ``[2, 24, 16]`` is trained with Adam; the figure shows, for three test initial
conditions, the exact field, the predicted field and their difference, plus the test relative L2 error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from kanlab.data import heat_operator  # noqa: E402
from kanlab.models import DeepOKAN  # noqa: E402
from kanlab.models.deeponet import relative_l2  # noqa: E402
from kanlab.train.operator import fit_operator  # noqa: E402
from kanlab.utils import seeded  # noqa: E402

N_X, N_T, T_MAX = 32, 16, 1.0


def plot_fields(exact: torch.Tensor, pred: torch.Tensor, errors: torch.Tensor, path: Path) -> None:
    """``exact``/``pred`` ``(k, N_X, N_T)``: one row per test function: exact, predicted, difference."""
    k = exact.shape[0]
    fig, axes = plt.subplots(k, 3, figsize=(11, 3.0 * k), constrained_layout=True, squeeze=False)
    extent = (0.0, T_MAX, 0.0, 1.0)
    for i in range(k):
        vmax = float(exact[i].abs().max())
        panels = [(exact[i], "exact u(x, t)", "RdBu_r", vmax),
                  (pred[i], f"DeepOKAN  (rel. L2 {100 * float(errors[i]):.2f} %)", "RdBu_r", vmax),
                  (pred[i] - exact[i], "prediction − exact", "PuOr_r", None)]
        for ax, (field, title, cmap, lim) in zip(axes[i], panels):
            lim = lim if lim is not None else float(field.abs().max())
            im = ax.imshow(field.numpy(), origin="lower", aspect="auto", extent=extent, cmap=cmap,
                           vmin=-lim, vmax=lim)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("t")
            ax.set_ylabel("x")
            fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle("Heat equation u_t = 0.05 u_xx: DeepOKAN vs exact solution (test initial conditions)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train DeepOKAN on the heat equation and plot its fields.")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = heat_operator(500, 100, n_sensors=32, n_x=N_X, n_t=N_T, t_max=T_MAX, seed=args.seed)
    with seeded(args.seed):
        model = DeepOKAN([32, 24, 16], [2, 24, 16], basis="rbf", num_centers=8)
    hist = fit_operator(model, data, steps=args.steps, lr=1e-2, batch_size=32, seed=args.seed)
    with torch.no_grad():
        pred = model(data["test_u"], data["test_y"])
    errors = relative_l2(pred, data["test_s"])
    print(f"DeepOKAN ({model.n_params} parameters, {hist.seconds:.1f} s): test relative L2 "
          f"{100 * float(errors.mean()):.2f} % (mean over {len(errors)} initial conditions)")
    pick = [0, 1, 2]
    shape = (len(pick), N_X, N_T)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_fields(data["test_s"][pick].reshape(shape), pred[pick].reshape(shape), errors[pick], args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
