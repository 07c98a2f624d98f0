"""``kanlab report DIR [--out FILE.html] [--data FILE.csv]``: a self-contained HTML report of a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from . import UsageError

HELP = "write a self-contained HTML report (network, edge curves, formula, training, KAN vs MLP) of a checkpoint"


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="DIR", help="checkpoint directory (kanlab fit --out / demo --out)")
    p.add_argument("--out", metavar="FILE.html", help="where to write the page (default DIR/report.html)")
    p.add_argument("--data", metavar="FILE.csv", help="inputs for edge importance (columns matched by name)")
    p.add_argument("--title", help="page title")


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: not valid JSON ({err})") from None


def run(args, echo) -> int:
    from ..data import read_csv
    from ..interpret.report import report
    from ..io import load

    directory = Path(args.checkpoint)
    model = load(directory)
    if not hasattr(model, "layers"):
        raise UsageError(f"{directory} holds a {type(model).__name__}; the report needs a KAN checkpoint")
    data = None
    if args.data:
        header, table = read_csv(args.data)
        names = getattr(model, "names", None)
        if names:
            missing = [n for n in names if n not in header]
            if missing:
                raise UsageError(f"{args.data} lacks the model's input columns {missing}")
            data = table[:, [header.index(n) for n in names]]
        else:
            data = table[:, : model.layers[0].in_features]
    result = _read_json(directory / "result.json")
    comparison = _read_json(directory / "compare.json")
    config = _read_json(directory / "config.json") or {}
    target = config.get("target")
    out = Path(args.out) if args.out else directory / "report.html"
    path = report(model, out, data=data, result=result, comparison=comparison,
                  output_names=[target] if isinstance(target, str) else None,
                  title=args.title or f"KAN report: {directory.name}")
    echo(f"wrote {path}")
    return 0
