"""From data to a formula with the Python API: train with sparsity, prune, snap edges to symbols, read the
formula, check it, plot the network.

The one-liner for the same thing is ``kanlab fit --formula "exp(sin(pi*x)+y**2)" --symbolic --json out.json``
(it also retries with multiplication nodes and other initialisations until the formula is verified).

Run:  python examples/symbolic_regression.py [--plot net.png]
"""

from __future__ import annotations

import argparse

import torch

import kanlab
from kanlab.interpret import auto_symbolic, formula, plot, to_torch
from kanlab.interpret.pipeline import sparsify
from kanlab.interpret.symbolic import snap_constants
from kanlab.interpret.training import train_lbfgs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the symbolic network")
    args = parser.parse_args()

    data = kanlab.make_dataset("exp(sin(pi*x)+y**2)", n_train=1000, n_test=1000, seed=0, dtype=torch.float64)
    x, y = data["train_input"], data["train_label"]
    with kanlab.utils.seeded(0):
        model = kanlab.KAN([2, 5, 1], grid_size=5, dtype=torch.float64)

    # 1. sparsity-regularised training, then progressive pruning: [2, 5, 1] -> [2, 1, 1]
    model = sparsify(model, x, y, lamb=0.01 * float(y.std()), steps=20)
    print("pruned widths:", model.widths)
    print("input importance:", kanlab.attribute(model, x).input_score.tolist())

    # 2. finer grid, retrain, then snap every edge (lookahead picks between equally good candidates)
    model.refine(10)
    train_lbfgs(model, x, y, steps=20, update_grid_every=5, stop_grid_update=15)
    for rec in auto_symbolic(model, x, y):
        print(f"edge (l={rec['layer']}, i={rec['i']}, j={rec['j']}): {rec['name']:8s} R² = {rec['r2']:.8f}")

    # 3. retrain only the symbolic constants and the biases, read the formula, snap constants on the data
    consts = [layer.symbolic_affine for layer in model.layers] + [layer.bias for layer in model.layers]
    train_lbfgs(model, x, y, steps=20, params=consts)
    (raw,) = formula(model, data["names"])
    print("formula (constants snapped by closeness):", raw)
    snapped = snap_constants(raw, data["names"], x, y[:, 0])
    print("formula (constants snapped on the data): ", snapped.expr)

    # 4. check: the formula against the test data
    f = to_torch(snapped.expr, data["names"])
    rmse = torch.sqrt(torch.mean((f(data["test_input"]) - data["test_label"][:, 0]) ** 2))
    print(f"formula test RMSE: {float(rmse):.2e}")
    if args.plot:
        plot(model, x, names=data["names"]).savefig(args.plot, dpi=100)
        print("wrote", args.plot)


if __name__ == "__main__":
    main()
