"""TKAN and TKAT against LSTM and GRU of (about) equal parameter count, multi-horizon forecasting.

Data: ``kanlab.data.make_multivariate_series`` (target driven by a seasonal cycle, AR components and a scheduled
event; distractor noise channels; season and event are known covariates), chronological 70/15/15 split,
scaler fitted on the training split.  For every horizon the TKAT parameter count is the budget and the hidden
sizes of the TKAN, LSTM and GRU forecasters are chosen to match it.  TKAN/LSTM/GRU read the ``T`` past rows
(all columns) and map the last hidden state to the ``H`` outputs with a linear head; TKAT additionally reads
the known covariates of the ``H`` future rows (that is its design).  Adam, MSE, best validation epoch kept.
Metrics on the test split, target in train-standardised units: RMSE and R² over all ``H`` outputs.

    python benchmarks/timeseries.py            # full: horizons 1,3,6,12, 3 seeds, 2 worker processes
    python benchmarks/timeseries.py --quick    # one seed, horizons 1 and 12, 5 epochs

Prints a markdown table (mean ± std over seeds) with the machine noted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time

import torch
from torch import Tensor, nn

from kanlab.data import mackey_glass_series, make_forecasting_data, make_multivariate_series
from kanlab.layers import TKAN
from kanlab.models import TKAT
from kanlab.utils import seeded

SUB_KAN = ({"basis": "bspline", "grid_size": 5, "order": 3},)


class RecurrentForecaster(nn.Module):
    """``x (B, T+H, F)`` → ``(B, H)`` from the past rows only: recurrent layer, last hidden state, linear head."""

    def __init__(self, rnn: nn.Module, hidden: int, lookback: int, horizon: int) -> None:
        super().__init__()
        self.rnn, self.lookback = rnn, lookback
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x[:, : self.lookback])
        return self.head(out[:, -1])


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build(kind: str, size: int, n_features: int, lookback: int, horizon: int, data: dict) -> nn.Module:
    if kind == "lstm":
        return RecurrentForecaster(nn.LSTM(n_features, size, batch_first=True), size, lookback, horizon)
    if kind == "gru":
        return RecurrentForecaster(nn.GRU(n_features, size, batch_first=True), size, lookback, horizon)
    if kind == "tkan":
        sub = max(n_features // 2, 2)
        rnn = TKAN(n_features, size, sub_kan=list(SUB_KAN), sub_kan_input_dim=sub, sub_kan_output_dim=sub)
        return RecurrentForecaster(rnn, size, lookback, horizon)
    if kind == "tkat":
        return TKAT(data["n_observed"], data["n_known"], lookback, horizon, hidden_size=size,
                    num_heads=2, sub_kan=list(SUB_KAN))
    raise ValueError(kind)


def matched(kind: str, budget: int, n_features: int, lookback: int, horizon: int, data: dict) -> nn.Module:
    """The ``kind`` model whose parameter count is closest to ``budget`` (hidden size searched)."""
    best, best_gap = None, math.inf
    for size in range(2, 257):
        model = build(kind, size, n_features, lookback, horizon, data)
        gap = abs(n_params(model) - budget)
        if gap < best_gap:
            best, best_gap = (size, model), gap
        if n_params(model) > budget:
            break
    return best[1]


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch: int = 512) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    err = ((pred - y) ** 2).sum().item()
    rmse = math.sqrt(err / y.numel())
    r2 = 1.0 - err / ((y - y.mean()) ** 2).sum().item()
    return rmse, r2


def train(model: nn.Module, data: dict, *, epochs: int, lr: float, batch: int, seed: int) -> float:
    """Adam on MSE; keeps the weights of the best validation epoch.  Returns seconds per epoch."""
    x, y = data["train_input"], data["train_label"]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    best_val, best_state, spent = math.inf, None, 0.0
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        sched.step()
        spent += time.perf_counter() - start
        val, _ = evaluate(model, data["val_input"], data["val_label"])
        if val < best_val:
            best_val, best_state = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return spent / epochs


def fmt(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def load_series(args: argparse.Namespace):
    if args.dataset == "synthetic":
        return make_multivariate_series(args.steps, seed=0)
    return mackey_glass_series(args.steps)


def run_task(task: tuple[str, int, int, argparse.Namespace]) -> dict:
    """One (model, horizon, seed) training run; executed in a worker process with its own thread count."""
    kind, horizon, seed, args = task
    cpu_start = time.process_time()
    torch.set_num_threads(args.threads)
    series = load_series(args)
    n_features = series.values.shape[1]
    data = make_forecasting_data(series, args.lookback, horizon)
    budget = n_params(build("tkat", args.tkat_hidden, n_features, args.lookback, horizon, data))
    with seeded(1000 * seed + horizon):
        if kind == "tkat":
            model = build("tkat", args.tkat_hidden, n_features, args.lookback, horizon, data)
        else:
            model = matched(kind, budget, n_features, args.lookback, horizon, data)
    sec = train(model, data, epochs=args.epochs, lr=args.lr, batch=args.batch, seed=seed)
    rmse, r2 = evaluate(model, data["test_input"], data["test_label"])
    size = model.hidden_size if kind == "tkat" else model.rnn.hidden_size
    return {"kind": kind, "horizon": horizon, "seed": seed, "params": n_params(model), "size": size,
            "rmse": rmse, "r2": r2, "sec": sec, "cpu": time.process_time() - cpu_start}


COST = {"tkat": 3.0, "tkan": 2.0, "lstm": 0.2, "gru": 0.2}  # rough relative cost, for scheduling only


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one seed, horizons 1 and 12, 5 epochs")
    p.add_argument("--horizons", default="1,3,6,12")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lookback", type=int, default=24)
    p.add_argument("--steps", type=int, default=2400, help="length of the generated series")
    p.add_argument("--tkat-hidden", type=int, default=8, help="TKAT width; its parameter count is the budget")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dataset", choices=("synthetic", "mackey-glass"), default="synthetic")
    p.add_argument("--models", default="tkan,tkat,lstm,gru")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (runs in parallel)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    args = p.parse_args(argv)
    args.horizons = [int(h) for h in args.horizons.split(",")]
    if args.quick:
        args.horizons, args.seeds, args.epochs = [1, 12], 1, 5
    kinds = args.models.split(",")
    unknown = sorted(set(kinds) - set(COST))
    if unknown:
        p.error(f"unknown models {unknown}; choose from {sorted(COST)}")
    tasks = [(kind, h, seed, args) for h in args.horizons for seed in range(args.seeds) for kind in kinds]
    tasks.sort(key=lambda t: -COST[t[0]] * (args.lookback + t[1]))  # longest first: better packing

    total = time.perf_counter()
    results: list[dict] = []
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            for res in pool.map(run_task, tasks):
                results.append(res)
                _log(res)
    else:
        for task in tasks:
            results.append(run_task(task))
            _log(results[-1])
    elapsed = time.perf_counter() - total

    series = load_series(args)
    print(f"## Time-series forecasting: TKAN / TKAT vs LSTM / GRU ({args.dataset})\n")
    print(f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores visible, torch {torch.__version__}; {args.jobs} worker process(es) with "
          f"{args.threads} thread(s) each. Series of {len(series)} steps ({len(series.names)} columns, "
          f"{series.n_known} known), lookback {args.lookback}, {args.epochs} epochs, batch {args.batch}, "
          f"Adam lr {args.lr} (cosine), best validation epoch kept, seeds 0..{args.seeds - 1}. "
          f"Test split; target in train-standardised units. Wall time {elapsed:.0f} s; CPU time of the runs "
          f"{sum(r['cpu'] for r in results):.0f} s (load-independent; wall ≈ CPU / jobs on an idle machine).\n")
    print("| H | model | hidden | params | reads known future | R² | RMSE | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for h in args.horizons:
        for kind in kinds:
            rs = [r for r in results if r["kind"] == kind and r["horizon"] == h]
            print(f"| {h} | {kind.upper()} | {rs[0]['size']} | {rs[0]['params']} | "
                  f"{'yes' if kind == 'tkat' else 'no'} | {fmt([r['r2'] for r in rs])} | "
                  f"{fmt([r['rmse'] for r in rs])} | {fmt([r['sec'] for r in rs], 2)} |")
    longest = max(args.horizons)
    if "lstm" in kinds:
        ref = statistics.mean(r["r2"] for r in results if r["kind"] == "lstm" and r["horizon"] == longest)
        print()
        for kind in (k for k in kinds if k in ("tkan", "tkat")):
            mine = statistics.mean(r["r2"] for r in results if r["kind"] == kind and r["horizon"] == longest)
            verdict = "at least as good as" if mine >= ref else "WORSE than"
            print(f"- H={longest}: {kind.upper()} mean R² {mine:.3f} vs LSTM {ref:.3f}: {verdict} the "
                  f"equal-parameter LSTM.")
    return 0


def _log(res: dict) -> None:
    print(f"# H={res['horizon']} seed={res['seed']} {res['kind']:5s} params={res['params']} "
          f"rmse={res['rmse']:.4f} r2={res['r2']:.4f} s/epoch={res['sec']:.2f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
