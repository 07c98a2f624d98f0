"""``kanlab plot DIR``: draw a saved KAN (every edge's learned curve) into a PNG."""

from __future__ import annotations

from . import UsageError

HELP = "draw a saved model's network diagram (edge curves, importance, symbolic labels) as a PNG"


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="DIR")
    p.add_argument("--out", metavar="FILE.png", help="output image (default DIR/network.png)")
    p.add_argument("--data", metavar="FILE.csv", help="inputs for curve ranges and importance (columns by name)")
    p.add_argument("--dpi", type=int, default=120)


def run(args, echo) -> int:
    from pathlib import Path

    from ..interpret.plot import plot
    from ..io import load
    from ..models.kan import KAN

    model = load(args.checkpoint)
    if not isinstance(model, KAN):
        raise UsageError(f"{args.checkpoint} holds a {type(model).__name__}, not a KAN")
    if args.dpi < 10:
        raise UsageError(f"--dpi must be >= 10, got {args.dpi}")
    x = None
    names = getattr(model, "names", None)
    if args.data:
        from ..data import read_csv

        header, table = read_csv(args.data)
        if names:
            missing = [n for n in names if n not in header]
            if missing:
                raise UsageError(f"{args.data} lacks the model's input columns {missing}")
            table = table[:, [header.index(n) for n in names]]
        elif table.shape[1] != model.in_features:
            raise UsageError(f"{args.data} has {table.shape[1]} columns, the model expects {model.in_features}")
        x = table.to(next(model.parameters()).dtype)
    import json

    target = json.loads((Path(args.checkpoint) / "config.json").read_text()).get("target")
    fig = plot(model, x, names=names, output_names=[target] if target and model.out_features == 1 else None)
    out = Path(args.out) if args.out else Path(args.checkpoint) / "network.png"
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, got {str(out)!r}")
    fig.savefig(out, dpi=args.dpi)
    echo(f"wrote {out}")
    return 0
