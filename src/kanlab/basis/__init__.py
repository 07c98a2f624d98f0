"""Basis families behind one interface: ``(*, in) -> (*, in, K)``, registered by name."""

from .base import Basis, create_basis, get_basis_class, list_bases, register_basis
from .bspline import BSpline
from .rbf import RBF

__all__ = ["Basis", "BSpline", "RBF", "create_basis", "get_basis_class", "list_bases", "register_basis"]
