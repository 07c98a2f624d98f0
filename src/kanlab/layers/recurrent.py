r"""Temporal KAN (TKAN, arXiv 2405.07344): an LSTM whose output gate is computed by recurrent KAN sub-layers.

One step of :class:`TKANCell` (``σ`` the logistic sigmoid, ``⊙`` the elementwise product):

.. code-block:: text

    i_t = σ(W_i x_t + U_i h_{t-1} + b_i)                      input gate
    f_t = σ(W_f x_t + U_f h_{t-1} + b_f)                      forget gate
    g_t = act(W_g x_t + U_g h_{t-1} + b_g)                    candidate cell (act = sigmoid, as in the paper)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    for each sub-layer l = 1..L (a recurrent KAN, "RKAN", with its own state h̃_l):
        s_{l,t} = W_{l,x} x_t + W_{l,h} h̃_{l,t-1}                  (d_in)
        o_{l,t} = KAN_l(s_{l,t})                                   (d_out)
        h̃_{l,t} = a_l ⊙ o_{l,t} + b_l ⊙ h̃_{l,t-1}                  (d_out)
    r_t = concat(o_{1,t}, ..., o_{L,t})                        (L·d_out)
    o_t = σ(W_o r_t + b_o)                                      output gate from the KAN sub-layers
    h_t = o_t ⊙ tanh(c_t)

Each ``KAN_l`` is a :class:`~kanlab.layers.KANLinear` with any registered basis, so sub-layers may mix
families (B-splines of different orders, RBF, ...).  The state is a :class:`TKANState` ``(h, c, sub)``:
``h`` and ``c`` have exactly the shapes ``nn.LSTM`` uses, ``sub`` holds the sub-layer states ``h̃``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import KANLinear

__all__ = ["TKANCell", "TKAN", "TKANState", "CELL_ACTIVATIONS", "normalize_sub_kan"]

#: Candidate-cell activations: ``"sigmoid"`` follows the TKAN paper; ``"tanh"`` is the classical LSTM choice
#: (candidate values in (-1, 1), so the cell can also decrease).
CELL_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}

#: One cubic B-spline sub-layer on 5 grid intervals.
DEFAULT_SUB_KAN: tuple[dict[str, Any], ...] = ({"basis": "bspline", "grid_size": 5, "order": 3},)


class TKANState(NamedTuple):
    """Recurrent state of a TKAN cell or layer.

    For a cell: ``h (B, H)``, ``c (B, H)``, ``sub (B, L·d_out)``.  For a layer (as ``nn.LSTM``): ``h`` and
    ``c`` are ``(num_layers, B, H)`` and ``sub`` is ``(num_layers, B, L·d_out)`` (batch dimension dropped
    for unbatched input).  ``h_n, c_n = state[:2]`` gives exactly what ``nn.LSTM`` returns.
    """

    h: Tensor
    c: Tensor
    sub: Tensor


def normalize_sub_kan(sub_kan: Any) -> list[dict[str, Any]]:
    """Sub-layer specifications as a list of JSON-safe dicts ``{"basis": name, **options}``.

    Accepts ``None`` (the default: one cubic B-spline sub-layer), a basis name (``"rbf"``), a count ``n``
    (``n`` default sub-layers), a dict (``{"basis": "bspline", "order": 2}``; options are
    ``base_activation`` and the basis's own keyword arguments) or a sequence of names/dicts.
    """
    if sub_kan is None:
        return [dict(spec) for spec in DEFAULT_SUB_KAN]
    if isinstance(sub_kan, bool):
        raise TypeError("sub_kan must be a basis name, a count, a dict or a sequence of those, got a bool")
    if isinstance(sub_kan, int):
        if sub_kan < 1:
            raise ValueError(f"sub_kan count must be >= 1, got {sub_kan}")
        return [dict(DEFAULT_SUB_KAN[0]) for _ in range(sub_kan)]
    if isinstance(sub_kan, (str, dict)):
        sub_kan = [sub_kan]
    if not isinstance(sub_kan, Sequence) or len(sub_kan) == 0:
        raise ValueError(f"sub_kan must be a non-empty sequence of basis names or dicts, got {sub_kan!r}")
    specs = []
    for item in sub_kan:
        if isinstance(item, str):
            specs.append({"basis": item})
        elif isinstance(item, dict):
            spec = dict(item)
            spec.setdefault("basis", "bspline")
            if not isinstance(spec["basis"], str):
                raise TypeError(f"sub_kan 'basis' must be a registered basis name, got {spec['basis']!r}")
            specs.append(spec)
        else:
            raise TypeError(f"each sub_kan entry must be a basis name or a dict, got {type(item).__name__}")
    return specs


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class TKANCell(nn.Module):
    r"""One TKAN step (see the module docstring for the equations).

    Arguments:
        input_size: features of ``x_t``.
        hidden_size: size of ``h`` and ``c``.
        sub_kan: the KAN sub-layers, see :func:`normalize_sub_kan` (default: one cubic B-spline sub-layer).
        sub_kan_input_dim: ``d_in``, width of each sub-KAN's input ``s_{l,t}`` (default ``input_size``).
        sub_kan_output_dim: ``d_out``, width of each sub-KAN's output and state ``h̃_l`` (default
            ``input_size``).
        cell_activation: candidate-cell activation, ``"sigmoid"`` (the paper) or ``"tanh"`` (classic LSTM).
        bias: learn the gate biases ``b_i, b_f, b_g, b_o``.
        device, dtype: factory arguments.

    Shape:
        - Input: ``(B, input_size)`` or ``(input_size,)``; state ``None`` (zeros) or ``(h, c)`` /
          ``(h, c, sub)`` with ``h, c: (B, H)``, ``sub: (B, L·d_out)``.
        - Output: :class:`TKANState` ``(h, c, sub)`` of the next step (``h`` is the step's output).

    Attributes:
        weight_ih ``(3H, input_size)``, weight_hh ``(3H, H)``, bias ``(3H,)``: gates ``i, f, g`` stacked.
        sub_weight_ih ``(L·d_in, input_size)``: all ``W_{l,x}`` stacked.  sub_weight_hh ``(L, d_in, d_out)``.
        sub_scale ``(L, d_out)`` (``a_l``), sub_decay ``(L, d_out)`` (``b_l``).  sub_kans: ``L`` KANLinear.
        weight_o ``(H, L·d_out)``, bias_o ``(H,)``: the output gate.
    """

    def __init__(self, input_size: int, hidden_size: int, sub_kan: Any = None, *,
                 sub_kan_input_dim: int | None = None, sub_kan_output_dim: int | None = None,
                 cell_activation: str = "sigmoid", bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.input_size = _check_positive("input_size", input_size)
        self.hidden_size = _check_positive("hidden_size", hidden_size)
        self.sub_kan_input_dim = _check_positive("sub_kan_input_dim", sub_kan_input_dim or input_size)
        self.sub_kan_output_dim = _check_positive("sub_kan_output_dim", sub_kan_output_dim or input_size)
        if cell_activation not in CELL_ACTIVATIONS:
            raise ValueError(f"unknown cell_activation {cell_activation!r}; choose one of: "
                             f"{', '.join(sorted(CELL_ACTIVATIONS))}")
        self.cell_activation = cell_activation
        self.sub_kan_specs = normalize_sub_kan(sub_kan)
        n_sub, d_in, d_out, h = len(self.sub_kan_specs), self.sub_kan_input_dim, self.sub_kan_output_dim, hidden_size
        self.num_sub_layers = n_sub
        self.weight_ih = nn.Parameter(torch.empty(3 * h, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(3 * h, h, **factory))
        self.sub_weight_ih = nn.Parameter(torch.empty(n_sub * d_in, input_size, **factory))
        self.sub_weight_hh = nn.Parameter(torch.empty(n_sub, d_in, d_out, **factory))
        self.sub_scale = nn.Parameter(torch.empty(n_sub, d_out, **factory))
        self.sub_decay = nn.Parameter(torch.empty(n_sub, d_out, **factory))
        self.weight_o = nn.Parameter(torch.empty(h, n_sub * d_out, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(3 * h, **factory))
            self.bias_o = nn.Parameter(torch.empty(h, **factory))
        else:
            self.register_parameter("bias", None)
            self.register_parameter("bias_o", None)
        kans = []
        for spec in self.sub_kan_specs:
            options = {k: v for k, v in spec.items() if k != "basis"}
            try:
                kans.append(KANLinear(d_in, d_out, spec["basis"], **options, **factory))
            except TypeError as err:
                raise TypeError(f"bad sub_kan entry {spec!r}: {err}") from None
        self.sub_kans = nn.ModuleList(kans)
        self.reset_parameters()

    # ---- nn.Module contract ------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """LSTM-style uniform initialisation; ``a_l = 1``, ``b_l = 0.5``; sub-KANs reset."""
        if self.weight_ih.device.type == "meta":
            return
        with torch.no_grad():
            bound = 1.0 / math.sqrt(self.hidden_size)
            for p in (self.weight_ih, self.weight_hh, self.bias):
                if p is not None:
                    nn.init.uniform_(p, -bound, bound)
            nn.init.uniform_(self.sub_weight_ih, -1.0 / math.sqrt(self.input_size), 1.0 / math.sqrt(self.input_size))
            b_sub = 1.0 / math.sqrt(self.sub_kan_output_dim)
            nn.init.uniform_(self.sub_weight_hh, -b_sub, b_sub)
            self.sub_scale.fill_(1.0)
            self.sub_decay.fill_(0.5)
            b_o = 1.0 / math.sqrt(self.weight_o.shape[1])
            nn.init.uniform_(self.weight_o, -b_o, b_o)
            if self.bias_o is not None:
                nn.init.uniform_(self.bias_o, -b_o, b_o)
        for kan in self.sub_kans:
            kan.reset_parameters()

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, sub_layers={self.num_sub_layers}, "
                f"sub_kan_input_dim={self.sub_kan_input_dim}, sub_kan_output_dim={self.sub_kan_output_dim}, "
                f"cell_activation={self.cell_activation}, bias={self.bias is not None}")

    @property
    def sub_state_size(self) -> int:
        """``L·d_out``: width of the flattened sub-layer state."""
        return self.num_sub_layers * self.sub_kan_output_dim

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (besides sizes)."""
        return {"sub_kan": [dict(s) for s in self.sub_kan_specs], "sub_kan_input_dim": self.sub_kan_input_dim,
                "sub_kan_output_dim": self.sub_kan_output_dim, "cell_activation": self.cell_activation,
                "bias": self.bias is not None}

    # ---- evaluation --------------------------------------------------------------------------------------
    def zero_state(self, batch_shape: tuple[int, ...], *, like: Tensor) -> TKANState:
        """A zero :class:`TKANState` for inputs with leading shape ``batch_shape``."""
        h = like.new_zeros(*batch_shape, self.hidden_size)
        return TKANState(h, torch.zeros_like(h), like.new_zeros(*batch_shape, self.sub_state_size))

    def project_input(self, x: Tensor) -> Tensor:
        """The state-independent part of a step, for any number of steps at once:
        ``(*, input_size)`` → ``(*, 3H + L·d_in)`` (gate pre-activations from ``x`` and the ``W_{l,x} x``)."""
        gates = F.linear(x, self.weight_ih, self.bias)
        return torch.cat([gates, F.linear(x, self.sub_weight_ih)], dim=-1)

    def step(self, projected: Tensor, state: TKANState) -> TKANState:
        """Advance one step from ``project_input(x_t)`` ``(B, 3H + L·d_in)`` and ``state`` (no input checks)."""
        hs, n_sub, d_in, d_out = self.hidden_size, self.num_sub_layers, self.sub_kan_input_dim, self.sub_kan_output_dim
        h, c, sub = state
        gates = projected[..., : 3 * hs] + F.linear(h, self.weight_hh)
        i, f, g = gates.chunk(3, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * CELL_ACTIVATIONS[self.cell_activation](g)
        sub_prev = sub.unflatten(-1, (n_sub, d_out))  # (B, L, d_out)
        s = projected[..., 3 * hs:].unflatten(-1, (n_sub, d_in))  # (B, L, d_in)
        s = s + torch.einsum("...lo,lio->...li", sub_prev, self.sub_weight_hh)
        outs = torch.stack([kan(s[..., l, :]) for l, kan in enumerate(self.sub_kans)], dim=-2)  # (B, L, d_out)
        sub_new = self.sub_scale * outs + self.sub_decay * sub_prev
        o = torch.sigmoid(F.linear(outs.flatten(-2), self.weight_o, self.bias_o))
        h = o * torch.tanh(c)
        return TKANState(h, c, sub_new.flatten(-2))

    def forward(self, input: Tensor, state: Sequence[Tensor] | None = None) -> TKANState:
        """``x_t (B, input_size)`` (or unbatched ``(input_size,)``) and the previous state → next state."""
        _check_input(input, self.input_size, (1, 2), self.weight_ih, "TKANCell")
        batch_shape = tuple(input.shape[:-1])
        state = self._coerce_state(state, batch_shape, input)
        return self.step(self.project_input(input), state)

    def _coerce_state(self, state: Sequence[Tensor] | None, batch_shape: tuple[int, ...], like: Tensor) -> TKANState:
        if state is None:
            return self.zero_state(batch_shape, like=like)
        state = tuple(state)
        if len(state) == 2:
            state = (*state, like.new_zeros(*batch_shape, self.sub_state_size))
        if len(state) != 3:
            raise ValueError(f"state must be (h, c) or (h, c, sub), got a tuple of {len(state)}")
        expected = ((*batch_shape, self.hidden_size), (*batch_shape, self.hidden_size),
                    (*batch_shape, self.sub_state_size))
        for name, t, shape in zip(("h", "c", "sub"), state, expected):
            if not isinstance(t, Tensor) or tuple(t.shape) != shape:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"state {name} must have shape {shape}, got {got}")
        return TKANState(*state)


def _check_input(x: Any, size: int, dims: tuple[int, ...], param: Tensor, who: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in dims or x.shape[-1] != size:
        raise ValueError(f"{who} expects input with {' or '.join(map(str, dims))} dimensions and last dimension "
                         f"{size}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point input, got dtype {x.dtype}")
    if x.dtype != param.dtype:
        raise TypeError(f"input dtype {x.dtype} does not match the module's dtype {param.dtype}")
    if x.device != param.device:
        raise ValueError(f"input is on {x.device} but the module is on {param.device}; move one of them")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who} got NaN or infinite input values")


class TKAN(nn.Module):
    r"""Multi-layer Temporal KAN with the ``nn.LSTM`` calling convention.

    Arguments:
        input_size, hidden_size, num_layers: as for ``nn.LSTM``.
        sub_kan: KAN sub-layers of every cell, see :func:`normalize_sub_kan`.
        batch_first: input ``(B, T, F)`` if True (the default here), ``(T, B, F)`` otherwise.
        dropout: dropout on the outputs of every layer but the last (training mode only), as ``nn.LSTM``.
        sub_kan_input_dim, sub_kan_output_dim: sub-KAN widths of every layer (default ``input_size``).
        cell_activation, bias: forwarded to each :class:`TKANCell`.
        device, dtype: factory arguments.

    Shape:
        - Input: ``(B, T, input_size)`` (``batch_first``), ``(T, B, input_size)`` or unbatched
          ``(T, input_size)``; optional initial state ``(h_0, c_0)`` or ``(h_0, c_0, sub_0)`` with
          ``h_0, c_0: (num_layers, B, H)`` and ``sub_0: (num_layers, B, L·d_out)`` (zeros when omitted).
        - Output: ``(output, state)``: ``output`` is the last layer's ``h_t`` for every step,
          ``(B, T, H)`` (``batch_first``), ``(T, B, H)`` or ``(T, H)``; ``state`` is a :class:`TKANState`
          ``(h_n, c_n, sub_n)`` shaped like the initial state.  ``output[:, -1]`` is the last-step output
          (Keras' ``return_sequences=False``); ``state[:2]`` is ``nn.LSTM``'s ``(h_n, c_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, sub_kan: Any = None, *,
                 batch_first: bool = True, dropout: float = 0.0, sub_kan_input_dim: int | None = None,
                 sub_kan_output_dim: int | None = None, cell_activation: str = "sigmoid", bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = _check_positive("input_size", input_size)
        self.hidden_size = _check_positive("hidden_size", hidden_size)
        self.num_layers = _check_positive("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        # sub-KAN widths default to input_size for every layer, so the stacked sub state is one tensor
        d_in = sub_kan_input_dim or input_size
        d_out = sub_kan_output_dim or input_size
        self.cells = nn.ModuleList(
            TKANCell(input_size if layer == 0 else hidden_size, hidden_size, sub_kan,
                     sub_kan_input_dim=d_in, sub_kan_output_dim=d_out,
                     cell_activation=cell_activation, bias=bias, device=device, dtype=dtype)
            for layer in range(num_layers)
        )
        self.sub_state_size = self.cells[0].sub_state_size

    def reset_parameters(self) -> None:
        for cell in self.cells:
            cell.reset_parameters()

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}")

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        cfg = {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
               "batch_first": self.batch_first, "dropout": self.dropout}
        cfg.update(self.cells[0].config())
        return cfg

    def forward(self, input: Tensor, state: Sequence[Tensor] | None = None) -> tuple[Tensor, TKANState]:
        """Run the whole sequence; see the class docstring for shapes."""
        _check_input(input, self.input_size, (2, 3), self.cells[0].weight_ih, "TKAN")
        unbatched = input.dim() == 2
        x = input.unsqueeze(0) if unbatched else (input if self.batch_first else input.transpose(0, 1))  # (B,T,F)
        if x.shape[1] == 0:
            raise ValueError("TKAN got an empty sequence (T = 0)")
        batch = x.shape[0]
        states = self._initial_states(state, batch, unbatched, x)
        finals = []
        for layer, cell in enumerate(self.cells):
            projected = cell.project_input(x)  # (B, T, 3H + L·d_in), one GEMM for all steps
            st = states[layer]
            outs = []
            for t in range(x.shape[1]):
                st = cell.step(projected[:, t], st)
                outs.append(st.h)
            x = torch.stack(outs, dim=1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
            finals.append(st)
        h_n, c_n, s_n = (torch.stack(parts, dim=0) for parts in zip(*finals))
        if unbatched:
            return x[0], TKANState(h_n[:, 0], c_n[:, 0], s_n[:, 0])
        out = x if self.batch_first else x.transpose(0, 1)
        return out, TKANState(h_n, c_n, s_n)

    def _initial_states(self, state: Sequence[Tensor] | None, batch: int, unbatched: bool,
                        like: Tensor) -> list[TKANState]:
        if state is None:
            return [cell.zero_state((batch,), like=like) for cell in self.cells]
        state = tuple(state)
        if len(state) not in (2, 3):
            raise ValueError(f"state must be (h_0, c_0) or (h_0, c_0, sub_0), got a tuple of {len(state)}")
        lead = (self.num_layers,) if unbatched else (self.num_layers, batch)
        widths = (self.hidden_size, self.hidden_size, self.sub_state_size)
        for name, t, w in zip(("h_0", "c_0", "sub_0"), state, widths):
            if not isinstance(t, Tensor) or tuple(t.shape) != (*lead, w):
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"state {name} must have shape {(*lead, w)}, got {got}")
        if len(state) == 2:
            state = (*state, like.new_zeros(*lead, self.sub_state_size))
        if unbatched:
            state = tuple(t.unsqueeze(1) for t in state)
        return [TKANState(state[0][l], state[1][l], state[2][l]) for l in range(self.num_layers)]
