"""``kanlab formula DIR``: print the closed-form formula of a saved symbolic KAN."""

from __future__ import annotations

from . import UsageError

HELP = "print the symbolic formula of a saved model (fitted with --symbolic)"


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="DIR")
    p.add_argument("--digits", type=int, default=4, help="significant digits of unsnapped constants (default 4)")
    p.add_argument("--latex", action="store_true", help="also print the LaTeX source")
    p.add_argument("--python", action="store_true", help="also print a numpy function")
    p.add_argument("--from-model", action="store_true",
                   help="read the formula off the model's symbolic edges even if the checkpoint stores the "
                        "formula verified by `kanlab fit --symbolic`")


def run(args, echo) -> int:
    import json
    from pathlib import Path

    from ..interpret.symbolic.formula import NotSymbolicError, formula
    from ..io import load
    from ..models.kan import KAN

    if args.digits < 1:
        raise UsageError(f"--digits must be >= 1, got {args.digits}")
    model = load(args.checkpoint)
    if not isinstance(model, KAN):
        raise UsageError(f"{args.checkpoint} holds a {type(model).__name__}, not a KAN: it has no formula")
    config = json.loads((Path(args.checkpoint) / "config.json").read_text())
    target = config.get("target")
    stored = _stored_result(Path(args.checkpoint), config)
    if stored.get("formula") and not args.from_model:
        import sympy

        exprs = [sympy.sympify(stored["formula"])]  # the formula verified on the data by `kanlab fit`
        if stored.get("formula_verified") is False:
            echo("# approximate: this formula does not reproduce the training data exactly")
    else:
        try:
            exprs = formula(model, getattr(model, "names", None), digits=args.digits)
        except NotSymbolicError as err:
            raise UsageError(f"{args.checkpoint}: {err}. Fit with `kanlab fit ... --symbolic --out DIR`") \
                from None
    outs = [target] if target and len(exprs) == 1 else [f"f{k + 1}" if len(exprs) > 1 else "f"
                                                          for k in range(len(exprs))]
    names = getattr(model, "names", None) or [f"x{k + 1}" for k in range(model.in_features)]
    for name, expr in zip(outs, exprs):
        echo(f"{name} = {expr}")
        if args.latex:
            import sympy

            echo(f"LaTeX: {sympy.latex(expr)}")
        if args.python:
            echo(f"def {name}({', '.join(names)}):\n    import numpy as np\n    return "
                 + _numpy_code(expr))
    return 0


def _stored_result(directory, config: dict) -> dict:
    """The formula `kanlab fit --symbolic --out DIR` stored with the checkpoint (config.json or result.json)."""
    import json

    if config.get("formula"):
        return config
    path = directory / "result.json"
    if path.is_file():
        try:
            result = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return result if isinstance(result, dict) else {}
    return {}


def _numpy_code(expr) -> str:
    from sympy.printing.numpy import NumPyPrinter

    return NumPyPrinter({"fully_qualified_modules": True}).doprint(expr).replace("numpy.", "np.")
