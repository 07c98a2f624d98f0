"""Train a KConvKAN on scikit-learn's 8×8 digits and plot some of its learned edge functions.

Every (output channel, input channel, kernel offset) of a KAN convolution is a learnable univariate function
φ(x) where a CNN has a single weight; this script draws the nine functions of the 3×3 kernel on input
channel 0 for a few output channels of the first layer, over the range of the pixel values.

    python examples/kconvkan_digits.py edges.png
    python examples/kconvkan_digits.py edges.png --epochs 5 --basis rbf
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from kanlab.layers import KANConv2d
from kanlab.models import KConvKAN


def load_digits_tensors(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 8.0 - 1.0  # pixels in [-1, 1]
    y = torch.tensor(data.target)
    tr, te = train_test_split(range(len(y)), test_size=0.2, stratify=data.target, random_state=seed)
    return x[tr], y[tr], x[te], y[te]


def train(model, x, y, epochs: int, batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            b = perm[i: i + batch_size]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        print(f"epoch {epoch + 1:2d}  train loss {total / len(y):.4f}")


def plot_edges(conv: KANConv2d, x_train, path: str, channels: int = 4) -> None:
    """Row per output channel: the φ of each kernel offset of input channel 0, on the data's range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = float(x_train.min()), float(x_train.max())
    xs = torch.linspace(lo, hi, 200)
    with torch.no_grad():
        phi = conv.edge_functions(xs)  # (200, C_out, C_in/groups, kh, kw)
    kh, kw = conv.kernel_size
    rows = min(channels, conv.out_channels)
    fig, axes = plt.subplots(rows, kh * kw, figsize=(1.6 * kh * kw, 1.5 * rows), sharex=True, squeeze=False)
    for o in range(rows):
        for u in range(kh * kw):
            ax = axes[o][u]
            ax.plot(xs.numpy(), phi[:, o, 0, u // kw, u % kw].numpy(), lw=1.5)
            ax.axhline(0, color="0.8", lw=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if o == 0:
                ax.set_title(f"offset ({u // kw},{u % kw})", fontsize=7)
        axes[o][0].set_ylabel(f"out {o}", fontsize=8)
    fig.suptitle(f"learned edge functions φ(pixel) of the first KAN convolution ({conv.basis.name})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("png", help="where to write the plot of edge functions")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--basis", default="bspline")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    options = {"bspline": {"grid_size": 5, "grid_range": (-2.0, 2.0)},
               "rbf": {"num_centers": 8, "grid_range": (-2.0, 2.0)}}.get(args.basis, {})
    x_tr, y_tr, x_te, y_te = load_digits_tensors(args.seed)
    torch.manual_seed(args.seed)
    model = KConvKAN(channels=(8, 16), basis=args.basis, **options)
    print(f"KConvKAN ({args.basis}): {model.n_params:,} parameters")
    start = time.perf_counter()
    train(model, x_tr, y_tr, args.epochs, seed=args.seed)
    model.eval()
    with torch.no_grad():
        acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    print(f"test accuracy {100 * acc:.2f}% after {time.perf_counter() - start:.1f} s")
    first = next(m for m in model.modules() if isinstance(m, KANConv2d))
    plot_edges(first, x_tr, args.png)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
