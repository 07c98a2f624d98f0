"""``KAN``: a stack of :class:`~kanlab.layers.KANLinear` layers, with optional multiplication nodes (KAN 2.0)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..kernels.fused_network import fused_network
from ..layers.linear import KANLinear

__all__ = ["KAN", "normalize_widths"]


def normalize_widths(widths: Sequence[int | Sequence[int]]) -> list[tuple[int, int]]:
    """``[2, (3, 1), 1]`` → ``[(2, 0), (3, 1), (1, 0)]``: (sum nodes, multiplication nodes) per layer."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(f"widths must be a list of at least two layer widths, e.g. [2, 5, 1], got {widths!r}")
    out: list[tuple[int, int]] = []
    for pos, w in enumerate(widths):
        if isinstance(w, bool):
            raise ValueError(f"width {pos} must be an integer or (n_sum, n_mult), got {w!r}")
        if isinstance(w, int):
            pair = (w, 0)
        elif isinstance(w, Sequence) and len(w) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              for v in w):
            pair = (int(w[0]), int(w[1]))
        else:
            raise ValueError(f"width {pos} must be an integer or (n_sum, n_mult), got {w!r}")
        if pair[0] < 0 or pair[1] < 0 or pair[0] + pair[1] < 1:
            raise ValueError(f"width {pos} must have at least one node and no negative counts, got {w!r}")
        out.append(pair)
    if out[0][1]:
        raise ValueError("width 0 (the input layer) cannot have multiplication nodes")
    return out


class KAN(nn.Module):
    """A Kolmogorov–Arnold network.

    Arguments:
        widths: nodes per layer, input first: ``[2, 5, 1]``; an entry ``(n_sum, n_mult)`` adds ``n_mult``
            multiplication nodes, each the product of two extra outputs of the previous KAN layer.
        basis: basis name or per-layer list of :class:`~kanlab.basis.Basis` instances.
        base_activation, bias, device, dtype, **basis_kwargs: forwarded to every :class:`KANLinear`.

    Shape:
        input ``(*, widths[0])`` → output ``(*, widths[-1])``.
    """

    def __init__(self, widths: Sequence[int | Sequence[int]], basis: str | Sequence = "bspline", *,
                 base_activation: str | None = "silu", bias: bool = True, device=None, dtype=None,
                 **basis_kwargs: Any) -> None:
        super().__init__()
        self.width_pairs = normalize_widths(widths)
        self.widths = [w if m == 0 else (w, m) for w, m in self.width_pairs]
        self.basis_name = basis if isinstance(basis, str) else None
        self.base_activation = base_activation
        self.basis_kwargs = dict(basis_kwargs)
        n_layers = len(self.width_pairs) - 1
        if not isinstance(basis, str):
            if len(basis) != n_layers:
                raise ValueError(f"basis list must have one Basis per layer ({n_layers}), got {len(basis)}")
            per_layer = list(basis)
        else:
            per_layer = [basis] * n_layers
        layers = []
        for l in range(n_layers):
            n_in = sum(self.width_pairs[l])
            n_sum, n_mult = self.width_pairs[l + 1]
            layers.append(KANLinear(n_in, n_sum + 2 * n_mult, per_layer[l], base_activation=base_activation,
                                    bias=bias, device=device, dtype=dtype,
                                    **(basis_kwargs if isinstance(per_layer[l], str) else {})))
        self.layers = nn.ModuleList(layers)

    @property
    def in_features(self) -> int:
        return self.width_pairs[0][0]

    @property
    def out_features(self) -> int:
        return sum(self.width_pairs[-1])

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def _nodes(self, l: int, z: Tensor) -> Tensor:
        """Apply the multiplication nodes after KAN layer ``l`` (``z``: ``(*, n_sum + 2·n_mult)``)."""
        n_sum, n_mult = self.width_pairs[l + 1]
        if n_mult == 0:
            return z
        pairs = z[..., n_sum:].reshape(*z.shape[:-1], n_mult, 2)
        return torch.cat([z[..., :n_sum], pairs[..., 0] * pairs[..., 1]], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """``(*, widths[0])`` → ``(*, widths[-1])``."""
        if isinstance(x, Tensor) and (x.dim() < 1 or x.shape[-1] != self.in_features):
            raise ValueError(f"KAN expects input of shape (*, {self.in_features}), got {tuple(x.shape)}")
        if isinstance(x, Tensor) and x.dim() == 2:
            self.layers[0]._check(x)  # the same errors as the layers' own path
            out = fused_network(self, x)  # small networks: the whole stack as one autograd node
            if out is not None:
                return out
        for l, layer in enumerate(self.layers):
            x = self._nodes(l, layer(x))
        return x

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """The input of every KAN layer (and the final output last): ``len(layers) + 1`` tensors."""
        outs = [x]
        for l, layer in enumerate(self.layers):
            x = self._nodes(l, layer(x))
            outs.append(x)
        return outs

    # ---- grids ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Adapt each layer's grid to the activations reaching it (layer by layer, in order)."""
        for l, layer in enumerate(self.layers):
            if layer.basis.supports_grid:
                layer.update_grid(x)
            x = self._nodes(l, layer(x))

    @torch.no_grad()
    def widen_grids(self, x: Tensor, margin: float) -> list[int]:
        """Widen each B-spline layer's grid (see :meth:`KANLinear.widen_grid`) to the activations reaching it,
        layer by layer; returns the indices of the layers widened."""
        from ..basis.bspline import BSpline

        widened = []
        for l, layer in enumerate(self.layers):
            if type(layer.basis) is BSpline:
                layer.widen_grid(x, margin)
                widened.append(l)
            x = self._nodes(l, layer(x))
        return widened

    @torch.no_grad()
    def refine(self, grid_size: int) -> None:
        """Grid extension of every grid-based layer (replaces ``coef`` Parameters: rebuild optimizers)."""
        for layer in self.layers:
            if layer.basis.supports_grid:
                layer.refine(grid_size)

    @property
    def grid_size(self) -> int | None:
        sizes = {getattr(l.basis, "grid_size", None) for l in self.layers}
        return sizes.pop() if len(sizes) == 1 else None

    # ---- thin conveniences that delegate to free functions -------------------------------------------
    def fit(self, data, **kwargs):
        """Same as :func:`kanlab.fit` (``kanlab.fit(self, data, **kwargs)``)."""
        from ..train.loop import fit

        return fit(self, data, **kwargs)

    def attribute(self, x: Tensor):
        """Same as :func:`kanlab.interpret.attribute` (edge/node/input importance on inputs ``x``)."""
        from ..interpret.attribution import attribute

        return attribute(self, x)

    def prune(self, x: Tensor, threshold: float = 1e-2, **kwargs) -> "KAN":
        """Same as :func:`kanlab.prune`: a pruned copy (this model is untouched)."""
        from ..interpret.prune import prune

        return prune(self, x, threshold, **kwargs)

    def suggest_symbolic(self, l: int, i: int, j: int, x: Tensor, **kwargs):
        """Same as :func:`kanlab.interpret.suggest_symbolic` for edge ``(l, i, j)``."""
        from ..interpret.symbolic.fit import suggest_symbolic

        return suggest_symbolic(self, l, i, j, x, **kwargs)

    def fix_symbolic(self, l: int, i: int, j: int, name: str, x: Tensor | None = None, **kwargs):
        """Same as :func:`kanlab.interpret.fix_symbolic` for edge ``(l, i, j)``."""
        from ..interpret.symbolic.fit import fix_symbolic

        return fix_symbolic(self, l, i, j, name, x, **kwargs)

    def auto_symbolic(self, x: Tensor, y: Tensor | None = None, **kwargs) -> list[dict]:
        """Same as :func:`kanlab.auto_symbolic` (snaps every numeric edge in place)."""
        from ..interpret.symbolic.auto import auto_symbolic

        return auto_symbolic(self, x, y, **kwargs)

    def formula(self, names=None, **kwargs) -> list:
        """Same as :func:`kanlab.formula`: one sympy expression per output."""
        from ..interpret.symbolic.formula import formula

        return formula(self, names, **kwargs)

    def plot(self, x: Tensor | None = None, **kwargs):
        """Same as :func:`kanlab.plot`: the network diagram as a matplotlib Figure."""
        from ..interpret.plot import plot

        return plot(self, x, **kwargs)

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments of this model, current grid sizes included (see
        :meth:`from_config`)."""
        return {
            "widths": [list(w) if isinstance(w, tuple) else w for w in self.widths],
            "base_activation": self.base_activation,
            "bias": self.layers[0].bias is not None,
            "layers": [{"basis": layer.basis.name, "basis_kwargs": layer.basis.config()} for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, device=None, dtype=None) -> "KAN":
        """Rebuild an (untrained) model with the architecture described by :meth:`config`."""
        from ..basis import create_basis

        bases = [create_basis(spec["basis"], **spec.get("basis_kwargs", {})) for spec in config["layers"]]
        return cls([tuple(w) if isinstance(w, list) else w for w in config["widths"]], basis=bases,
                   base_activation=config.get("base_activation", "silu"), bias=config.get("bias", True),
                   device=device, dtype=dtype)
