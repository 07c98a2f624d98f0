"""Image models: KConvKAN (KAN convolutions + KAN head), KAN convolutions + MLP head, the plain CNN of
matched size they are compared with, and Wav-KAN (a KAN-shaped network of wavelet edges).

All conv models share one trunk shape, so a comparison changes only what an edge is::

    [conv(prev → c, k, padding="same") → (BatchNorm2d) → (activation, CNN only) → MaxPool2d(2)] per c
    → AdaptiveAvgPool2d(head_pool) → flatten → head

``conv`` is :class:`~kanlab.layers.KANConv2d` (KConvKAN, KAN-conv + MLP) or ``nn.Conv2d`` (CNN); the head is
a stack of :class:`~kanlab.layers.KANLinear` (KConvKAN) or ``nn.Linear`` layers.  Normalisation lives between
layers, never inside them; in eval mode every model is independent across the batch.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..layers.activations import get_activation
from ..layers.conv import KANConv2d
from ..layers.linear import KANLinear
from .factory import register_model

__all__ = ["KConvKAN", "KANConvMLP", "CNN", "WavKAN", "matched_cnn", "count_params"]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Activation(nn.Module):
    """A named activation as a module (JSON-safe name, no lambda)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = get_activation(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def _check_channels(channels: Sequence[int]) -> list[int]:
    chans = list(channels)
    if not chans or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in chans):
        raise ValueError(f"channels must be a non-empty list of positive integers, got {channels!r}")
    return chans


def _check_norm(norm: str | None) -> str | None:
    if norm not in (None, "batch"):
        raise ValueError(f"norm must be 'batch' or None, got {norm!r}")
    return norm


class _ConvNet(nn.Module):
    """Trunk + head; subclasses say what a conv layer and the head are."""

    kind = "convnet"

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int], kernel_size: int,
                 norm: str | None, head_pool: int, factory: dict) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("kernel_size", kernel_size), ("head_pool", head_pool)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.channels = _check_channels(channels)
        self.norm = _check_norm(norm)
        blocks: list[nn.Module] = []
        prev = in_channels
        for c in self.channels:
            blocks.append(self._conv(prev, c, kernel_size, factory))
            if norm == "batch":
                blocks.append(nn.BatchNorm2d(c, **factory))
            blocks.extend(self._after_conv())
            blocks.append(nn.MaxPool2d(2, ceil_mode=True))
            prev = c
        blocks.append(nn.AdaptiveAvgPool2d(head_pool))
        blocks.append(nn.Flatten(1))
        self.features = nn.Sequential(*blocks)
        self.head = self._head(prev * head_pool * head_pool, num_classes, factory)

    def _conv(self, c_in: int, c_out: int, k: int, factory: dict) -> nn.Module:
        raise NotImplementedError

    def _after_conv(self) -> list[nn.Module]:
        return []

    def _head(self, n_in: int, n_out: int, factory: dict) -> nn.Module:
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        return count_params(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` → logits ``(N, num_classes)``."""
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__} expects images of shape (N, {self.in_channels}, H, W), "
                             f"got {shape}")
        return self.head(self.features(x))

    def config(self) -> dict[str, Any]:
        return dict(self._config)


def _mlp_head(n_in: int, hidden: Sequence[int], n_out: int, activation: str, factory: dict) -> nn.Sequential:
    mods: list[nn.Module] = []
    for h in hidden:
        mods += [nn.Linear(n_in, h, **factory), _Activation(activation)]
        n_in = h
    mods.append(nn.Linear(n_in, n_out, **factory))
    return nn.Sequential(*mods)


@register_model("kconvkan")
class KConvKAN(_ConvNet):
    """KAN convolutions followed by a KAN head (Bodner et al.'s Convolutional KAN).

    Arguments:
        in_channels, num_classes: image channels and classes.
        channels: output channels of each :class:`~kanlab.layers.KANConv2d` block (each halves H and W).
        kernel_size: odd or even kernel size (``padding="same"``).
        head_hidden: hidden widths of the KAN head (``()``: one :class:`KANLinear` to the classes).
        basis: a registered basis name for every edge, e.g. ``"bspline"``, ``"rbf"``.
        norm: ``"batch"`` (BatchNorm2d after each conv, keeping inputs on the basis' grid) or None.
        head_pool: spatial size kept before flattening (``AdaptiveAvgPool2d``).
        base_activation: residual branch of every edge.
        **basis_kwargs: forwarded to every basis (``grid_size=5``, ``grid_range=(-2, 2)``, ...).
    Shape:
        ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    kind = "kconvkan"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (8, 16),
                 kernel_size: int = 3, *, head_hidden: Sequence[int] = (), basis: str = "bspline",
                 norm: str | None = "batch", head_pool: int = 2, base_activation: str | None = "silu",
                 device=None, dtype=None, **basis_kwargs: Any) -> None:
        self._basis_args = (basis, base_activation, dict(basis_kwargs))
        self.head_hidden = list(head_hidden)
        super().__init__(in_channels, num_classes, channels, kernel_size, norm, head_pool,
                         {"device": device, "dtype": dtype})
        self._config = {"in_channels": in_channels, "num_classes": num_classes, "channels": list(channels),
                        "kernel_size": kernel_size, "head_hidden": list(head_hidden), "basis": basis,
                        "norm": norm, "head_pool": head_pool, "base_activation": base_activation,
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in basis_kwargs.items()}}

    def _conv(self, c_in, c_out, k, factory):
        basis, act, kw = self._basis_args
        return KANConv2d(c_in, c_out, k, padding="same", basis=basis, base_activation=act, **factory, **kw)

    def _head(self, n_in, n_out, factory):
        basis, act, kw = self._basis_args
        widths = [n_in, *self.head_hidden, n_out]
        return nn.Sequential(*[KANLinear(a, b, basis, base_activation=act, **factory, **kw)
                               for a, b in zip(widths[:-1], widths[1:])])


@register_model("kanconv_mlp")
class KANConvMLP(_ConvNet):
    """KAN convolutions followed by an MLP head (``nn.Linear`` layers with ``activation`` between).

    Arguments as :class:`KConvKAN`, plus ``activation`` for the head.
    Shape:
        ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    kind = "kanconv_mlp"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (8, 16),
                 kernel_size: int = 3, *, head_hidden: Sequence[int] = (32,), activation: str = "silu",
                 basis: str = "bspline", norm: str | None = "batch", head_pool: int = 2,
                 base_activation: str | None = "silu", device=None, dtype=None, **basis_kwargs: Any) -> None:
        get_activation(activation)
        self._basis_args = (basis, base_activation, dict(basis_kwargs))
        self.head_hidden = list(head_hidden)
        self.activation = activation
        super().__init__(in_channels, num_classes, channels, kernel_size, norm, head_pool,
                         {"device": device, "dtype": dtype})
        self._config = {"in_channels": in_channels, "num_classes": num_classes, "channels": list(channels),
                        "kernel_size": kernel_size, "head_hidden": list(head_hidden), "activation": activation,
                        "basis": basis, "norm": norm, "head_pool": head_pool, "base_activation": base_activation,
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in basis_kwargs.items()}}

    def _conv(self, c_in, c_out, k, factory):
        basis, act, kw = self._basis_args
        return KANConv2d(c_in, c_out, k, padding="same", basis=basis, base_activation=act, **factory, **kw)

    def _head(self, n_in, n_out, factory):
        return _mlp_head(n_in, self.head_hidden, n_out, self.activation, factory)


@register_model("cnn")
class CNN(_ConvNet):
    """The plain CNN baseline: the same trunk with ``nn.Conv2d`` + activation, and an MLP head.

    Arguments:
        in_channels, num_classes, channels, kernel_size, norm, head_pool: as :class:`KConvKAN`.
        head_hidden: hidden widths of the ``nn.Linear`` head.
        activation: a base-activation name (``"relu"``, ``"silu"``, ...).
    Shape:
        ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    kind = "cnn"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (16, 32),
                 kernel_size: int = 3, *, head_hidden: Sequence[int] = (), activation: str = "relu",
                 norm: str | None = "batch", head_pool: int = 2, device=None, dtype=None) -> None:
        get_activation(activation)
        self.activation = activation
        self.head_hidden = list(head_hidden)
        super().__init__(in_channels, num_classes, channels, kernel_size, norm, head_pool,
                         {"device": device, "dtype": dtype})
        self._config = {"in_channels": in_channels, "num_classes": num_classes, "channels": list(channels),
                        "kernel_size": kernel_size, "head_hidden": list(head_hidden), "activation": activation,
                        "norm": norm, "head_pool": head_pool}

    def _conv(self, c_in, c_out, k, factory):
        return nn.Conv2d(c_in, c_out, k, padding="same", **factory)

    def _after_conv(self):
        return [_Activation(self.activation)]

    def _head(self, n_in, n_out, factory):
        return _mlp_head(n_in, self.head_hidden, n_out, self.activation, factory)


def matched_cnn(n_params: int, *, ratios: Sequence[float] = (1, 2), in_channels: int = 1, num_classes: int = 10,
                kernel_size: int = 3, **kwargs: Any) -> CNN:
    """The :class:`CNN` whose channels ``round(c·ratio)`` give the parameter count closest to ``n_params``."""
    if not isinstance(n_params, int) or n_params < 1:
        raise ValueError(f"n_params must be a positive integer, got {n_params!r}")
    device = kwargs.pop("device", None)

    def build(c: int, device="meta") -> CNN:
        chans = [max(1, round(c * r)) for r in ratios]
        return CNN(in_channels, num_classes, chans, kernel_size, device=device, **kwargs)

    best, gap = 1, float("inf")
    for c in range(1, 1025):
        count = count_params(build(c))
        if abs(count - n_params) < gap:
            best, gap = c, abs(count - n_params)
        if count > n_params:
            break
    return build(best, device=device)


@register_model("wavkan")
class WavKAN(nn.Module):
    """Wav-KAN: a KAN-shaped network whose edges use a wavelet basis (per-edge scale and translation).

    Each layer is a :class:`~kanlab.layers.KANLinear` with ``basis`` (``"mexican_hat"``, ``"morlet"``,
    ``"dog"``, ``"meyer"``, ``"shannon"`` — or any registered basis), followed by ``BatchNorm1d`` on the
    hidden layers (``batch_norm``) and optionally on the output (``output_batch_norm``), as in Wav-KAN.
    Images are flattened: input ``(N, *)`` with ``prod(*) == widths[0]``.

    Arguments:
        widths: nodes per layer, input first, e.g. ``[64, 32, 10]``.
        basis: a registered basis name.
        batch_norm: BatchNorm1d after every hidden layer.
        output_batch_norm: BatchNorm1d after the last layer too.
        base_activation: residual branch of every edge.
        **basis_kwargs: forwarded to every basis.
    Shape:
        ``(N, widths[0])`` or ``(N, *)`` → ``(N, widths[-1])``.
    """

    kind = "wavkan"

    def __init__(self, widths: Sequence[int], basis: str = "mexican_hat", *, batch_norm: bool = True,
                 output_batch_norm: bool = False, base_activation: str | None = "silu", device=None, dtype=None,
                 **basis_kwargs: Any) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2 or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
            raise ValueError(f"widths must be at least two positive integers, got {widths!r}")
        factory = {"device": device, "dtype": dtype}
        self.widths = widths
        mods: list[nn.Module] = []
        n_layers = len(widths) - 1
        for l, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            mods.append(KANLinear(a, b, basis, base_activation=base_activation, **factory, **basis_kwargs))
            last = l == n_layers - 1
            if (batch_norm and not last) or (output_batch_norm and last):
                mods.append(nn.BatchNorm1d(b, **factory))
        self.net = nn.Sequential(*mods)
        self._config = {"widths": widths, "basis": basis, "batch_norm": batch_norm,
                        "output_batch_norm": output_batch_norm, "base_activation": base_activation,
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in basis_kwargs.items()}}

    @property
    def n_params(self) -> int:
        return count_params(self)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"

    def forward(self, x: Tensor) -> Tensor:
        """``(N, widths[0])`` (or ``(N, *)``, flattened) → ``(N, widths[-1])``."""
        if not isinstance(x, Tensor) or x.dim() < 2 or math.prod(x.shape[1:]) != self.widths[0]:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"WavKAN expects input of shape (N, {self.widths[0]}) (or (N, *) with "
                             f"{self.widths[0]} values per sample), got {shape}")
        return self.net(x.flatten(1))

    def config(self) -> dict[str, Any]:
        return dict(self._config)
