"""Layers built on the basis/kernel seam."""

from .conv import KANConv1d, KANConv2d, KANConv3d
from .linear import KANLinear

__all__ = ["KANLinear", "KANConv1d", "KANConv2d", "KANConv3d"]
