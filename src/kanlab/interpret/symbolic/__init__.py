"""Symbolic regression on KAN edges: the primitive library, per-edge fits, snapping, formulas, exporters."""

from .auto import auto_symbolic
from .expression import to_latex, to_numpy, to_torch, torch_function
from .fit import EdgeFit, fit_primitive, fix_symbolic, rank_primitives, suggest_symbolic, unfix_symbolic
from .formula import NotSymbolicError, edge_formula, formula, nice_number, prettify, raw_formula
from .library import Primitive, get_primitive, list_primitives, register_primitive
from .refine import SnapResult, expression_rmse, fit_constants, snap_constants

__all__ = [
    "auto_symbolic", "suggest_symbolic", "fix_symbolic", "unfix_symbolic", "fit_primitive", "rank_primitives",
    "EdgeFit", "formula", "raw_formula", "edge_formula", "prettify", "nice_number", "NotSymbolicError", "to_latex", "to_numpy",
    "to_torch", "torch_function", "Primitive", "get_primitive", "list_primitives", "register_primitive",
    "fit_constants", "snap_constants", "SnapResult", "expression_rmse",
]
