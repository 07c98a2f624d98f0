"""DeepOKAN vs DeepONet of equal parameter count on three operator problems (3 seeds each).

    PYTHONPATH=src python benchmarks/operator_learning.py [--quick] [--seeds 3] [--problems sine_wave,heat]
    PYTHONPATH=src python benchmarks/operator_learning.py --sweep     # the tuning runs behind PROBLEMS

For every problem the DeepOKAN (Gaussian-RBF KAN branch and trunk, one hidden layer) is built first; the
DeepONet baseline gets MLP branch and trunk with two hidden layers whose widths are chosen so that *each*
network has about the parameter count of its KAN counterpart.  Both are trained with the same optimiser
(Adam, cosine decay to lr/100), steps and mini-batches (:func:`kanlab.train.fit_operator`) on the same data,
and scored by the mean relative L2 error over the test functions.  Each model's learning rate (and the MLP's
activation) is its best on a separate tuning data seed (``--sweep``: lr in {3e-3, 1e-2, 2e-2}, tanh/silu), so
neither side is handicapped by a shared setting.  Prints a markdown table (params, relative L2 mean ± std over
seeds, seconds) with the machine noted.  A DeepONet step costs about half a DeepOKAN step on CPU;
``--onet-steps-factor 2`` gives DeepONet twice the steps, i.e. about the same wall time.

(Not named ``operator.py``: scripts in this folder are run by path, which puts the folder first on
``sys.path``; a file called ``operator.py`` there would shadow the standard-library module for every script.)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from kanlab.data.operators import OPERATOR_PROBLEMS
from kanlab.models import DeepOKAN, DeepONet, matched_mlp
from kanlab.train.operator import evaluate_operator, fit_operator


TUNING_SEED = 100  # data seed of the learning-rate/activation sweep (--sweep); the table uses seeds 0, 1, 2
SWEEP_LRS = (3e-3, 1e-2, 2e-2)
SWEEP_ACTIVATIONS = ("tanh", "silu")


@dataclass
class Problem:
    """One benchmark row group: the data, the DeepOKAN architecture, the training budget and the per-model
    settings (learning rate, MLP activation) picked by ``--sweep`` on data seed ``TUNING_SEED``."""

    name: str
    data_kwargs: dict[str, Any]
    branch_hidden: list[int]
    trunk_hidden: list[int]
    p: int
    kan_lr: float
    mlp_lr: float
    mlp_activation: str
    basis_kwargs: dict[str, Any] = field(default_factory=lambda: {"num_centers": 8})
    steps: int = 3000
    mlp_depth: int = 2
    batch_size: int = 32


# kan_lr / mlp_lr / mlp_activation: the best of SWEEP_LRS × SWEEP_ACTIVATIONS on TUNING_SEED (run --sweep)
PROBLEMS: dict[str, Problem] = {
    "sine_wave": Problem("sine_wave", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_query": 64},
                         branch_hidden=[24], trunk_hidden=[24], p=16, kan_lr=2e-2, mlp_lr=2e-2,
                         mlp_activation="silu"),
    "antiderivative": Problem("antiderivative", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_query": 50},
                              branch_hidden=[24], trunk_hidden=[24], p=16, kan_lr=1e-2, mlp_lr=1e-2,
                              mlp_activation="tanh"),
    "heat": Problem("heat", {"n_train": 500, "n_test": 200, "n_sensors": 32, "n_x": 24, "n_t": 12},
                    branch_hidden=[24], trunk_hidden=[24], p=16, kan_lr=1e-2, mlp_lr=2e-2, mlp_activation="silu"),
}


def build_pair(prob: Problem, n_sensors: int, query_dim: int,
               activation: str | None = None) -> tuple[DeepOKAN, DeepONet]:
    """A DeepOKAN and a DeepONet whose branch and trunk each match the DeepOKAN's in parameter count."""
    kan = DeepOKAN([n_sensors, *prob.branch_hidden, prob.p], [query_dim, *prob.trunk_hidden, prob.p], "rbf",
                   **prob.basis_kwargs)
    depth = prob.mlp_depth
    hb = matched_mlp(n_sensors, prob.p, kan.branch.n_params, depth=depth).widths[1]
    ht = matched_mlp(query_dim, prob.p, kan.trunk.n_params, depth=depth).widths[1]
    onet = DeepONet([n_sensors, *[hb] * depth, prob.p], [query_dim, *[ht] * depth, prob.p],
                    activation or prob.mlp_activation)
    return kan, onet


def run_one(prob: Problem, data: dict[str, Any], which: int, seed: int, steps: int, lr: float,
            activation: str | None = None) -> tuple[int, float, float]:
    """Train model ``which`` (0 DeepOKAN, 1 DeepONet) of the pair; return (params, test rel. L2, seconds)."""
    torch.manual_seed(seed)  # benchmark script: global seeding is fine here
    model = build_pair(prob, data["train_u"].shape[1], data["train_y"].shape[-1], activation)[which]
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


def machine_line() -> str:
    return (f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads "
            f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), Python {platform.python_version()}\n")


def sweep(names: list[str], steps_override: int | None) -> None:
    """The tuning grid behind ``PROBLEMS``: learning rates (and MLP activations) on data seed TUNING_SEED."""
    print(f"## Operator learning: tuning sweep (data seed {TUNING_SEED})\n")
    print(machine_line())
    print("| problem | model | lr | test rel. L2 |")
    print("|---|---|---:|---:|")
    for name in names:
        prob = PROBLEMS[name]
        data = OPERATOR_PROBLEMS[name](**prob.data_kwargs, seed=TUNING_SEED)
        for which, act in [(0, None)] + [(1, a) for a in SWEEP_ACTIVATIONS]:
            label = "DeepOKAN (rbf)" if which == 0 else f"DeepONet (MLP, {act})"
            for lr in SWEEP_LRS:
                _, err, _ = run_one(prob, data, which, TUNING_SEED, steps_override or prob.steps, lr, act)
                print(f"| {name} | {label} | {lr:g} | {100 * err:.2f} % |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps, small data, 1 seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="override the training steps of every problem")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of problems")
    parser.add_argument("--onet-steps-factor", type=float, default=1.0,
                        help="train DeepONet for this many times the steps (2 ≈ equal wall time on CPU)")
    parser.add_argument("--sweep", action="store_true",
                        help=f"run the learning-rate/activation sweep on data seed {TUNING_SEED} instead")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; choose from {list(PROBLEMS)}")
    if args.sweep:
        sweep(names, args.steps)
        return 0
    n_seeds = args.seeds or (1 if args.quick else 3)

    rows = []
    total = time.perf_counter()
    for name in names:
        prob = PROBLEMS[name]
        steps = args.steps or (200 if args.quick else prob.steps)
        kw = dict(prob.data_kwargs)
        if args.quick:
            kw.update(n_train=min(kw["n_train"], 200), n_test=min(kw["n_test"], 100))
        labels = ["DeepOKAN (rbf)", f"DeepONet (MLP, {prob.mlp_activation})"]
        results: dict[str, dict[str, list]] = {label: {} for label in labels}
        for seed in range(n_seeds):
            data = OPERATOR_PROBLEMS[name](**kw, seed=seed)
            for which, label in enumerate(labels):
                lr = prob.kan_lr if which == 0 else prob.mlp_lr
                n_steps = steps if which == 0 else max(1, round(steps * args.onet_steps_factor))
                n_params, err, sec = run_one(prob, data, which, seed, n_steps, lr)
                rec = results[label]
                rec.setdefault("params", []).append(n_params)
                rec.setdefault("err", []).append(err)
                rec.setdefault("sec", []).append(sec)
                print(f"# {name} seed {seed} {label}: params {n_params} rel L2 {100 * err:.3f} % "
                      f"({sec:.1f} s)", file=sys.stderr, flush=True)
        pair = build_pair(prob, data["train_u"].shape[1], data["train_y"].shape[-1])
        for which, label in enumerate(labels):
            arch, rec = pair[which], results[label]
            lr = prob.kan_lr if which == 0 else prob.mlp_lr
            n_steps = steps if which == 0 else max(1, round(steps * args.onet_steps_factor))
            rows.append((name, label, f"{arch.branch_widths} / {arch.trunk_widths}", rec["params"][0],
                         fmt(rec["err"]), fmt(rec["sec"], pct=False), n_steps, f"{lr:g}"))

    print(f"## Operator learning: DeepOKAN vs DeepONet ({n_seeds} seed{'s' * (n_seeds > 1)}"
          f"{', --quick' if args.quick else ''})\n")
    print(machine_line())
    print("| problem | model | branch / trunk widths | params | test rel. L2 (mean ± std) | train seconds | steps "
          "| lr |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"\nTotal wall time: {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
