"""The ``Basis`` interface and the basis registry.

A basis maps inputs ``(*, in)`` to basis values ``(*, in, K)``; a layer contracts those values with its
coefficients ``(out, in, K)``.  N basis families and M layer types are then N + M files, not N × M classes.

A basis may be created *unbound* (``BSpline(grid_size=8)``, without ``in_features``) and bound later by the
layer that uses it (:meth:`Basis.bind`), so both ``KANLinear(4, 3, basis="rbf", num_centers=8)`` and
``KANLinear(4, 3, basis=RBF(num_centers=8))`` work.

Families register themselves with :func:`register_basis`; :func:`create_basis` and :func:`list_bases` make
them available by name, so tests and layers never switch on strings.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

__all__ = ["Basis", "register_basis", "create_basis", "list_bases", "get_basis_class"]

_REGISTRY: dict[str, type["Basis"]] = {}


class Basis(nn.Module):
    """Base class of all basis families: ``forward(x: (*, in)) -> (*, in, K)``.

    Class attributes describe capabilities:

    * ``supports_local`` — ``local(x)`` returns only the ``order + 1`` non-zero values and the index of the
      first, for the fast kernel;
    * ``supports_grid`` — ``update_grid`` (adaptive knots) and ``refine`` (grid extension) are available;
    * ``domain`` — a sentence for the docs and error messages: where the basis is meant to be used and what
      happens outside it (never NaN).

    Subclasses implement ``_build(device, dtype)`` (allocate parameters and buffers, knowing
    ``in_features``/``out_features``), ``reset_parameters()`` (fill them), ``num_functions`` and ``forward``.
    """

    name: str = "basis"
    supports_local: bool = False
    supports_grid: bool = False
    domain: str = "all real inputs"

    def __init__(self, in_features: int | None = None, *, out_features: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.in_features: int | None = None
        self.out_features: int | None = None
        if in_features is not None:
            self.bind(in_features, out_features, device=device, dtype=dtype)

    # ---- binding -------------------------------------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        return self.in_features is not None

    def bind(self, in_features: int, out_features: int | None = None, *, device=None, dtype=None) -> "Basis":
        """Fix the number of input features (and outputs, for per-edge families); allocate state."""
        if not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if self.in_features is not None:
            if self.in_features != in_features:
                raise ValueError(
                    f"this {type(self).__name__} is bound to in_features={self.in_features}, "
                    f"cannot reuse it for in_features={in_features}"
                )
            return self
        self.in_features = in_features
        self.out_features = out_features
        self._build(device=device, dtype=dtype)
        if not _is_meta(device):
            self.reset_parameters()
        return self

    def _build(self, device=None, dtype=None) -> None:
        """Allocate parameters/buffers (called once by :meth:`bind`)."""

    def reset_parameters(self) -> None:
        """(Re)initialise parameters and rebuild computed buffers such as grids."""

    # ---- the contract --------------------------------------------------------------------------------
    @property
    def num_functions(self) -> int:  # K
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:  # (*, in) -> (*, in, K)
        raise NotImplementedError

    def local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(values (*, in, order+1), first_index (*, in))`` for local-support families."""
        raise NotImplementedError(f"{type(self).__name__} has no local-support evaluation")

    def update_grid(self, x: Tensor, coef: Tensor) -> Tensor:
        """Adapt the grid to samples ``x`` ``(N, in)``; return coefficients ``(out, in, K)`` that keep the
        represented functions ``Σ_k coef[o, i, k] B_k(x_i)`` (least squares)."""
        raise NotImplementedError(f"{type(self).__name__} has no grid to update")

    def refine(self, grid_size: int, coef: Tensor) -> Tensor:
        """Grid extension: switch to ``grid_size`` and return coefficients that keep the functions."""
        raise NotImplementedError(f"{type(self).__name__} has no grid to refine")

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (used by checkpoints); subclasses extend."""
        return {}

    def _check_input(self, x: Tensor) -> None:
        if self.in_features is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a number of input features yet")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (*, {self.in_features}), got {tuple(x.shape)}"
            )


def _is_meta(device) -> bool:
    return device is not None and torch.device(device).type == "meta"


def register_basis(name: str) -> Callable[[type[Basis]], type[Basis]]:
    """Class decorator: make a :class:`Basis` subclass available as ``create_basis(name)``."""

    def deco(cls: type[Basis]) -> type[Basis]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"basis name {name!r} is already registered to {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_bases() -> list[str]:
    """Names of all registered basis families, sorted."""
    return sorted(_REGISTRY)


def get_basis_class(name: str) -> type[Basis]:
    """The class registered under ``name``; a clear error listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown basis {name!r}; known bases: {', '.join(list_bases())}") from None


def create_basis(name: str, in_features: int | None = None, **kwargs: Any) -> Basis:
    """Create a registered basis by name, e.g. ``create_basis("bspline", grid_size=8, order=3)``."""
    cls = get_basis_class(name)
    try:
        return cls(in_features, **kwargs)
    except TypeError as err:
        raise TypeError(f"bad argument for basis {name!r}: {err}") from None
