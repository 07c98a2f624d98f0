"""Interpretability."""
