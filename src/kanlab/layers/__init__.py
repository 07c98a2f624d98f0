"""Layers built on the basis/kernel seam."""

from .conv import KANConv1d, KANConv2d, KANConv3d
from .linear import KANLinear
from .recurrent import TKAN, TKANCell, TKANState

__all__ = ["KANLinear", "KANConv1d", "KANConv2d", "KANConv3d", "TKAN", "TKANCell", "TKANState"]
