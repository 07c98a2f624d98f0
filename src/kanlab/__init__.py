"""kanlab — Kolmogorov–Arnold Networks on PyTorch.

Public API (explicit; no wildcard imports)::

    from kanlab import KAN, KANLinear, fit, make_dataset
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import basis, splines
from .basis import Basis, BSpline, create_basis, list_bases, register_basis
from .data import make_dataset
from .io import load, save
from .layers import KANLinear
from .models import KAN, MLP, create_model, list_models, matched_mlp
from .train import EarlyStopping, History, TrainingDivergedError, fit
from . import interpret
from .interpret import attribute, auto_symbolic, formula, plot, plot_edge, prune

try:
    __version__ = _version("kanlab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "basis",
    "splines",
    "Basis",
    "BSpline",
    "create_basis",
    "list_bases",
    "register_basis",
    "KANLinear",
    "KAN",
    "MLP",
    "matched_mlp",
    "create_model",
    "list_models",
    "fit",
    "History",
    "EarlyStopping",
    "TrainingDivergedError",
    "make_dataset",
    "save",
    "load",
    "report",
    "interpret",
    "attribute",
    "prune",
    "auto_symbolic",
    "formula",
    "plot",
    "plot_edge",
]


def report(model, path, **kwargs):
    """Write a self-contained HTML report of ``model`` to ``path`` (see :func:`kanlab.interpret.report.report`)."""
    from .interpret.report import report as _report

    return _report(model, path, **kwargs)
