"""Interpretability: attribution, pruning, symbolic formulas, plots and the HTML report."""
