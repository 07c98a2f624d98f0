"""KAN convolutions on scikit-learn's digits (8×8): KConvKAN per basis family, KAN-conv + MLP head, Wav-KAN,
and the equal-parameter CNN and MLP baselines.

Stratified 80/20 split, several seeds (split and initialisation both follow the seed), Adam, the same
epochs and batch size for every model.  Prints a markdown table: params, test accuracy (mean ± std over
seeds, in %), seconds per training epoch (mean), with the machine noted.

    OMP_NUM_THREADS=1 python benchmarks/vision.py                 # everything, 3 seeds
    python benchmarks/vision.py --models kconvkan-bspline,cnn-matched --epochs 10 --seeds 0
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import kanlab
from kanlab.models import CNN, KANConvMLP, KConvKAN, WavKAN, matched_cnn, matched_mlp
from kanlab.models.vision import count_params
from machine_info import cpu_name

WAVELETS = ["mexican_hat", "morlet", "dog", "meyer", "shannon"]
# per-family options for the conv models: a small grid that covers the BatchNorm-ed activations
BASIS_OPTIONS = {
    "bspline": {"grid_size": 5, "grid_range": (-2.0, 2.0)},
    "rbf": {"num_centers": 8, "grid_range": (-2.0, 2.0)},  # K = 8 as bspline: same params
}
KCONV_CHANNELS = (8, 16)


def load_digits_split(seed: int):
    """Digits scaled to [-1, 1], as images ``(N, 1, 8, 8)``; stratified 80/20 split by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 8.0 - 1.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(torch.arange(len(y)).numpy(), test_size=0.2, stratify=y.numpy(),
                                           random_state=seed)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


def kconvkan(basis: str, **factory) -> Callable[[], nn.Module]:
    return lambda: KConvKAN(channels=KCONV_CHANNELS, basis=basis, **factory, **BASIS_OPTIONS.get(basis, {}))


def reference_params() -> int:
    return count_params(kconvkan("bspline", device="meta")())


def flat_mlp(n_params: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), matched_mlp(64, 10, n_params, depth=2, activation="relu"))


def matched_wavkan(basis: str, n_params: int) -> Callable[[], nn.Module]:
    """Wav-KAN ``[64, h, 10]`` with the hidden width whose parameter count is closest to ``n_params``
    (a per-edge wavelet has ``K = out_features``, so the count grows about as ``h²``)."""
    best, gap = 1, float("inf")
    for h in range(1, 257):
        count = count_params(WavKAN([64, h, 10], basis=basis, device="meta"))
        if abs(count - n_params) < gap:
            best, gap = h, abs(count - n_params)
        if count > n_params:
            break
    return lambda: WavKAN([64, best, 10], basis=basis)


def builders(selected: set[str] | None) -> dict[str, Callable[[], nn.Module]]:
    n_ref = reference_params()
    out: dict[str, Callable[[], nn.Module]] = {}
    for name in kanlab.list_bases():
        out[f"kconvkan-{name}"] = kconvkan(name)
    out["kanconv_mlp-bspline"] = lambda: KANConvMLP(channels=KCONV_CHANNELS, head_hidden=(32,),
                                                    **BASIS_OPTIONS["bspline"])
    for name in WAVELETS:
        if name in kanlab.list_bases():
            out[f"wavkan-{name}"] = matched_wavkan(name, n_ref)
    out["cnn-matched"] = lambda: matched_cnn(n_ref)
    out["cnn-small"] = lambda: CNN(channels=(8, 16))
    out["mlp-matched"] = lambda: flat_mlp(n_ref)
    if selected:
        unknown = selected - set(out)
        if unknown:
            raise SystemExit(f"unknown model(s) {sorted(unknown)}; choose from {sorted(out)}")
        out = {k: v for k, v in out.items() if k in selected}
    return out


def train_eval(build: Callable[[], nn.Module], seed: int, epochs: int, batch_size: int, lr: float):
    """Train with Adam; return (params, test accuracy, mean seconds per epoch)."""
    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    torch.manual_seed(seed)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y_tr), generator=gen)
        start = time.perf_counter()
        for i in range(0, len(perm), batch_size):
            b = perm[i: i + batch_size]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(model(x_tr[b]), y_tr[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    return count_params(model), acc, statistics.mean(times)


def machine() -> str:
    cpu = cpu_name()
    return (f"{cpu}; torch {torch.__version__}; {torch.get_num_threads()} thread(s); "
            f"python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--models", default="", help="comma-separated subset (default: all)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    selected = {m.strip() for m in args.models.split(",") if m.strip()} or None
    models = builders(selected)
    results: dict[str, list] = {name: [] for name in models}
    for s in seeds:  # seeds outside, models inside: every model sees the same machine load
        for name, build in models.items():
            results[name].append(train_eval(build, s, args.epochs, args.batch_size, args.lr))
            print(f"  seed {s} done {name}", file=sys.stderr, flush=True)
    rows = []
    for name, res in results.items():
        accs = [100 * r[1] for r in res]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append((name, res[0][0], statistics.mean(accs), std, statistics.mean(r[2] for r in res)))
    missing = [w for w in WAVELETS if w not in kanlab.list_bases()]
    print(f"Digits 8×8 (1437 train / 360 test, stratified), {args.epochs} epochs of Adam (lr {args.lr}, "
          f"cosine), batch {args.batch_size}, seeds {seeds}.")
    print(f"Machine: {machine()}\n")
    cnn_sec = next((sec for name, *_, sec in rows if name == "cnn-matched"), None)
    print("| model | params | test accuracy % (mean ± std) | s / epoch | time / matched CNN |")
    print("|---|---:|---:|---:|---:|")
    for name, n, acc, std, sec in rows:
        ratio = f"{sec / cnn_sec:.2f}×" if cnn_sec else "–"
        print(f"| {name} | {n:,} | {acc:.2f} ± {std:.2f} | {sec:.3f} | {ratio} |")
    if missing:
        print(f"\nWavelet bases not registered in this build (Wav-KAN rows skipped): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
