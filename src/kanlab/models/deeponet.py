"""Operator networks: ``DeepONet`` (MLP branch and trunk) and ``DeepOKAN`` (KAN branch and trunk).

A deep operator network approximates an operator ``G`` mapping a function ``u`` to a function ``G(u)``:

    G(u)(y) ≈ Σ_k b_k(u) · t_k(y) + b0,

where the *branch* network sees ``u`` through its values at ``m`` fixed sensors, ``u = (u(x_1), …, u(x_m))``,
the *trunk* network sees a query point ``y ∈ R^d``, both end in ``p`` features, and ``b0`` is a learnt scalar.
DeepOKAN (Abueidda et al., arXiv 2405.19143) uses KANs with Gaussian radial basis functions for both
networks; here any registered basis works (``basis="bspline"``, ...).

Input scaling.  KAN bases live on a grid (``grid_range``, ``(-1, 1)`` by default).  Both networks therefore see
their inputs through a *fixed* affine map stored as buffers (saved with the model, never trained):

    branch input = (u - branch_shift) * branch_scale,      trunk input = (y - trunk_shift) * trunk_scale.

:meth:`OperatorNetwork.fit_normalization` computes them from training data so that the observed range lands
on ``input_range`` (by default the basis' ``grid_range``): one shift/scale for all sensor values (sensors carry
the same physical quantity, and some sensors may be constant, e.g. at Dirichlet boundaries) and one per trunk
coordinate.  Before it is called both maps are the identity.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .kan import KAN
from .mlp import MLP

__all__ = ["OperatorNetwork", "DeepONet", "DeepOKAN", "relative_l2"]


def _check_widths(widths: Sequence[int], what: str) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2 \
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"{what} must be a list of at least two positive integers (input first, p last), "
                         f"got {widths!r}")
    return list(widths)


def relative_l2(pred: Tensor, target: Tensor) -> Tensor:
    """Relative L2 error of every function: ``‖pred_i − target_i‖ / ‖target_i‖`` over the query points.

    Shape: ``(B, P)``, ``(B, P)`` → ``(B,)``.  Take ``.mean()`` for the usual operator-learning metric.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(f"relative_l2 expects two (B, P) tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    return torch.linalg.vector_norm(pred - target, dim=1) / torch.linalg.vector_norm(target, dim=1).clamp_min(1e-12)


class OperatorNetwork(nn.Module):
    """Branch × trunk operator network; subclasses choose how the two networks are built (:meth:`_make_net`).

    Arguments:
        branch_widths: ``[m, …, p]``: ``m`` sensors in, ``p`` features out.
        trunk_widths: ``[d, …, p]``: query-point dimension ``d`` in, the same ``p`` out.
        input_range: ``(low, high)`` that :meth:`fit_normalization` maps the data ranges onto.
        device, dtype: factory arguments.

    Shape:
        - ``u``: ``(B, m)`` sensor values of ``B`` input functions.
        - ``y``: ``(P, d)`` query points shared by all functions, or ``(B, P, d)`` per function.
        - Output: ``(B, P)``.

    Attributes:
        branch, trunk: the two networks.  b0: scalar bias ``()``.  branch_shift/branch_scale ``(m,)`` and
        trunk_shift/trunk_scale ``(d,)``: the fixed input normalisation (buffers).
    """

    kind = "operator"

    def __init__(self, branch_widths: Sequence[int], trunk_widths: Sequence[int], *,
                 input_range: tuple[float, float] = (-1.0, 1.0), device=None, dtype=None) -> None:
        super().__init__()
        self.branch_widths = _check_widths(branch_widths, "branch_widths")
        self.trunk_widths = _check_widths(trunk_widths, "trunk_widths")
        if self.branch_widths[-1] != self.trunk_widths[-1]:
            raise ValueError(f"branch and trunk must end in the same number of features p, got "
                             f"{self.branch_widths[-1]} (branch) and {self.trunk_widths[-1]} (trunk)")
        lo, hi = (float(v) for v in input_range)
        if not hi > lo:
            raise ValueError(f"input_range must satisfy low < high, got {tuple(input_range)!r}")
        self.input_range = (lo, hi)
        factory = {"device": device, "dtype": dtype}
        self.branch = self._make_net(self.branch_widths, **factory)
        self.trunk = self._make_net(self.trunk_widths, **factory)
        self.b0 = nn.Parameter(torch.zeros((), **factory))
        m, d = self.branch_widths[0], self.trunk_widths[0]
        self.register_buffer("branch_shift", torch.zeros(m, **factory))
        self.register_buffer("branch_scale", torch.ones(m, **factory))
        self.register_buffer("trunk_shift", torch.zeros(d, **factory))
        self.register_buffer("trunk_scale", torch.ones(d, **factory))

    def _make_net(self, widths: list[int], *, device=None, dtype=None) -> nn.Module:
        raise NotImplementedError

    # ---- sizes ---------------------------------------------------------------------------------------
    @property
    def n_sensors(self) -> int:
        return self.branch_widths[0]

    @property
    def query_dim(self) -> int:
        return self.trunk_widths[0]

    @property
    def n_features(self) -> int:  # p
        return self.branch_widths[-1]

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"branch_widths={self.branch_widths}, trunk_widths={self.trunk_widths}"

    def reset_parameters(self) -> None:
        """Re-initialise both networks and ``b0`` (the input normalisation is kept)."""
        for net in (self.branch, self.trunk):
            if hasattr(net, "reset_parameters"):
                net.reset_parameters()
            else:
                for mod in net.modules():
                    if isinstance(mod, nn.Linear):
                        mod.reset_parameters()
        with torch.no_grad():
            self.b0.zero_()

    # ---- input normalisation -------------------------------------------------------------------------
    @torch.no_grad()
    def fit_normalization(self, u: Tensor, y: Tensor) -> "OperatorNetwork":
        """Set the fixed affine input maps so that the ranges of ``u`` and ``y`` land on ``input_range``.

        Arguments:
            u: training sensor values ``(N, m)``; one shift/scale for all sensors.
            y: training query points ``(P, d)`` or ``(N, P, d)``; one shift/scale per coordinate.
        """
        u = self._check_u(u)
        y = torch.as_tensor(y)
        if y.dim() not in (2, 3) or y.shape[-1] != self.query_dim:
            raise ValueError(f"y must have shape (P, {self.query_dim}) or (N, P, {self.query_dim}), "
                             f"got {tuple(y.shape)}")
        lo, hi = self.input_range
        for data, shift, scale in ((u.reshape(-1), self.branch_shift, self.branch_scale),
                                   (y.reshape(-1, self.query_dim), self.trunk_shift, self.trunk_scale)):
            dmin, dmax = data.min(dim=0).values, data.max(dim=0).values
            if not (torch.isfinite(dmin).all() and torch.isfinite(dmax).all()):
                raise ValueError("fit_normalization: the data contain NaN or infinite values")
            span = (dmax - dmin).clamp_min(1e-12)
            s = (hi - lo) / span
            shift.copy_((dmin - lo / s).to(shift).expand_as(shift))
            scale.copy_(s.to(scale).expand_as(scale))
        return self

    # ---- evaluation ----------------------------------------------------------------------------------
    def _check_u(self, u: Tensor) -> Tensor:
        if not isinstance(u, Tensor):
            raise TypeError(f"u must be a torch.Tensor, got {type(u).__name__}")
        if u.dim() != 2 or u.shape[1] != self.n_sensors:
            raise ValueError(f"u must have shape (B, {self.n_sensors}) (sensor values of B functions), "
                             f"got {tuple(u.shape)}")
        return u

    def branch_features(self, u: Tensor) -> Tensor:
        """``b(u)``: ``(B, m)`` → ``(B, p)`` (normalisation included)."""
        u = self._check_u(u)
        return self.branch((u - self.branch_shift) * self.branch_scale)

    def trunk_features(self, y: Tensor) -> Tensor:
        """``t(y)``: ``(*, d)`` → ``(*, p)`` (normalisation included)."""
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if y.dim() < 1 or y.shape[-1] != self.query_dim:
            raise ValueError(f"query points must have shape (*, {self.query_dim}), got {tuple(y.shape)}")
        return self.trunk((y - self.trunk_shift) * self.trunk_scale)

    def forward(self, u: Tensor, y: Tensor) -> Tensor:
        """``G(u)(y)``: ``u (B, m)`` with ``y (P, d)`` (shared) or ``y (B, P, d)`` (per function) → ``(B, P)``."""
        u = self._check_u(u)
        if not isinstance(y, Tensor) or y.dim() not in (2, 3) or y.shape[-1] != self.query_dim:
            shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must have shape (P, {self.query_dim}) (shared query points) or "
                             f"(B, P, {self.query_dim}) (per function), got {shape}")
        if y.dim() == 3 and y.shape[0] != u.shape[0]:
            raise ValueError(f"per-function query points y {tuple(y.shape)} must have the same batch size as u "
                             f"{tuple(u.shape)}")
        b = self.branch_features(u)
        t = self.trunk_features(y)
        if y.dim() == 2:
            return b @ t.transpose(0, 1) + self.b0
        return torch.einsum("bk,bpk->bp", b, t) + self.b0

    # ---- checkpoints ---------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (see :meth:`from_config`)."""
        return {"branch_widths": list(self.branch_widths), "trunk_widths": list(self.trunk_widths),
                "input_range": list(self.input_range)}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, device=None, dtype=None) -> "OperatorNetwork":
        """Rebuild an (untrained) model from :meth:`config`; load the state dict for the weights."""
        kw = dict(config)
        if "input_range" in kw:
            kw["input_range"] = tuple(kw["input_range"])
        return cls(**kw, device=device, dtype=dtype)


class DeepONet(OperatorNetwork):
    """DeepONet with MLP branch and trunk (Lu et al. 2021): ``G(u)(y) ≈ Σ_k b_k(u)·t_k(y) + b0``.

    Arguments:
        branch_widths: ``[m, hidden…, p]``.  trunk_widths: ``[d, hidden…, p]``.
        activation: hidden activation name (``"tanh"``, ``"silu"``, ``"relu"``, ...).
        input_range: target range of :meth:`fit_normalization` (default ``(-1, 1)``).
        device, dtype: factory arguments.
    Shape: see :class:`OperatorNetwork`.
    """

    kind = "deeponet"

    def __init__(self, branch_widths: Sequence[int], trunk_widths: Sequence[int], activation: str = "tanh", *,
                 input_range: tuple[float, float] = (-1.0, 1.0), device=None, dtype=None) -> None:
        self.activation = activation
        super().__init__(branch_widths, trunk_widths, input_range=input_range, device=device, dtype=dtype)

    def _make_net(self, widths: list[int], *, device=None, dtype=None) -> nn.Module:
        return MLP(widths, activation=self.activation, device=device, dtype=dtype)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "activation": self.activation}


class DeepOKAN(OperatorNetwork):
    """DeepOKAN: a DeepONet whose branch and trunk are KANs, Gaussian-RBF by default (Abueidda et al. 2024).

    Arguments:
        branch_widths: ``[m, hidden…, p]``.  trunk_widths: ``[d, hidden…, p]``.
        basis: any registered basis name (``"rbf"`` by default).
        base_activation: residual branch of every KAN edge (``"silu"``; ``None``/``"zero"`` for pure RBF edges
            as in the paper's formulation).
        input_range: target range of :meth:`fit_normalization`; default: ``basis_kwargs["grid_range"]`` if
            given, else ``(-1, 1)`` (the default grid of the grid-based bases).
        device, dtype: factory arguments.
        **basis_kwargs: forwarded to every KAN layer's basis, e.g. ``num_centers=10``.
    Shape: see :class:`OperatorNetwork`.
    """

    kind = "deepokan"

    def __init__(self, branch_widths: Sequence[int], trunk_widths: Sequence[int], basis: str = "rbf", *,
                 base_activation: str | None = "silu", input_range: tuple[float, float] | None = None,
                 device=None, dtype=None, **basis_kwargs: Any) -> None:
        if not isinstance(basis, str):
            raise TypeError(f"basis must be a registered basis name, got {type(basis).__name__}")
        self.basis_name = basis
        self.base_activation = base_activation
        self.basis_kwargs = dict(basis_kwargs)
        if input_range is None:
            input_range = tuple(basis_kwargs.get("grid_range", (-1.0, 1.0)))
        super().__init__(branch_widths, trunk_widths, input_range=input_range, device=device, dtype=dtype)

    def _make_net(self, widths: list[int], *, device=None, dtype=None) -> nn.Module:
        return KAN(widths, basis=self.basis_name, base_activation=self.base_activation, device=device,
                   dtype=dtype, **self.basis_kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, basis={self.basis_name}"

    def config(self) -> dict[str, Any]:
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in self.basis_kwargs.items()}
        return {**super().config(), "basis": self.basis_name, "base_activation": self.base_activation,
                "basis_kwargs": kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, device=None, dtype=None) -> "DeepOKAN":
        kw = dict(config)
        basis_kwargs = {k: tuple(v) if k == "grid_range" else v for k, v in kw.pop("basis_kwargs", {}).items()}
        if kw.get("input_range") is not None:
            kw["input_range"] = tuple(kw["input_range"])
        return cls(**kw, **basis_kwargs, device=device, dtype=dtype)
