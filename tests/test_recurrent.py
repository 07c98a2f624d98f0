"""TKAN / TKANCell: the paper's equations, the nn.LSTM calling convention, gradients and checkpoints."""

import pytest
import torch
from torch import nn

from kanlab.basis import list_bases
from kanlab.layers import TKAN, TKANCell, TKANState

MIXED = [{"basis": "bspline", "grid_size": 4, "order": 2}, {"basis": "rbf", "num_centers": 5}]


@pytest.fixture(autouse=True)
def _one_thread():
    """Recurrent steps are many small ops: intra-op threads only add barrier waits (badly so on a shared
    machine under pytest-xdist), so these tests run single-threaded and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _reference_step(cell: TKANCell, x, h, c, sub):
    """The TKAN step written out from the paper's equations, parameter by parameter (no packed matmuls)."""
    H, L, d_in, d_out = cell.hidden_size, cell.num_sub_layers, cell.sub_kan_input_dim, cell.sub_kan_output_dim
    w_ih, w_hh, b = cell.weight_ih, cell.weight_hh, cell.bias
    act = torch.sigmoid if cell.cell_activation == "sigmoid" else torch.tanh

    def gate(k):
        rows = slice(k * H, (k + 1) * H)
        return x @ w_ih[rows].T + h @ w_hh[rows].T + b[rows]

    i, f, g = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), act(gate(2))
    c_new = f * c + i * g
    kan_outs, subs = [], []
    for l in range(L):
        prev = sub[:, l * d_out:(l + 1) * d_out]
        s = x @ cell.sub_weight_ih[l * d_in:(l + 1) * d_in].T + prev @ cell.sub_weight_hh[l].T
        o_l = cell.sub_kans[l](s)
        kan_outs.append(o_l)
        subs.append(cell.sub_scale[l] * o_l + cell.sub_decay[l] * prev)
    o = torch.sigmoid(torch.cat(kan_outs, -1) @ cell.weight_o.T + cell.bias_o)
    return o * torch.tanh(c_new), c_new, torch.cat(subs, -1)


def _randomize(module: nn.Module, seed: int = 0) -> None:
    """Move every parameter off its initial value so that no term of the equations is trivially 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("sub_kan", [None, MIXED])
def test_cell_matches_paper_equations(activation, sub_kan):
    torch.manual_seed(0)
    cell = TKANCell(3, 5, sub_kan, sub_kan_input_dim=4, sub_kan_output_dim=2, cell_activation=activation,
                    dtype=torch.float64)
    _randomize(cell)
    x = torch.randn(6, 3, dtype=torch.float64)
    h, c = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    sub = torch.randn(6, cell.sub_state_size, dtype=torch.float64)
    got = cell(x, (h, c, sub))
    want = _reference_step(cell, x, h, c, sub)
    assert isinstance(got, TKANState)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_candidate_activation_option_changes_the_cell():
    torch.manual_seed(0)
    a = TKANCell(3, 4, cell_activation="sigmoid")
    b = TKANCell(3, 4, cell_activation="tanh")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3)
    assert not torch.allclose(a(x).c, b(x).c)
    with pytest.raises(ValueError, match="cell_activation"):
        TKANCell(3, 4, cell_activation="relu")


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("sub_kan", [None, MIXED])
def test_layer_equals_python_loop_over_cells(batch_first, sub_kan):
    torch.manual_seed(1)
    layer = TKAN(3, 4, num_layers=2, sub_kan=sub_kan, batch_first=batch_first, sub_kan_input_dim=3,
                 sub_kan_output_dim=2, dtype=torch.float64)
    _randomize(layer, 1)
    x = torch.randn(5, 7, 3, dtype=torch.float64)  # (B, T, F)
    out, state = layer(x if batch_first else x.transpose(0, 1))
    if not batch_first:
        out = out.transpose(0, 1)
    seq = x
    for l, cell in enumerate(layer.cells):
        st = None
        outs = []
        for t in range(seq.shape[1]):
            st = cell(seq[:, t], st)
            outs.append(st.h)
        seq = torch.stack(outs, 1)
        for name, got, want in zip(("h", "c", "sub"), state, st):
            torch.testing.assert_close(got[l], want, rtol=1e-10, atol=1e-12, msg=f"layer {l} {name}")
    torch.testing.assert_close(out, seq, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batched", [True, False])
def test_shapes_follow_nn_lstm(batch_first, num_layers, batched):
    x = torch.randn(4, 6, 3) if batched else torch.randn(6, 3)
    lstm = nn.LSTM(3, 5, num_layers=num_layers, batch_first=batch_first)
    tkan = TKAN(3, 5, num_layers=num_layers, batch_first=batch_first)
    out_ref, (h_ref, c_ref) = lstm(x)
    out, state = tkan(x)
    assert out.shape == out_ref.shape
    h_n, c_n = state[:2]
    assert h_n.shape == h_ref.shape and c_n.shape == c_ref.shape
    assert state.sub.shape == (*h_ref.shape[:-1], tkan.sub_state_size)
    # the last output step is the last layer's h_n, as for nn.LSTM
    last = out[-1] if not batched else (out[:, -1] if batch_first else out[-1])
    torch.testing.assert_close(last, h_n[-1])
    # and the initial state is accepted in nn.LSTM's (h_0, c_0) form
    out2, _ = tkan(x, (torch.zeros_like(h_n), torch.zeros_like(c_n)))
    torch.testing.assert_close(out2, out)


def test_state_carries_over_between_chunks():
    torch.manual_seed(2)
    layer = TKAN(2, 4, num_layers=2, sub_kan=2, sub_kan_input_dim=3, sub_kan_output_dim=3)
    _randomize(layer, 2)
    x = torch.randn(3, 9, 2)
    full, state = layer(x)
    first, mid = layer(x[:, :4])
    second, end = layer(x[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), full)
    for a, b in zip(end, state):
        torch.testing.assert_close(a, b)
    # dropping the sub-layer state (nn.LSTM-style (h, c) only) changes the continuation
    other, _ = layer(x[:, 4:], mid[:2])
    assert not torch.allclose(other, second)


@pytest.mark.parametrize("basis", list_bases())
def test_any_registered_basis_works_in_the_sub_kans(basis):
    torch.manual_seed(3)
    layer = TKAN(3, 4, sub_kan=[basis, "bspline"], sub_kan_input_dim=2, sub_kan_output_dim=2)
    x = torch.randn(2, 5, 3, requires_grad=True)
    out, state = layer(x)
    (out.sum() + state.sub.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert layer.cells[0].sub_kans[0].basis.name == basis


@pytest.mark.parametrize("sub_kan", ["bspline", "rbf"])
def test_gradcheck_tiny_cell(sub_kan):
    torch.manual_seed(4)
    cell = TKANCell(2, 3, sub_kan, sub_kan_input_dim=2, sub_kan_output_dim=2, dtype=torch.float64)
    _randomize(cell, 4)
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    sub = (0.5 * torch.randn(2, 2, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: tuple(cell(a[0], a[1:])), (x, h, c, sub))
    # and with respect to the parameters (including the KAN coefficients and a_l, b_l)
    names = ["weight_ih", "sub_weight_hh", "sub_scale", "sub_decay", "weight_o", "sub_kans.0.coef"]
    params = {n: p.detach().clone().requires_grad_() for n, p in cell.named_parameters() if n in names}
    assert len(params) == len(names)

    def f(*values):
        out = torch.func.functional_call(cell, dict(zip(params, values)), (x.detach(), (h.detach(), c.detach(),
                                                                                        sub.detach())))
        return tuple(out)

    assert torch.autograd.gradcheck(f, tuple(params.values()))


def test_state_dict_round_trip():
    torch.manual_seed(5)
    kw = dict(num_layers=2, sub_kan=MIXED, sub_kan_input_dim=3, sub_kan_output_dim=2, cell_activation="tanh")
    a = TKAN(3, 4, **kw)
    _randomize(a, 5)
    b = TKAN(3, 4, **kw)
    x = torch.randn(2, 6, 3)
    assert not torch.allclose(a(x)[0], b(x)[0])
    b.load_state_dict(a.state_dict())
    for u, v in zip((a(x)[0], *a(x)[1]), (b(x)[0], *b(x)[1])):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    assert TKAN(**a.config()).config() == a.config()


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(6)
    layer = TKAN(3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(4, 5, 3)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])
    single = TKAN(3, 8, num_layers=1, dropout=0.5).train()  # no layer after the last: no dropout
    torch.testing.assert_close(single(x)[0], single(x)[0])


def test_bad_input_gives_clear_errors():
    layer = TKAN(3, 4)
    with pytest.raises(ValueError, match="last dimension 3"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 5, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="empty sequence"):
        layer(torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match="h_0 must have shape"):
        layer(torch.randn(2, 5, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="state"):
        layer(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4),))
    with pytest.raises(ValueError, match="unknown basis"):
        TKAN(3, 4, sub_kan="no-such-basis")
    with pytest.raises(TypeError, match="sub_kan"):
        TKAN(3, 4, sub_kan=[3.5])
    with pytest.raises(ValueError, match="dropout"):
        TKAN(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        TKANCell(3, 0)
