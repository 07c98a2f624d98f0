"""The local path's training-step ops: ``local_forward_lists`` sorts each feature's samples once and
``local_backward_lists`` reuses those lists; both must compute what ``local_forward`` / ``local_backward`` do.
``local_forward_inputs`` builds the same lists straight from the inputs (no ``v``/``first``).

Oracles: the plain C++ ops (themselves checked against the dense formulas in ``test_kernels.py``) and the
``"reference"`` path of a layer (dense basis tensor + GEMM, plain autograd).
"""

from __future__ import annotations

import pytest
import torch

from kanlab.kernels import torch_impl
from kanlab.kernels.extension import extension_available
from kanlab.layers.linear import KANLinear

pytestmark = pytest.mark.skipif(not extension_available(), reason="C++ kernels not built")


def _case(order: int, grid_size: int, n_in: int, n_out: int, n: int, dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    m = grid_size + 2 * order + 1
    grid = (-1 + torch.arange(-order, grid_size + order + 1, dtype=torch.float64) * 2 / grid_size).expand(n_in, m)
    x = torch.rand(n, n_in, dtype=torch.float64, generator=gen) * 2 - 1
    v, first = torch_impl.bspline_local(x, grid.contiguous(), order, 0)
    v[:5] = 0  # as outside the knot span with extrapolate="zero": skipped
    grad = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
    grad[:3, 0] = float("inf")  # only in skipped rows: must not reach any gradient
    coef = torch.randn(n_out, n_in, grid_size + order, dtype=torch.float64, generator=gen)
    scale = torch.rand(n_out, n_in, dtype=torch.float64, generator=gen)
    return v.to(dtype), first, coef.to(dtype), scale.to(dtype), grad.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [0, 1, 3, 5, 7])
@pytest.mark.parametrize("grid_size", [5, 200])
@pytest.mark.parametrize("n_out", [41, 130])
@pytest.mark.parametrize("threads", [1, 2])
def test_lists_ops_match_the_plain_ops(dtype, order, grid_size, n_out, threads):
    """Outputs with partial 64-wide chunks (41, 130), windows of 1..8 rows (order 7: the run-time width),
    small and large grids, one and two threads (two: each thread sums its share of the features)."""
    v, first, coef, scale, grad = _case(order, grid_size, 37, n_out, 300, dtype, seed=order + grid_size)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y_plain = torch.ops.kanlab_cpp.local_forward(v, first, coef, scale)
        y, lists = torch.ops.kanlab_cpp.local_forward_lists(v, first, coef, scale)
        assert lists.dtype == torch.uint8 and lists.numel() == 300 * 37 * ((order + 1) * v.element_size() + 8)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(y, y_plain, **tol)
        for need_v, need_w in [(False, True), (True, True), (True, False)]:
            want = torch.ops.kanlab_cpp.local_backward(grad, v, first, coef, scale, need_v, need_w)
            got = torch.ops.kanlab_cpp.local_backward_lists(grad, lists, coef, scale, order + 1, need_v, need_w)
            for a, b in zip(got, want):
                assert a.shape == b.shape
                torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # the same sums, same order
            if need_w and not need_v:  # the weight-only pass skips the all-zero rows
                assert torch.isfinite(got[1]).all() and torch.isfinite(got[2]).all()
    finally:
        torch.set_num_threads(previous)


def _rows(order: int, grid_size: int, n_in: int, uniform: bool, gen: torch.Generator) -> torch.Tensor:
    m = grid_size + 2 * order + 1
    grid = (-1 + torch.arange(-order, grid_size + order + 1, dtype=torch.float64) * 2 / grid_size).expand(n_in, m)
    if not uniform:  # jittered knots: the evaluation takes bspline_local's general path
        grid = torch.sort(grid + torch.rand(n_in, m, dtype=torch.float64, generator=gen) * (0.4 / grid_size),
                          dim=1).values
    return grid.contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [0, 1, 3, 5, 7])
@pytest.mark.parametrize("grid_size", [5, 200])
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_lists_from_inputs_equal_the_sorted_values(dtype, order, grid_size, uniform, threads):
    """``local_forward_inputs(x)`` = ``local_forward_lists(bspline_local(x))``: the same lists byte for byte and
    the same outputs, for inputs outside the knot span on both sides (skipped rows), NaN and ±inf, on uniform
    rows (evaluated in list order) and jittered ones (sorted from v and first)."""
    gen = torch.Generator().manual_seed(order * 7 + grid_size)
    grid = _rows(order, grid_size, 37, uniform, gen).to(dtype)
    x = (torch.rand(300, 37, dtype=torch.float64, generator=gen) * 2.6 - 1.3).to(dtype)
    x[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    coef = torch.randn(41, 37, grid_size + order, dtype=dtype, generator=gen)
    scale = torch.rand(41, 37, dtype=dtype, generator=gen)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        v, first = torch.ops.kanlab_cpp.bspline_local(x, grid, order, 0)
        want_y, want_lists = torch.ops.kanlab_cpp.local_forward_lists(v, first, coef, scale)
        y, lists = torch.ops.kanlab_cpp.local_forward_inputs(x, grid, order, coef, scale)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(lists, want_lists)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y, want_y, **tol)


def test_inputs_op_refuses_mismatched_shapes():
    gen = torch.Generator().manual_seed(0)
    grid = _rows(3, 10, 6, True, gen).float()
    x = torch.rand(20, 6, generator=gen)
    coef, scale = torch.randn(5, 6, 13, generator=gen), torch.rand(5, 6, generator=gen)
    with pytest.raises(RuntimeError, match="coef must be"):
        torch.ops.kanlab_cpp.local_forward_inputs(x, grid, 3, coef[..., :-1], scale)
    with pytest.raises(RuntimeError, match="scale must be"):
        torch.ops.kanlab_cpp.local_forward_inputs(x, grid, 3, coef, scale[:, :-1])
    with pytest.raises(RuntimeError, match="share a dtype"):
        torch.ops.kanlab_cpp.local_forward_inputs(x, grid, 3, coef.double(), scale.double())
    with pytest.raises(RuntimeError, match="grid must be"):
        torch.ops.kanlab_cpp.local_forward_inputs(x[:, :5], grid, 3, coef, scale)


def test_lists_from_another_shape_are_refused():
    v, first, coef, scale, grad = _case(3, 10, 6, 5, 40, torch.float32)
    _, lists = torch.ops.kanlab_cpp.local_forward_lists(v, first, coef, scale)
    with pytest.raises(RuntimeError, match="lists must be the byte buffer"):
        torch.ops.kanlab_cpp.local_backward_lists(grad, lists[:-4], coef, scale, 4, False, True)
    with pytest.raises(RuntimeError, match="lists must be the byte buffer"):
        torch.ops.kanlab_cpp.local_backward_lists(grad.double(), lists, coef.double(), scale.double(), 4, False,
                                                  True)


def _layer(dtype, grid_size: int) -> KANLinear:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        layer = KANLinear(7, 5, grid_size=grid_size, order=3, dtype=dtype)
        with torch.no_grad():
            layer.spline_scaler.uniform_(0.5, 1.5)
            layer.coef.normal_()
            layer.mask[1, 2] = 0  # a pruned edge
    return layer


def _ops_called(fn) -> set[str]:
    with torch.autograd.profiler.profile() as prof:
        fn()
    return {e.name for e in prof.function_events if e.name.startswith("kanlab_cpp::local_")}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grid_size", [5, 60])
@pytest.mark.parametrize("span", [0.9, 1.3])
def test_training_step_on_data_inputs_sorts_once_and_matches_reference(dtype, grid_size, span):
    """Inputs that need no gradient (a first layer): the step runs the lists ops (inside the grid range straight
    from the inputs; outside it, where the linear extrapolation adjusts the values, from v and first), and its
    outputs and parameter gradients equal the reference path's; inference and input-gradient steps keep the
    plain ops."""
    layer = _layer(dtype, grid_size)
    x = (torch.rand(90, 7, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 2 - 1) * span
    g = torch.randn(90, 5, dtype=dtype, generator=torch.Generator().manual_seed(2))

    def step(kernel):
        layer.kernel = kernel
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        (y * g).sum().backward()
        return [y.detach()] + [p.grad.clone() for p in layer.parameters()]

    forward = "kanlab_cpp::local_forward_inputs" if span < 1 else "kanlab_cpp::local_forward_lists"
    assert _ops_called(lambda: step("local")) == {forward, "kanlab_cpp::local_backward_lists"}
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for a, b in zip(step("local"), step("reference")):
        torch.testing.assert_close(a, b, **tol)
    layer.kernel = "local"
    with torch.no_grad():
        assert _ops_called(lambda: layer(x)) == {"kanlab_cpp::local_forward"}
    xg = x.clone().requires_grad_()
    assert _ops_called(lambda: layer(xg).sum().backward()) == {"kanlab_cpp::local_forward",
                                                                 "kanlab_cpp::local_backward"}


@pytest.mark.parametrize("span", [0.95, 1.2])
def test_create_graph_through_the_lists_matches_reference(span):
    """A gradient penalty on the parameters (double backward with data inputs, inside the grid range and
    beyond it): the backward rebuilds v and first from the lists for the differentiable composite."""
    layer = _layer(torch.float64, 9)
    x = (torch.rand(40, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2 - 1) * span

    def penalty(kernel):
        layer.kernel = kernel
        layer.zero_grad(set_to_none=True)
        loss = (layer(x) ** 2).sum()
        grads = torch.autograd.grad(loss, [layer.coef, layer.spline_scaler], create_graph=True)
        total = loss + sum((gr ** 2).sum() for gr in grads)
        total.backward()
        return [total.detach()] + [p.grad.clone() for p in layer.parameters()]

    for a, b in zip(penalty("local"), penalty("reference")):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
