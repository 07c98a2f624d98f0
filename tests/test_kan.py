"""KAN stack: widths, multiplication nodes, parameter count, config round trip, grid operations."""

import pytest
import torch

import kanlab
from kanlab.models.kan import normalize_widths


def test_widths_normalisation_and_errors():
    assert normalize_widths([2, (3, 1), 1]) == [(2, 0), (3, 1), (1, 0)]
    for bad in ([2], "2,5,1", [2, 0, 1], [2, -1], [(2, 1), 1], [2, 1.5, 1], [2, (1, 2, 3), 1]):
        with pytest.raises(ValueError, match="width"):
            kanlab.KAN(bad)


def test_forward_is_layer_composition():
    torch.manual_seed(0)
    m = kanlab.KAN([3, 4, 2], dtype=torch.float64)
    x = torch.randn(10, 3, dtype=torch.float64)
    torch.testing.assert_close(m(x), m.layers[1](m.layers[0](x)))
    assert m(x).shape == (10, 2)


def test_multiplication_nodes_multiply_pairs():
    torch.manual_seed(0)
    m = kanlab.KAN([2, (1, 2), 1], dtype=torch.float64)
    assert m.layers[0].out_features == 1 + 2 * 2 and m.layers[1].in_features == 3
    x = torch.randn(7, 2, dtype=torch.float64)
    z = m.layers[0](x)
    nodes = torch.stack([z[:, 0], z[:, 1] * z[:, 2], z[:, 3] * z[:, 4]], dim=1)
    torch.testing.assert_close(m(x), m.layers[1](nodes))


def test_n_params_counts_trainable_parameters():
    m = kanlab.KAN([2, 5, 1], grid_size=5, order=3)
    k = 5 + 3
    per_layer = lambda i, o: o * i * (k + 2) + o  # noqa: E731  coef + base_weight + scaler, bias
    assert m.n_params == per_layer(2, 5) + per_layer(5, 1)
    m.layers[0].coef.requires_grad_(False)
    assert m.n_params == per_layer(2, 5) + per_layer(5, 1) - 5 * 2 * k


def test_config_round_trip_after_refine():
    torch.manual_seed(0)
    m = kanlab.KAN([2, (2, 1), 1], grid_size=3, dtype=torch.float64)
    m.refine(7)
    rebuilt = kanlab.KAN.from_config(m.config(), dtype=torch.float64)
    rebuilt.load_state_dict(m.state_dict())
    x = torch.rand(9, 2, dtype=torch.float64)
    torch.testing.assert_close(rebuilt(x), m(x), rtol=0, atol=0)
    assert m.grid_size == 7


def test_update_grid_adapts_every_layer_to_its_inputs():
    torch.manual_seed(0)
    m = kanlab.KAN([2, 3, 1], grid_size=5, dtype=torch.float64)
    x = torch.rand(500, 2, dtype=torch.float64) * 0.5  # data in [0, 0.5]^2
    m.update_grid(x)
    lo = m.layers[0].basis.interior_knots()[:, 0]
    hi = m.layers[0].basis.interior_knots()[:, -1]
    assert torch.allclose(lo, x.min(0).values, atol=1e-12) and torch.allclose(hi, x.max(0).values, atol=1e-12)
    hidden = m.layers[0](x)
    lo1 = m.layers[1].basis.interior_knots()[:, 0]
    assert torch.allclose(lo1, hidden.min(0).values, atol=1e-12)


def test_input_feature_mismatch_is_a_clear_error():
    m = kanlab.KAN([2, 3, 1])
    with pytest.raises(ValueError, match=r"\(\*, 2\)"):
        m(torch.randn(4, 3))


def test_widen_grids_keeps_every_function_on_the_old_range():
    torch.manual_seed(0)
    model = kanlab.KAN([2, 3], grid_size=6, dtype=torch.float64)  # one layer: its old range is known
    model.update_grid(torch.randn(300, 2, dtype=torch.float64))
    inner = model.layers[0].basis.interior_knots().clone()
    lo, hi = inner[:, 0], inner[:, -1]
    x = lo + (hi - lo) * torch.rand(200, 2, dtype=torch.float64)  # inside the old range
    with torch.no_grad():
        before = model(x)
    assert model.widen_grids(torch.stack([lo - 0.5, hi + 0.5]), 0.1) == [0]
    after = model.layers[0].basis.interior_knots()
    assert torch.equal(after[:, 1:-1], inner[:, 1:-1])  # only the end knots move
    span = (hi + 0.5) - (lo - 0.5)
    torch.testing.assert_close(after[:, 0], lo - 0.5 - 0.1 * span)
    torch.testing.assert_close(after[:, -1], hi + 0.5 + 0.1 * span)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-9, atol=1e-10)
    deep = kanlab.KAN([2, 3, 1], grid_size=4, dtype=torch.float64)
    assert deep.widen_grids(torch.rand(10, 2, dtype=torch.float64), 0.02) == [0, 1]  # layer by layer
