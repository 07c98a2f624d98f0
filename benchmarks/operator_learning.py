"""DeepOKAN vs DeepONet of equal parameter count on three operator problems (3 seeds each).

(Not named ``operator.py``: scripts in this folder are run by path, which puts the folder first on
``sys.path``; a file called ``operator.py`` there would shadow the standard-library module for every script.)

    PYTHONPATH=src python benchmarks/operator_learning.py [--quick] [--seeds 3] [--problems sine_wave,antiderivative,heat]

For every problem the DeepOKAN (Gaussian-RBF KAN branch and trunk) is built first; the DeepONet baseline gets
MLP branch and trunk of the same depth whose hidden widths are chosen so that *each* network has about the
parameter count of its KAN counterpart.  Both are trained with the same optimiser, schedule, steps and batches
(:func:`kanlab.train.fit_operator`) on the same data, and scored by the mean relative L2 error over the test
functions.  Prints a markdown table (params, relative L2 mean ± std over seeds, seconds) with the machine noted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from kanlab.data.operators import OPERATOR_PROBLEMS
from kanlab.models import DeepOKAN, DeepONet, matched_mlp
from kanlab.train.operator import evaluate_operator, fit_operator


@dataclass
class Problem:
    """One benchmark row group: the data, the DeepOKAN architecture and the training budget."""

    name: str
    data_kwargs: dict[str, Any]
    branch_hidden: list[int]
    trunk_hidden: list[int]
    p: int
    basis_kwargs: dict[str, Any] = field(default_factory=lambda: {"num_centers": 8})
    steps: int = 3000
    kan_lr: float = 1e-2
    mlp_lr: float = 3e-3
    mlp_depth: int = 2
    batch_size: int = 32


PROBLEMS: dict[str, Problem] = {
    "sine_wave": Problem("sine_wave", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_query": 64},
                         branch_hidden=[24], trunk_hidden=[24], p=16),
    "antiderivative": Problem("antiderivative", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_query": 50},
                              branch_hidden=[24], trunk_hidden=[24], p=16),
    "heat": Problem("heat", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_x": 24, "n_t": 12},
                    branch_hidden=[24], trunk_hidden=[24], p=16),
}


def build_pair(prob: Problem, n_sensors: int, query_dim: int) -> tuple[DeepOKAN, DeepONet]:
    """A DeepOKAN and a DeepONet whose branch and trunk each match the DeepOKAN's in parameter count."""
    kan = DeepOKAN([n_sensors, *prob.branch_hidden, prob.p], [query_dim, *prob.trunk_hidden, prob.p], "rbf",
                   **prob.basis_kwargs)
    depth = prob.mlp_depth
    hb = matched_mlp(n_sensors, prob.p, kan.branch.n_params, depth=depth).widths[1]
    ht = matched_mlp(query_dim, prob.p, kan.trunk.n_params, depth=depth).widths[1]
    onet = DeepONet([n_sensors, *[hb] * depth, prob.p], [query_dim, *[ht] * depth, prob.p], "tanh")
    return kan, onet


def run_one(make: Callable[[], torch.nn.Module], data: dict[str, Any], prob: Problem, seed: int,
            steps: int, lr: float) -> tuple[int, float, float]:
    torch.manual_seed(seed)  # benchmark script: global seeding is fine here
    model = make()
    t0 = time.perf_counter()
    fit_operator(model, data, steps=steps, lr=lr, batch_size=prob.batch_size, seed=seed)
    seconds = time.perf_counter() - t0
    err = evaluate_operator(model, data["test_u"], data["test_y"], data["test_s"])
    return model.n_params, err, seconds


def fmt(values: list[float], pct: bool = True) -> str:
    scale = 100.0 if pct else 1.0
    mean = statistics.fmean(values) * scale
    std = (statistics.stdev(values) if len(values) > 1 else 0.0) * scale
    return f"{mean:.2f} ± {std:.2f}" + (" %" if pct else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred steps, small data, 1 seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="override the training steps of every problem")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of problems")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; choose from {list(PROBLEMS)}")
    n_seeds = args.seeds or (1 if args.quick else 3)

    rows = []
    total = time.perf_counter()
    for name in names:
        prob = PROBLEMS[name]
        steps = args.steps or (200 if args.quick else prob.steps)
        kw = dict(prob.data_kwargs)
        if args.quick:
            kw.update(n_train=min(kw["n_train"], 200), n_test=min(kw["n_test"], 100))
        results: dict[str, dict[str, list]] = {"DeepOKAN (rbf)": {}, "DeepONet (tanh MLP)": {}}
        for seed in range(n_seeds):
            data = OPERATOR_PROBLEMS[name](**kw, seed=seed)
            m, d = data["train_u"].shape[1], data["train_y"].shape[-1]
            for label, idx in (("DeepOKAN (rbf)", 0), ("DeepONet (tanh MLP)", 1)):
                make = lambda idx=idx: build_pair(prob, m, d)[idx]  # noqa: E731
                lr = prob.kan_lr if idx == 0 else prob.mlp_lr
                n_params, err, sec = run_one(make, data, prob, seed, steps, lr)
                rec = results[label]
                rec.setdefault("params", []).append(n_params)
                rec.setdefault("err", []).append(err)
                rec.setdefault("sec", []).append(sec)
                print(f"# {name} seed {seed} {label}: params {n_params} rel L2 {100 * err:.3f} % "
                      f"({sec:.1f} s)", file=sys.stderr, flush=True)
        for label, rec in results.items():
            kan, onet = build_pair(prob, m, d)
            arch = kan if label.startswith("DeepOKAN") else onet
            rows.append((name, label, f"{arch.branch_widths} / {arch.trunk_widths}", rec["params"][0],
                         fmt(rec["err"]), fmt(rec["sec"], pct=False), steps))

    print(f"## Operator learning: DeepOKAN vs DeepONet ({n_seeds} seed{'s' * (n_seeds > 1)}"
          f"{', --quick' if args.quick else ''})\n")
    print(f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), Python {platform.python_version()}\n")
    print("| problem | model | branch / trunk widths | params | test rel. L2 (mean ± std) | train seconds | steps |")
    print("|---|---|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"\nTotal wall time: {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
