"""``kanlab compare``: KANs and MLPs over a range of sizes at the same budget; a table and a scaling plot."""

from __future__ import annotations

import json
from pathlib import Path

from . import UsageError
from .common import add_data_arguments, int_list, positive_int, width_list

HELP = "train KANs (grid extension) and MLPs of several sizes on one data set; plot test RMSE vs parameters"


def add_arguments(p) -> None:
    add_data_arguments(p)
    p.add_argument("--width", help="KAN widths, e.g. 2,5,1 (default [n, 2n+1, 1])")
    p.add_argument("--grids", default="3,5,10,20", help="KAN grid sizes, one point each (default 3,5,10,20)")
    p.add_argument("--mlp-hidden", default="4,8,16,32", help="MLP hidden widths, one MLP each (default 4,8,16,32)")
    p.add_argument("--mlp-depth", type=positive_int, default=2, help="MLP hidden layers (default 2)")
    p.add_argument("--steps", type=positive_int, default=50,
                   help="steps per KAN grid size; every MLP gets steps x number of grids")
    p.add_argument("--optimizer", default="lbfgs", help="lbfgs (default), adam or sgd")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--out", metavar="DIR", help="write compare.json, compare.md and compare.png here")


def run(args, echo) -> int:
    from ..scaling import compare_kan_mlp, format_table, plot_scaling
    from ..train.loop import OPTIMIZERS
    from .fit import _dtype, load_data

    if args.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown --optimizer {args.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    grids = int_list(args.grids, "--grids")
    hidden = int_list(args.mlp_hidden, "--mlp-hidden")
    width = width_list(args.width) if args.width else None
    data = load_data(args)
    if width is not None and width[0] != data["train_input"].shape[1]:
        raise UsageError(f"--width starts with {width[0]} inputs but the data has "
                         f"{data['train_input'].shape[1]} input columns")
    rows = compare_kan_mlp(data, kan_width=width, grids=grids, mlp_hidden=hidden, mlp_depth=args.mlp_depth,
                           steps=args.steps, optimizer=args.optimizer, seed=args.seed, dtype=_dtype(args))
    table = format_table(rows)
    echo(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        source = args.formula or args.data
        (out / "compare.json").write_text(json.dumps({"data": source, "rows": rows}, indent=2) + "\n")
        (out / "compare.md").write_text(f"KAN vs MLP on {source}\n\n{table}\n")
        plot_scaling(rows, out / "compare.png", title=f"KAN vs MLP: {source}")
        echo(f"wrote {out}/compare.json, compare.md, compare.png")
    return 0
