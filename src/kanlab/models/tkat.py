r"""Temporal Kolmogorov–Arnold Transformer (TKAT, arXiv 2406.02486): a Temporal-Fusion-Transformer layout
with TKAN layers in place of the LSTM encoder and decoder.

Input ``x (B, T+H, F_obs + F_known)``: the first ``T`` rows are the past (all features), the last ``H`` rows
the forecast horizon, of which only the last ``F_known`` columns (known in advance) are read; observed columns
of the future rows are never touched (they may hold NaN).  Output ``(B, H)``: the target for the ``H`` steps.

.. code-block:: text

    past  (B,T,F_obs+F_known) ─ variable selection ─► ξ_past (B,T,d) ─ TKAN encoder ─► state
    known (B,H,F_known)       ─ variable selection ─► ξ_fut  (B,H,d) ─ TKAN decoder (from state)
    φ = GateAddNorm(TKAN outputs, ξ)                             (B, T+H, d)
    a = GateAddNorm(MultiHeadSelfAttention(φ), φ)                causal mask by default
    ψ = GateAddNorm(GRN(a), φ)
    ŷ = Linear(flatten(ψ[:, T:]))                                (B, H)

Building blocks (as in the Temporal Fusion Transformer): the gated residual network
``GRN(a) = LayerNorm(a' + GLU(W1 ELU(W2 a + b2) + b1))`` with ``GLU(γ) = σ(W4 γ + b4) ⊙ (W5 γ + b5)``, and
variable selection: every scalar variable is embedded to ``d`` dims, transformed by its own GRN and mixed with
softmax weights computed by a GRN over all embeddings.  The weights are returned by :meth:`TKAT.interpret`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.recurrent import TKAN

__all__ = ["TKAT", "GatedResidualNetwork", "GateAddNorm", "VariableSelection"]


class _GroupedLinear(nn.Module):
    """``G`` independent linear maps applied to ``(*, G, in)`` → ``(*, G, out)``."""

    def __init__(self, groups: int, in_features: int, out_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(groups, out_features, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        g, i, o = self.weight.shape
        return f"groups={g}, in_features={i}, out_features={o}"

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("...gi,gio->...go", x, self.weight) + self.bias


def _linear(groups: int | None, n_in: int, n_out: int, factory: dict) -> nn.Module:
    return nn.Linear(n_in, n_out, **factory) if groups is None else _GroupedLinear(groups, n_in, n_out, **factory)


class GateAddNorm(nn.Module):
    """``LayerNorm(residual + GLU(dropout(x)))``: ``x (*, d_in)``, ``residual (*, d)`` → ``(*, d)``."""

    def __init__(self, d_in: int, d: int, *, dropout: float = 0.0, groups: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.glu = _linear(groups, d_in, 2 * d, factory)
        self.norm = nn.LayerNorm(d, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        value, gate = self.glu(self.dropout(x)).chunk(2, dim=-1)
        return self.norm(residual + torch.sigmoid(gate) * value)


class GatedResidualNetwork(nn.Module):
    """TFT's GRN ``(*, d_in)`` → ``(*, d_out)``.

    With ``groups=G`` it is ``G`` GRNs with their own weights applied to ``(*, G, d_in)`` at once (one per
    variable in :class:`VariableSelection`); their final LayerNorm's affine parameters are shared.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, *, dropout: float = 0.0, groups: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.skip = _linear(groups, d_in, d_out, factory) if d_in != d_out else None
        self.fc1 = _linear(groups, d_in, d_hidden, factory)
        self.fc2 = _linear(groups, d_hidden, d_hidden, factory)
        self.gate = GateAddNorm(d_hidden, d_out, dropout=dropout, groups=groups, **factory)

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.skip is None else self.skip(x)
        return self.gate(self.fc2(F.elu(self.fc1(x))), residual)


class VariableSelection(nn.Module):
    """Embed ``V`` scalar variables, transform each with its own GRN, mix them with learned softmax weights.

    Shape: ``x (*, V)`` → ``(selected (*, d), weights (*, V))``.
    """

    def __init__(self, n_vars: int, d: int, *, dropout: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.n_vars = n_vars
        self.embed_weight = nn.Parameter(torch.empty(n_vars, d, **factory))
        self.embed_bias = nn.Parameter(torch.empty(n_vars, d, **factory))
        self.selector = GatedResidualNetwork(n_vars * d, d, n_vars, dropout=dropout, **factory)
        self.transform = GatedResidualNetwork(d, d, d, dropout=dropout, groups=n_vars, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed_weight, 0.0, 1.0)
        nn.init.zeros_(self.embed_bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        emb = x.unsqueeze(-1) * self.embed_weight + self.embed_bias  # (*, V, d)
        weights = torch.softmax(self.selector(emb.flatten(-2)), dim=-1)  # (*, V)
        selected = (self.transform(emb) * weights.unsqueeze(-1)).sum(-2)  # (*, d)
        return selected, weights


class TKAT(nn.Module):
    r"""Temporal Kolmogorov–Arnold Transformer for multi-horizon forecasting.

    Arguments:
        n_observed: observed features (first columns; the target is usually one of them).
        n_known: known-in-advance features (last columns); 0 uses a learned embedding per future step.
        lookback: past steps ``T``.
        horizon: forecast steps ``H``.
        hidden_size: model width ``d``.
        num_heads: attention heads (must divide ``hidden_size``).
        num_layers: TKAN layers of the encoder and of the decoder.
        sub_kan, sub_kan_input_dim, sub_kan_output_dim, cell_activation: TKAN options (see
            :class:`~kanlab.layers.TKAN`; sub-KAN widths default to ``hidden_size // 2``).
        dropout: dropout in the gates and attention.
        causal_attention: mask attention to earlier positions only.
        device, dtype: factory arguments.

    Shape:
        - Input: ``(B, T + H, n_observed + n_known)``; observed columns of the last ``H`` rows are ignored.
        - Output: ``(B, H)``.
    """

    kind = "tkat"

    def __init__(self, n_observed: int, n_known: int, lookback: int, horizon: int, *, hidden_size: int = 16,
                 num_heads: int = 4, num_layers: int = 1, sub_kan: Any = None, sub_kan_input_dim: int | None = None,
                 sub_kan_output_dim: int | None = None, cell_activation: str = "sigmoid", dropout: float = 0.0,
                 causal_attention: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        for name, value, low in (("n_observed", n_observed, 1), ("n_known", n_known, 0), ("lookback", lookback, 1),
                                 ("horizon", horizon, 1), ("hidden_size", hidden_size, 1),
                                 ("num_heads", num_heads, 1), ("num_layers", num_layers, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if hidden_size % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide hidden_size ({hidden_size})")
        factory = {"device": device, "dtype": dtype}
        self.n_observed, self.n_known = n_observed, n_known
        self.lookback, self.horizon = lookback, horizon
        self.hidden_size, self.num_heads, self.num_layers = hidden_size, num_heads, num_layers
        self.dropout, self.causal_attention = float(dropout), bool(causal_attention)
        d = hidden_size
        d_sub = max(hidden_size // 2, 1)
        tkan_kw = dict(num_layers=num_layers, sub_kan=sub_kan, sub_kan_input_dim=sub_kan_input_dim or d_sub,
                       sub_kan_output_dim=sub_kan_output_dim or d_sub, cell_activation=cell_activation,
                       dropout=dropout, batch_first=True, **factory)
        self.past_selection = VariableSelection(n_observed + n_known, d, dropout=dropout, **factory)
        if n_known > 0:
            self.future_selection = VariableSelection(n_known, d, dropout=dropout, **factory)
            self.register_parameter("future_embedding", None)
        else:
            self.future_selection = None
            self.future_embedding = nn.Parameter(torch.zeros(horizon, d, **factory))
        self.encoder = TKAN(d, d, **tkan_kw)
        self.decoder = TKAN(d, d, **tkan_kw)
        self.recurrent_gate = GateAddNorm(d, d, dropout=dropout, **factory)
        self.attention = nn.MultiheadAttention(d, num_heads, dropout=dropout, batch_first=True, **factory)
        self.attention_gate = GateAddNorm(d, d, dropout=dropout, **factory)
        self.feed_forward = GatedResidualNetwork(d, d, d, dropout=dropout, **factory)
        self.output_gate = GateAddNorm(d, d, dropout=dropout, **factory)
        self.head = nn.Linear(horizon * d, horizon, **factory)
        self._tkan_options = {"sub_kan": self.encoder.cells[0].sub_kan_specs,
                              "sub_kan_input_dim": tkan_kw["sub_kan_input_dim"],
                              "sub_kan_output_dim": tkan_kw["sub_kan_output_dim"],
                              "cell_activation": cell_activation}

    # ---- bookkeeping -------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (checkpoints)."""
        return {"n_observed": self.n_observed, "n_known": self.n_known, "lookback": self.lookback,
                "horizon": self.horizon, "hidden_size": self.hidden_size, "num_heads": self.num_heads,
                "num_layers": self.num_layers, "dropout": self.dropout, "causal_attention": self.causal_attention,
                **{k: (list(v) if isinstance(v, list) else v) for k, v in self._tkan_options.items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, device=None, dtype=None) -> "TKAT":
        return cls(**config, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Re-initialise every sub-module (and the learned future embedding, if any)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.future_embedding is not None:
            with torch.no_grad():
                self.future_embedding.zero_()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return (f"n_observed={self.n_observed}, n_known={self.n_known}, lookback={self.lookback}, "
                f"horizon={self.horizon}, hidden_size={self.hidden_size}, num_heads={self.num_heads}")

    # ---- evaluation --------------------------------------------------------------------------------------
    def _check(self, x: Any) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"TKAT expects a torch.Tensor, got {type(x).__name__}")
        expected = (self.lookback + self.horizon, self.n_observed + self.n_known)
        if x.dim() != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"TKAT expects input of shape (batch, T+H={expected[0]}, "
                             f"F_obs+F_known={expected[1]}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"TKAT expects a floating-point input, got dtype {x.dtype}")
        if x.dtype != self.head.weight.dtype:
            raise TypeError(f"input dtype {x.dtype} does not match the model's dtype {self.head.weight.dtype}")

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The only parts of ``x`` the model reads: past rows ``(B, T, F)`` and known future ``(B, H, F_known)``."""
        past = x[:, : self.lookback]
        known_future = x[:, self.lookback:, self.n_observed:]
        for name, part in (("past rows", past), ("known future columns", known_future)):
            if not bool(torch.isfinite(part).all()):
                raise ValueError(f"TKAT input has NaN or infinite values in the {name}")
        return past, known_future

    def _run(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self._check(x)
        past, known_future = self._split(x)
        xi_past, w_past = self.past_selection(past)  # (B, T, d), (B, T, V_past)
        if self.future_selection is not None:
            xi_fut, w_fut = self.future_selection(known_future)  # (B, H, d), (B, H, V_known)
        else:
            xi_fut = self.future_embedding.expand(x.shape[0], -1, -1)
            w_fut = x.new_zeros(x.shape[0], self.horizon, 0)
        enc, state = self.encoder(xi_past)
        dec, _ = self.decoder(xi_fut, state)
        xi = torch.cat([xi_past, xi_fut], dim=1)
        phi = self.recurrent_gate(torch.cat([enc, dec], dim=1), xi)  # (B, T+H, d)
        mask = None
        if self.causal_attention:
            n = phi.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool, device=phi.device).triu(1)
        att, att_w = self.attention(phi, phi, phi, attn_mask=mask, need_weights=True)
        a = self.attention_gate(att, phi)
        psi = self.output_gate(self.feed_forward(a), phi)
        y = self.head(psi[:, self.lookback:].flatten(1))
        return y, {"past_weights": w_past, "future_weights": w_fut, "attention": att_w}

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T+H, F_obs+F_known)`` → ``(B, H)``."""
        return self._run(x)[0]

    @torch.no_grad()
    def interpret(self, x: Tensor) -> dict[str, Any]:
        """Predictions and interpretation weights for ``x``.

        Returns a dict with ``prediction (B, H)``, ``past_weights (B, T, F_obs+F_known)`` and
        ``future_weights (B, H, F_known)`` (variable-selection weights, rows sum to 1), ``attention
        (B, T+H, T+H)`` (averaged over heads) and ``past_columns``/``future_columns``: the input column indices the weights refer to.
        """
        y, extras = self._run(x)
        extras["prediction"] = y
        extras["past_columns"] = list(range(self.n_observed + self.n_known))
        extras["future_columns"] = list(range(self.n_observed, self.n_observed + self.n_known))
        return extras
