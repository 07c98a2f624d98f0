"""Interpretability of KANs: attribution, pruning, symbolic formulas, plots, and the science workflow.

Free functions that take a model (``prune(model, x)``, ``auto_symbolic(model, x, y)``, ``formula(model)``,
``plot(model, x)``); :class:`kanlab.KAN` has thin methods that delegate to them.
"""

from .attribution import Attribution, attribute, capture_layer_inputs, edge_activations, feature_scores
from .pipeline import discover_formula, science_workflow
from .plot import plot, plot_edge
from .prune import prune, prune_inputs, select_nodes
from .symbolic import (auto_symbolic, fix_symbolic, formula, list_primitives, register_primitive,
                       suggest_symbolic, to_latex, to_numpy, to_torch, unfix_symbolic)

__all__ = [
    "Attribution", "attribute", "capture_layer_inputs", "edge_activations", "feature_scores",
    "prune", "prune_inputs", "select_nodes",
    "auto_symbolic", "suggest_symbolic", "fix_symbolic", "unfix_symbolic", "formula", "list_primitives",
    "register_primitive", "to_latex", "to_numpy", "to_torch",
    "plot", "plot_edge", "science_workflow", "discover_formula",
]
