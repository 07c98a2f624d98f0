"""Layers built on the basis/kernel seam."""

from .linear import KANLinear
from .recurrent import TKAN, TKANCell, TKANState

__all__ = ["KANLinear", "TKAN", "TKANCell", "TKANState"]
