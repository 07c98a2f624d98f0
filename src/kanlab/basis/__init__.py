"""Basis families behind one interface: ``(*, in) -> (*, in, K)``, registered by name."""

from .base import Basis, create_basis, get_basis_class, list_bases, register_basis
from .bspline import BSpline
from .rbf import RBF
from .hermite import CatmullRom
from .natural_cubic import NaturalCubic
from .chebyshev import Chebyshev
from .legendre import Legendre
from .gram import Gram
from .jacobi import Jacobi
from .bernstein import Bernstein
from .fourier import Fourier
from .wavelet import DerivativeOfGaussian, MexicanHat, Meyer, Morlet, Shannon, WaveletBasis
from .rational import Rational
from .relu import ReLUBumps

__all__ = ["Basis", "BSpline", "RBF", "create_basis", "get_basis_class", "list_bases", "register_basis",
           "CatmullRom", "NaturalCubic", "Chebyshev", "Legendre", "Gram", "Jacobi", "Bernstein", "Fourier",
           "WaveletBasis", "MexicanHat", "Morlet", "DerivativeOfGaussian", "Meyer", "Shannon", "Rational",
           "ReLUBumps"]
