"""CLI subcommands, one module each (``add_arguments(parser)``, ``run(args, echo)``, ``HELP``).

A module dropped into this package is picked up automatically; ``ORDER`` fixes where the known ones appear in
``kanlab --help``.
"""

from __future__ import annotations

import importlib
import pkgutil


class UsageError(Exception):
    """Bad command-line arguments or input: the CLI prints the message on one line and exits 2."""


ORDER = ["demo", "fit", "predict", "formula", "plot", "report", "compare", "bench", "splines"]
_HELPERS = {"common"}


def _load() -> dict:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in _HELPERS and not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    out = {}
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "run") and hasattr(module, "add_arguments"):
            out[name] = module
    return out


COMMANDS = _load()

__all__ = ["COMMANDS", "UsageError", "ORDER"]
