"""Layers built on the basis/kernel seam."""

from .linear import KANLinear

__all__ = ["KANLinear"]
