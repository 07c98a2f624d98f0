"""``kanlab predict DIR --data FILE.csv [--out FILE.csv]``: apply a saved model to the columns of a CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from . import UsageError

HELP = "predict with a saved model on a CSV (columns matched by name)"


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="DIR")
    p.add_argument("--data", metavar="FILE.csv", required=True)
    p.add_argument("--out", metavar="FILE.csv", help="write predictions here (default: standard output)")


def run(args, echo) -> int:
    import torch

    from ..data import read_csv
    from ..io import load

    model = load(args.checkpoint)
    names = getattr(model, "names", None)
    header, table = read_csv(args.data)
    if names:
        missing = [n for n in names if n not in header]
        if missing:
            raise UsageError(f"{args.data} lacks the model's input columns {missing}")
        x = table[:, [header.index(n) for n in names]]
    else:
        x = table
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        y = model(x.to(dtype))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [f"prediction_{i}" for i in range(y.shape[1])] if y.shape[1] > 1 else ["prediction"]
    w.writerow(cols)
    for row in y.tolist():
        w.writerow([repr(v) for v in row])
    if args.out:
        Path(args.out).write_text(buf.getvalue())
    else:
        echo(buf.getvalue().rstrip("\n"))
    return 0
