"""KAN vs MLP at equal training budget (the KAN paper's scaling figure): prints a markdown table.

    python benchmarks/kan_vs_mlp.py                                  # exp(sin(pi*x)+y**2), ~minutes on 2 cores
    python benchmarks/kan_vs_mlp.py --formula "x*y" --grids 3,5,10 --steps 20 --out bench_out/

One KAN [n, 2n+1, 1] is trained with grid extension (one point per grid size); MLPs with 2 hidden layers of
several widths are trained from scratch for the KAN's total number of steps (same LBFGS optimizer).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import kanlab
from kanlab.scaling import compare_kan_mlp, format_table, plot_scaling
from machine_info import cpu_name


def machine() -> str:
    cpu = cpu_name()
    return (f"{cpu}; {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
            f"threads; Python {platform.python_version()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--formula", default="exp(sin(pi*x)+y**2)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--grids", default="3,5,10,20")
    p.add_argument("--mlp-hidden", default="4,8,16,32,64")
    p.add_argument("--mlp-depth", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write kan_vs_mlp.png and kan_vs_mlp.md here")
    args = p.parse_args()
    data = kanlab.make_dataset(args.formula, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                               dtype=torch.float64)
    start = time.perf_counter()
    rows = compare_kan_mlp(data, grids=[int(g) for g in args.grids.split(",")],
                           mlp_hidden=[int(h) for h in args.mlp_hidden.split(",")], mlp_depth=args.mlp_depth,
                           steps=args.steps, seed=args.seed)
    table = format_table(rows)
    header = (f"KAN vs MLP on {args.formula} ({args.n_train} train / {args.n_test} test points, {args.steps} LBFGS "
              f"steps per KAN grid size, float64)\n\nMachine: {machine()}; total {time.perf_counter() - start:.0f} s\n")
    print(header)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        plot_scaling(rows, os.path.join(args.out, "kan_vs_mlp.png"), title=f"KAN vs MLP: {args.formula}")
        with open(os.path.join(args.out, "kan_vs_mlp.md"), "w") as fh:
            fh.write(header + "\n" + table + "\n")


if __name__ == "__main__":
    main()
