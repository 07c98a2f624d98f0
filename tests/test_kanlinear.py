"""KANLinear: the nn.Linear contract, an independent scipy oracle, grids, masks and bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.interpolate import BSpline as SciBSpline

import kanlab
from kanlab import KANLinear


def _layer(**kw):
    torch.manual_seed(0)
    return KANLinear(3, 2, dtype=torch.float64, **kw)


@pytest.mark.parametrize("lead", [(), (7,), (2, 5), (2, 3, 4)])
def test_shapes_follow_nn_linear(lead):
    layer = _layer()
    x = torch.randn(*lead, 3, dtype=torch.float64)
    assert layer(x).shape == (*lead, 2)


def test_factory_arguments_and_repr():
    layer = KANLinear(4, 3, grid_size=7, order=2, dtype=torch.float64, bias=False)
    assert layer.bias is None
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    assert layer.coef.shape == (3, 4, 9)
    assert layer.basis.grid.shape == (4, 7 + 2 * 2 + 1)
    text = repr(layer)
    assert "in_features=4" in text and "out_features=3" in text and "grid_size=7" in text


def test_meta_device_then_reset_parameters():
    layer = KANLinear(4, 3, device="meta")
    assert layer.coef.device.type == "meta"
    layer = layer.to_empty(device="cpu")
    layer.reset_parameters()
    out = layer(torch.randn(5, 4))
    assert torch.isfinite(out).all()
    # the grid is rebuilt by reset_parameters
    assert torch.allclose(layer.basis.grid[0, 3], torch.tensor(-1.0))


def test_forward_matches_scipy_oracle():
    """Each edge is w_b*silu(x) + w_s*Σ c_k B_k(x); evaluate with scipy.interpolate.BSpline independently."""
    layer = _layer(grid_size=6, order=3, grid_range=(-1.5, 2.0), extrapolate="zero")
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.linspace(-2.5, 3.0, 41, dtype=torch.float64)[:, None].repeat(1, 3)
    x[:, 1] = x[:, 1] * 0.7 + 0.1
    got = layer(x).detach().numpy()
    # pad the knot vector by k knots on each side (zero coefficients there): scipy's base interval then
    # covers our whole knot span, where the extended-grid functions are non-zero
    t0 = layer.basis.grid[0].numpy()
    h = t0[1] - t0[0]
    t = np.concatenate([t0[0] - h * np.arange(3, 0, -1), t0, t0[-1] + h * np.arange(1, 4)])
    want = np.zeros((x.shape[0], 2))
    xs = x.numpy()
    for o in range(2):
        want[:, o] += layer.bias[o].item()
        for i in range(3):
            coef = np.concatenate([np.zeros(3), (layer.coef[o, i] * layer.spline_scaler[o, i]).detach().numpy(),
                                   np.zeros(3)])
            spline = SciBSpline(t, coef, 3, extrapolate=False)(xs[:, i])
            spline = np.nan_to_num(spline, nan=0.0)  # zero outside the knot span (documented rule)
            base = layer.base_weight[o, i].item() * F.silu(x[:, i]).numpy()
            want[:, o] += base + spline
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_edge_outputs_sum_to_forward():
    layer = _layer()
    x = torch.randn(11, 3, dtype=torch.float64)
    edges = layer.edge_outputs(x)
    assert edges.shape == (11, 2, 3)
    torch.testing.assert_close(edges.sum(-1) + layer.bias, layer(x))


def test_linear_extrapolation_is_c1_and_finite():
    """Default rule: each edge's spline continues along its tangent at the ends of the grid range."""
    layer = _layer()
    x = torch.tensor([[1e6, -1e6, 1e30], [-1e300, 5.0, -7.0]], dtype=torch.float64)
    assert torch.isfinite(layer(x)).all()
    basis = layer.basis
    inf = torch.tensor([[float("inf"), -float("inf"), 0.0]], dtype=torch.float64)
    assert torch.isfinite(basis(inf)).all()
    for end, sign in ((1.0, 1.0), (-1.0, -1.0)):
        e = torch.full((1, 3), end, dtype=torch.float64)
        eps = 1e-6
        inside = basis(e - sign * eps)
        at = basis(e)
        outside = basis(e + sign * eps)
        far = basis(e + sign * 0.5)
        slope = basis.derivative(e)
        torch.testing.assert_close((outside - at) / eps * sign, slope, atol=1e-6, rtol=1e-6)  # C1 at the end
        torch.testing.assert_close((at - inside) / eps * sign, slope, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(far, at + sign * 0.5 * slope)  # exactly linear beyond
        torch.testing.assert_close(far.sum(-1), torch.ones(1, 3, dtype=torch.float64))  # partition of unity


def test_far_outside_grid_clamp_rule():
    """Clamp rule: the spline part is held at its value at the end of the grid range; base continues."""
    layer = _layer(extrapolate="clamp")
    x = torch.tensor([[1e6, -1e6, 1e30], [-1e300, 5.0, -7.0]], dtype=torch.float64)
    out = layer(x)
    assert torch.isfinite(out).all()
    clamped = x.clamp(-1, 1)
    torch.testing.assert_close(layer.basis(x), layer.basis(clamped))
    y = torch.tensor([[3.0, -2.0, 0.5]], dtype=torch.float64)
    spline = layer(y) - F.linear(F.silu(y), layer.base_weight) - layer.bias
    y_c = y.clamp(-1, 1)
    torch.testing.assert_close(spline, layer(y_c) - F.linear(F.silu(y_c), layer.base_weight) - layer.bias)


def test_far_outside_grid_zero_rule_is_base_only():
    layer = _layer(extrapolate="zero")
    x = torch.tensor([[1e6, -1e6, 1e30], [-1e300, 5.0, -7.0]], dtype=torch.float64)
    out = layer(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.linear(F.silu(x), layer.base_weight) + layer.bias)


def test_pruned_edge_has_no_effect_and_no_gradient():
    layer = _layer()
    with torch.no_grad():
        layer.mask[1, 2] = 0
    x = torch.randn(20, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 2] += 1.0
    # output 1 does not depend on input 2 any more; output 0 still does
    assert torch.allclose(layer(x)[:, 1], layer(x2)[:, 1])
    assert not torch.allclose(layer(x)[:, 0], layer(x2)[:, 0])
    layer(x).sum().backward()
    assert layer.coef.grad[1, 2].abs().max() == 0
    assert layer.base_weight.grad[1, 2] == 0


def test_gradcheck_input_and_parameters():
    layer = KANLinear(2, 2, grid_size=4, dtype=torch.float64)
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    params = [layer.coef, layer.base_weight, layer.spline_scaler, layer.bias]

    def fn(x, *ps):
        with torch.no_grad():
            for p, v in zip(params, ps):
                pass
        return torch.func.functional_call(layer, dict(zip(["coef", "base_weight", "spline_scaler", "bias"], ps)), (x,))

    inputs = (x,) + tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_state_dict_round_trip():
    a = _layer(grid_size=9)
    b = KANLinear(3, 2, dtype=torch.float64, grid_size=9)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 3, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.parametrize("old,new", [(5, 10), (10, 20), (4, 12)])
def test_refine_nested_grids_is_exact(old, new):
    layer = _layer(grid_size=old)
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)[:, None].repeat(1, 3)
    before = layer(x)
    layer.refine(new)
    assert layer.coef.shape[-1] == new + 3 and layer.basis.grid_size == new
    assert (layer(x) - before).abs().max() < 1e-9


def _smooth_coefficients(layer):
    """A smooth function's spline coefficients: sin(2x) sampled at the Greville abscissae."""
    knots = layer.basis.grid[0]
    k = layer.basis.order
    greville = torch.stack([knots[j + 1 : j + k + 1].mean() for j in range(layer.coef.shape[-1])])
    with torch.no_grad():
        layer.coef.copy_(torch.sin(2 * greville).expand_as(layer.coef))


@pytest.mark.parametrize("old,new", [(3, 5), (20, 50), (10, 15), (7, 8)])
def test_refine_non_multiple_grid_sizes_keep_the_function(old, new):
    """Grid extension keeps the old knots (the old spline space is nested in the new), so the function is
    kept to rounding error even when new is not a multiple of old; the acceptance bound is 1e-4."""
    layer = _layer(grid_size=old)
    _smooth_coefficients(layer)
    x = torch.linspace(-1, 1, 4001, dtype=torch.float64)[:, None].repeat(1, 3)
    layer.coef.data += 0.05 * torch.randn_like(layer.coef)  # not only smooth functions
    before = layer(x)
    layer.refine(new)
    assert (layer(x) - before).abs().max() < 1e-8
    assert layer.basis.interior_knots().diff(dim=1).min() > 0


def test_update_grid_follows_data_and_keeps_function():
    layer = _layer(grid_size=8)
    _smooth_coefficients(layer)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 3, generator=gen, dtype=torch.float64) * 0.3 + 0.2  # concentrated data
    before = layer(x)
    layer.update_grid(x)
    interior = layer.basis.interior_knots()[0]
    q = torch.quantile(x[:, 0], torch.linspace(0, 1, 9, dtype=torch.float64))
    # knots mostly at the data quantiles (grid_eps=0.02 of uniform)
    assert (interior - q).abs().max() < 0.05 * (q[-1] - q[0])
    err = (layer(x) - before).abs().max() / before.abs().max()
    assert err < 1e-2


def test_bad_input_errors_name_the_problem():
    layer = _layer()
    with pytest.raises(ValueError, match=r"\(\*, 3\)"):
        layer(torch.randn(4, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.ones(4, 3, dtype=torch.float32))
    with pytest.raises(ValueError, match="in_features"):
        KANLinear(0, 3)
    with pytest.raises(ValueError, match="unknown basis"):
        KANLinear(2, 3, basis="nope")
    with pytest.raises(ValueError, match="grid_size"):
        KANLinear(2, 3, grid_size=0)
    with pytest.raises(ValueError, match="order"):
        KANLinear(2, 3, order=-1)
    with pytest.raises(ValueError, match="base_activation"):
        KANLinear(2, 3, base_activation="swishy")


def test_basis_instance_is_bound_by_the_layer():
    basis = kanlab.BSpline(grid_size=4, order=2)
    layer = KANLinear(5, 2, basis=basis)
    assert basis.in_features == 5 and layer.coef.shape == (2, 5, 6)
    with pytest.raises(ValueError, match="bound"):
        KANLinear(3, 2, basis=basis)


@pytest.mark.parametrize("rule", ["linear", "clamp", "zero"])
def test_local_matches_dense_for_all_orders(rule):
    for order in range(0, 6):
        b = kanlab.BSpline(3, grid_size=5, order=order, dtype=torch.float64, extrapolate=rule)
        x = torch.linspace(-3, 3, 301, dtype=torch.float64)[:, None].repeat(1, 3)
        vals, first = b.local(x)
        full = b(x)
        rebuilt = torch.zeros_like(full).scatter(2, first[..., None] + torch.arange(order + 1), vals)
        assert math.isclose(float((rebuilt - full).abs().max()), 0.0, abs_tol=1e-12)
