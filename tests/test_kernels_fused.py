"""The "fused" path (csrc/kan_fused.cpp): one C++ call per layer and direction for small B-spline layers.

Its values and gradients are compared with the reference path in tests/test_kernels.py (every order, masks,
out-of-range inputs, adaptive grids, gradcheck, double backward); here: what is specific to it."""

import os
import subprocess
import sys

import pytest
import torch

from kanlab import KAN, KANLinear
from kanlab.kernels import kan_forward, ops
from kanlab.kernels.dispatch import FUSED_MAX_EDGES, _resolve

pytestmark = pytest.mark.skipif(not ops.load_extension(), reason="needs the C++ extension")


def _layer(n_in=3, n_out=4, grid_size=6, order=3, seed=0, **kw):
    torch.manual_seed(seed)
    layer = KANLinear(n_in, n_out, grid_size=grid_size, order=order, dtype=torch.float64, **kw)
    with torch.no_grad():
        layer.base_weight.normal_()
        layer.spline_scaler.normal_()
    return layer


def _grads(layer, x, kernel):
    layer.kernel = kernel
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    return [y.detach(), x.grad] + [p.grad for p in (layer.coef, layer.spline_scaler, layer.base_weight)]


def test_auto_picks_fused_for_small_layers_only():
    x = torch.rand(100, 2, dtype=torch.float64)
    small = _layer(2, 5)
    expected = "fused" if FUSED_MAX_EDGES >= 10 else "dense"
    assert _resolve("auto", small.basis, x, small.coef).name == expected
    big = _layer(32, 32)
    assert _resolve("auto", big.basis, torch.rand(10, 32, dtype=torch.float64), big.coef).name != "fused"
    zero = _layer(2, 5, extrapolate="zero")  # not supported by the fused kernel: auto goes elsewhere
    assert _resolve("auto", zero.basis, x, zero.coef).name == "dense"


@pytest.mark.parametrize("threads", [1, 2])
def test_many_blocks_match_reference_and_do_not_depend_on_threads(threads):
    """Thousands of samples (many blocks, several gradient chunks) on an adaptive grid, some inputs outside."""
    layer = _layer(2, 5, grid_size=10)
    gen = torch.Generator().manual_seed(1)
    layer.update_grid(torch.randn(2000, 2, dtype=torch.float64, generator=gen) ** 3)
    x = torch.randn(3001, 2, dtype=torch.float64, generator=gen) * 1.5
    ref = _grads(layer, x, "reference")
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = _grads(layer, x, "fused")
        torch.set_num_threads(1)
        single = _grads(layer, x, "fused")
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)
    for a, b in zip(got, single):
        assert torch.equal(a, b)  # a fixed split of the samples: bit-identical whatever the thread count


def test_saved_basis_gives_the_same_gradients_as_recomputing_it():
    layer = _layer(3, 2, grid_size=7, order=2)
    x = torch.rand(200, 3, dtype=torch.float64) * 3 - 1.5
    tensors = (x, layer.basis.grid, layer.coef.detach(), layer.spline_scaler.detach(), layer.base_weight.detach())
    rule = (2, 1, 1)  # order, mode (linear), act (SiLU)
    bias = layer.bias.detach()
    y, *saved = torch.ops.kanlab_cpp.fused_forward(*tensors, bias, *rule, True)
    y2, *empty = torch.ops.kanlab_cpp.fused_forward(*tensors, bias, *rule, False)
    torch.testing.assert_close(y, y2, rtol=1e-14, atol=1e-15)  # SiLU as x·sigmoid(x) when saving its slope
    assert all(t.numel() == 0 for t in empty)
    y3, *_ = torch.ops.kanlab_cpp.fused_forward(*tensors, None, *rule, False)
    torch.testing.assert_close(y3 + bias, y2, rtol=1e-14, atol=1e-15)
    g = torch.randn(200, 2, dtype=torch.float64)
    with_saved = torch.ops.kanlab_cpp.fused_backward(g, *tensors, *rule, True, True, True, *saved)
    recomputed = torch.ops.kanlab_cpp.fused_backward(g, *tensors, *rule, True, True, True, None, None, None, None,
                                                     None)
    for a, b in zip(with_saved, recomputed):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(with_saved[4], g.sum(0), rtol=1e-13, atol=1e-14)  # the bias gradient
    with pytest.raises(RuntimeError, match="saved basis does not match"):
        torch.ops.kanlab_cpp.fused_backward(g[:100], x[:100], *tensors[1:], *rule, True, True, False, *saved)


def test_clamp_rule_nan_rows_and_other_activations():
    layer = _layer(2, 3, extrapolate="clamp")
    x = torch.tensor([[0.3, -5.0], [float("nan"), 0.2], [2.0, 0.1]], dtype=torch.float64)
    ref, got = _grads(layer, x, "reference"), _grads(layer, x, "fused")
    assert torch.isnan(got[0][1]).all() and torch.isfinite(got[0][[0, 2]]).all()  # NaN stays in its row
    keep = [0, 2]
    torch.testing.assert_close(got[0][keep], ref[0][keep], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got[1][keep], ref[1][keep], rtol=1e-10, atol=1e-12)
    tanh = _layer(2, 3, base_activation="tanh")  # not computed by the kernel: falls back, same values
    xs = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    for a, b in zip(_grads(tanh, xs, "fused"), _grads(tanh, xs, "reference")):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_order_one_continues_the_last_piece_beyond_the_grid():
    """Linear extrapolation follows the slope of the piece inside the range at both ends (order 1 is where
    the pieces on either side of an end differ)."""
    layer = _layer(1, 1, grid_size=4, order=1)
    lo, hi = layer.basis.grid[0, 1].item(), layer.basis.grid[0, -2].item()
    eps = 1e-3
    for end, sign in ((lo, -1.0), (hi, 1.0)):
        pts = torch.tensor([[end - sign * eps], [end], [end + sign * eps]], dtype=torch.float64)
        for kernel in ("reference", "fused"):
            layer.kernel = kernel
            with torch.no_grad():
                base = layer.base_weight[0, 0] * torch.nn.functional.silu(pts[:, 0])
                f = layer(pts)[:, 0] - base - layer.bias[0]
            inside, outside = (f[1] - f[0]).item(), (f[2] - f[1]).item()
            assert outside == pytest.approx(inside, rel=1e-9, abs=1e-12), (kernel, end)


def test_a_small_model_trains_the_same_through_every_path():
    torch.manual_seed(0)
    x = torch.rand(256, 2, dtype=torch.float64) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * x[:, 1:]
    losses = {}
    for kernel in ("fused", "dense"):
        torch.manual_seed(1)
        model = KAN([2, 4, 1], grid_size=5, dtype=torch.float64)
        for layer in model.layers:
            layer.kernel = kernel
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(30):
            opt.zero_grad()
            loss = torch.mean((model(x) - y) ** 2)
            loss.backward()
            opt.step()
        losses[kernel] = loss.item()
    assert losses["fused"] == pytest.approx(losses["dense"], rel=1e-8)


def test_bad_inputs_get_clear_errors():
    layer = _layer(2, 3)
    x = torch.rand(5, 2, dtype=torch.float64)
    args = [x, layer.basis.grid, layer.coef.detach(), layer.spline_scaler.detach(), layer.base_weight.detach()]
    with pytest.raises(RuntimeError, match="coef must be"):
        torch.ops.kanlab_cpp.fused_forward(x, args[1], args[2][:, :, :-1], *args[3:], None, 3, 1, 1, False)
    with pytest.raises(RuntimeError, match="mode must be"):
        torch.ops.kanlab_cpp.fused_forward(*args, None, 3, 7, 1, False)
    with pytest.raises(RuntimeError, match="one dtype"):
        torch.ops.kanlab_cpp.fused_forward(x, args[1], args[2].float(), *args[3:], None, 3, 1, 1, False)
    with pytest.raises(RuntimeError, match="bias must be"):
        torch.ops.kanlab_cpp.fused_forward(*args, torch.zeros(7, dtype=torch.float64), 3, 1, 1, False)
    with pytest.raises(ValueError, match="expects input of shape"):
        layer.kernel = "fused"
        layer(torch.rand(5, 3, dtype=torch.float64))
    assert kan_forward(x, layer.basis, *args[2:], torch.nn.functional.silu, kernel="fused").shape == (5, 3)


def test_cached_build_loads_without_the_jit_machinery(tmp_path):
    """A build that loaded once is loaded directly by later processes (no torch.utils.cpp_extension import,
    which costs about a second)."""
    code = ("import sys\nfrom kanlab.kernels import ops\nassert ops.load_extension()\n"
            "print('cpp_extension' in ' '.join(sys.modules))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "False"


# ---- the whole network as one node (kanlab.kernels.fused_network) ---------------------------------------
def _kan(widths=(2, 5, 3, 1), seed=0, **kw):
    torch.manual_seed(seed)
    model = KAN(list(widths), grid_size=6, dtype=torch.float64, **kw)
    with torch.no_grad():
        model.layers[1].mask[0, 1] = 0  # a pruned edge
    return model


def _model_grads(model, x):
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = model(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    return y, [y.detach(), x.grad] + [p.grad for p in model.parameters()]


def test_network_node_equals_the_layers_one_by_one():
    from kanlab.kernels import use_kernel

    model = _kan()
    model.update_grid(torch.randn(400, 2, dtype=torch.float64) ** 3)
    x = torch.randn(300, 2, dtype=torch.float64) * 1.5
    with use_kernel("fused"):
        y, net = _model_grads(model, x)
        assert type(y.grad_fn).__name__ == "_FusedNetworkBackward"
        model.layers[0].register_forward_hook(lambda *a: None)  # observable layer calls: one by one
        y2, layers = _model_grads(model, x)
        assert type(y2.grad_fn).__name__ != "_FusedNetworkBackward"
    for a, b in zip(net, layers):
        assert torch.equal(a, b)  # the same kernels in the same order
    _, ref = _model_grads(model, x)  # the default path
    for a, b in zip(net, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


def test_network_node_gradcheck_double_backward_and_no_grad():
    from kanlab.kernels import use_kernel

    model = _kan((2, 3, 1), bias=False)
    x = (torch.rand(7, 2, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    with use_kernel("fused"):
        assert torch.autograd.gradcheck(lambda z: model(z), (x,))
        assert torch.autograd.gradgradcheck(lambda z: model(z), (x,))
        with torch.no_grad():
            y = model(x)
        assert y.grad_fn is None and y.shape == (7, 1)
        params = dict(model.named_parameters())
        out = torch.func.functional_call(model, params, (x.detach(),))  # plain tensors: still one node
        torch.testing.assert_close(out, model(x).detach())


def test_network_node_is_skipped_where_it_would_hide_something():
    from kanlab.kernels import use_kernel

    x = torch.rand(5, 2, dtype=torch.float64)
    mult = KAN([2, (2, 1), 1], grid_size=4, dtype=torch.float64)  # multiplication nodes
    symbolic = _kan((2, 2, 1))
    symbolic.layers[0].set_symbolic(0, 0, "sin")
    calls = []
    hooked = _kan((2, 2, 1))
    hooked.layers[1].register_forward_pre_hook(lambda *a: calls.append(1))
    with use_kernel("fused"):
        for model in (mult, symbolic, hooked):
            y = model(x.clone().requires_grad_())
            assert type(y.grad_fn).__name__ != "_FusedNetworkBackward"
    assert calls == [1]
    with pytest.raises(TypeError, match="dtype"):
        _kan((2, 2, 1))(x.float())


@pytest.mark.parametrize("extrapolate", ["linear", "clamp", "zero"])
@pytest.mark.parametrize("order", [1, 3, 5])
def test_grid_update_basis_values_match_the_reference(order, extrapolate):
    """Grid updates and extensions evaluate the basis through the C++ kernel (BSpline._values_no_grad)."""
    layer = KANLinear(3, 2, grid_size=7, order=order, extrapolate=extrapolate, dtype=torch.float64)
    gen = torch.Generator().manual_seed(order)
    layer.update_grid(torch.randn(500, 3, dtype=torch.float64, generator=gen) ** 3)  # adaptive knots
    x = torch.randn(2, 100, 3, dtype=torch.float64, generator=gen) * 3  # many outside the grid
    torch.testing.assert_close(layer.basis._values_no_grad(x), layer.basis(x), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_direct_mse_step_equals_backward_bit_for_bit(dtype):
    from kanlab.kernels import use_kernel
    from kanlab.kernels.fused_network import fused_mse_step

    torch.manual_seed(0)
    model = KAN([2, 5, 3, 1], grid_size=6, dtype=dtype)
    x, y = torch.randn(700, 2, dtype=dtype) * 1.3, torch.randn(700, 1, dtype=dtype)
    with use_kernel("fused"):
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        ref = [loss.detach()] + [p.grad.clone() for p in model.parameters()]
        got = [fused_mse_step(model, x, y)] + [p.grad for p in model.parameters()]  # accumulates: 2x
        for a, b in zip(ref[1:], got[1:]):
            assert torch.equal(2 * a, b)
        assert torch.equal(ref[0], got[0])
        model.zero_grad(set_to_none=True)
        fused_mse_step(model, x, y)
        for a, p in zip(ref[1:], model.parameters()):
            assert torch.equal(a, p.grad)


def test_direct_mse_step_cache_reuses_the_plan_only_for_the_same_batch(monkeypatch):
    import kanlab.kernels.fused_network as fn
    from kanlab.kernels import use_kernel

    torch.manual_seed(1)
    model = KAN([2, 4, 1], grid_size=5, dtype=torch.float64)
    x, y = torch.randn(300, 2, dtype=torch.float64), torch.randn(300, 1, dtype=torch.float64)
    x2, y2 = x[:100].clone(), y[:100].clone()
    calls = []
    real = fn._mse_prepare
    monkeypatch.setattr(fn, "_mse_prepare", lambda *a: calls.append(1) or real(*a))
    with use_kernel("fused"):
        expected = []
        for xb, yb in ((x, y), (x2, y2)):
            model.zero_grad(set_to_none=True)
            loss = fn.fused_mse_step(model, xb, yb)
            expected.append([loss] + [p.grad for p in model.parameters()])
        cache: dict = {}
        for xb, yb, ref in ((x, y, expected[0]), (x, y, expected[0]), (x2, y2, expected[1])):
            with torch.no_grad():  # parameter values may change between cached calls: nothing is kept of them
                for p in model.parameters():
                    p.mul_(1.0)
            model.zero_grad(set_to_none=True)
            got = [fn.fused_mse_step(model, xb, yb, cache)] + [p.grad for p in model.parameters()]
            assert all(torch.equal(a, b) for a, b in zip(ref, got))
        with torch.no_grad():
            model.layers[0].coef.add_(0.5)
        model.zero_grad(set_to_none=True)
        moved = fn.fused_mse_step(model, x2, y2, cache)
        assert not torch.equal(moved, expected[1][0])  # new values are used, with the cached plan
    assert len(calls) == 2 + 2  # two uncached calls, then one per distinct batch


def test_direct_mse_step_declines_what_it_cannot_do():
    from kanlab import MLP
    from kanlab.kernels import use_kernel
    from kanlab.kernels.fused_network import fused_mse_step

    x, y = torch.rand(20, 2, dtype=torch.float64), torch.rand(20, 1, dtype=torch.float64)
    with use_kernel("fused"):
        masked = _kan((2, 3, 1))  # _kan prunes an edge of layer 1
        assert fused_mse_step(masked, x, y) is None and all(p.grad is None for p in masked.parameters())
        plain = KAN([2, 3, 1], grid_size=4, dtype=torch.float64)
        assert fused_mse_step(plain, x, y[:, :0]) is None  # shape mismatch: the normal path raises the error
        assert fused_mse_step(plain, x.requires_grad_(), y) is None
        plain.layers[0].coef.register_hook(lambda g: g)
        assert fused_mse_step(plain, x.detach(), y) is None
        assert fused_mse_step(MLP([2, 3, 1], dtype=torch.float64), x.detach(), y) is None
        with torch.no_grad():
            assert fused_mse_step(KAN([2, 3, 1], dtype=torch.float64), x.detach(), y) is None


def test_fit_with_and_without_the_direct_step_is_identical(monkeypatch):
    import kanlab.train.loop as loop
    from kanlab import fit, make_dataset
    from kanlab.kernels import use_kernel

    data = make_dataset("x*y", n_train=200, n_test=50, seed=0, dtype=torch.float64)
    histories = []
    for direct in (True, False):
        if not direct:
            monkeypatch.setattr(loop, "fused_mse_step", lambda *a, **k: None)
        torch.manual_seed(3)
        model = KAN([2, 3, 1], grid_size=4, dtype=torch.float64)
        with use_kernel("fused"):
            h = fit(model, data, steps=4, grids=[4, 6], update_grid_every=2, seed=0)
        histories.append((h.train_loss, [p.detach().clone() for p in model.parameters()]))
    assert histories[0][0] == histories[1][0]
    assert all(torch.equal(a, b) for a, b in zip(histories[0][1], histories[1][1]))
