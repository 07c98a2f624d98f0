"""Every kernel path against the dense reference: basis values, layer outputs and all gradients, double backward.

The reference is ``kanlab.splines.bspline_basis`` (Cox–de Boor on the full knot vector) and the ``"reference"``
path of :func:`kanlab.kernels.kan_forward` (dense basis tensor + GEMM, autograd through plain PyTorch).
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from kanlab.basis import create_basis
from kanlab.kernels import choose_kernel, kan_forward, list_kernels, ops, torch_impl, use_kernel
from kanlab.kernels.dispatch import FUSED_MAX_EDGES
from kanlab.kernels.extension import extension_available, extension_error
from kanlab.layers.linear import KANLinear
from kanlab.splines import bspline_basis, bspline_basis_derivative

IMPLS = ["torch"] + (["cpp"] if extension_available() else [])


def _grid(kind: str, n_in: int, grid_size: int, order: int, gen: torch.Generator) -> torch.Tensor:
    """Knot rows (in, G + 2k + 1): uniform, random non-uniform, or non-uniform with repeated knots."""
    m = grid_size + 2 * order + 1
    uniform = (-1 + torch.arange(-order, grid_size + order + 1, dtype=torch.float64) * 2 / grid_size)
    if kind == "uniform":
        return uniform.expand(n_in, -1).clone()
    rows = torch.sort(torch.rand(n_in, m, dtype=torch.float64, generator=gen) * 3 - 1.5, dim=1).values
    if kind == "repeated":
        rows[:, m // 2] = rows[:, m // 2 - 1]
    return rows


def _points(grid: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Random points beyond both ends of every row, plus every knot, both ends exactly, NaN and ±inf."""
    n_in = grid.shape[0]
    x = torch.rand(n, n_in, dtype=grid.dtype, generator=gen) * 4 - 2
    knots = grid.t()  # (M, in): every knot of every row
    special = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=grid.dtype)[:, None].expand(-1, n_in)
    return torch.cat([x, knots, special], dim=0).contiguous()


def _local_impl(impl: str):
    if impl == "cpp":
        return torch.ops.kanlab_cpp.bspline_local
    return torch_impl.bspline_local


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["uniform", "nonuniform", "repeated"])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4, 5])
def test_local_values_and_derivatives_match_cox_de_boor(impl, kind, order):
    gen = torch.Generator().manual_seed(order)
    grid = _grid(kind, 3, 6, order, gen)
    x = _points(grid, 200, gen)
    n_fun = grid.shape[1] - order - 1
    for deriv in range(order + 2):
        ref = bspline_basis(x, grid, order) if deriv == 0 else bspline_basis_derivative(x, grid, order, deriv)
        v, first = _local_impl(impl)(x, grid, order, deriv)
        assert v.shape == (*x.shape, order + 1) and first.dtype == torch.int64
        assert bool(((first >= 0) & (first <= n_fun - order - 1)).all())
        dense = torch.zeros(*x.shape, n_fun, dtype=x.dtype).scatter(-1, first[..., None] + torch.arange(order + 1),
                                                                    v)
        ok = torch.isfinite(ref)
        torch.testing.assert_close(dense[ok], ref[ok], rtol=1e-10, atol=1e-9 * (1 + ref[ok].abs().max().item()))
        assert not torch.isnan(v).any()


def test_float32_uniform_rows_use_the_fast_path_and_agree():
    gen = torch.Generator().manual_seed(1)
    grid = _grid("uniform", 64, 9, 3, gen).float()
    x = (torch.rand(300, 64, generator=gen) * 2.6 - 1.3).contiguous()
    for deriv in (0, 1, 2):
        ref = bspline_basis_derivative(x.double(), grid.double(), 3, deriv)
        for impl in IMPLS:
            v, first = _local_impl(impl)(x, grid, 3, deriv)
            dense = torch.zeros(300, 64, 12).scatter(-1, first[..., None] + torch.arange(4), v)
            torch.testing.assert_close(dense.double(), ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_basis_local_contract_kept():
    basis = create_basis("bspline", in_features=4, grid_size=7, order=3)
    x = torch.linspace(-1.6, 1.6, 40)[:, None].expand(-1, 4).reshape(5, 8, 4)
    v, first = basis.local(x)
    assert v.shape == (5, 8, 4, 4) and first.shape == (5, 8, 4)
    full = basis(x)
    torch.testing.assert_close(torch.gather(full, -1, first[..., None] + torch.arange(4)), v)


def _layer(order: int, dtype, *, base="silu", bias=True, grid_size=6, n_in=5, n_out=4, seed=0) -> KANLinear:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = KANLinear(n_in, n_out, grid_size=grid_size, order=order, base_activation=base, bias=bias,
                          dtype=dtype)
        with torch.no_grad():
            layer.spline_scaler.uniform_(0.5, 1.5)
            if layer.bias is not None:
                layer.bias.normal_()
            layer.mask[0, 1] = 0  # a pruned edge
            layer.mask[n_out - 1, 0] = 0
    return layer


def _run(layer: KANLinear, x: torch.Tensor, kernel: str, create_graph: bool = False):
    layer.kernel = kernel
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(7))
    (y * g).sum().backward()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in layer.named_parameters()}
    return y.detach(), x.grad.clone(), grads


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_paths_match_reference_float64(kernel, order):
    layer = _layer(order, torch.float64, seed=order)
    gen = torch.Generator().manual_seed(order)
    x = torch.rand(37, 5, dtype=torch.float64, generator=gen) * 3.2 - 1.6  # some beyond the extended grid
    x[0] = layer.basis.grid[:, order]  # exactly on knots
    ref = _run(layer, x, "reference")
    got = _run(layer, x, kernel)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-10, atol=1e-12)
    assert set(got[2]) == {"base_weight", "coef", "spline_scaler", "bias"}
    for name in got[2]:
        torch.testing.assert_close(got[2][name], ref[2][name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
def test_inputs_exactly_at_the_grid_ends_keep_the_full_gradient(kernel):
    """Nothing strictly outside the range (the fast paths skip the tangent term): values and gradients still
    match the reference, and the input gradient at the ends is the spline's one-sided slope (gradcheck)."""
    layer = _layer(3, torch.float64, grid_size=5, n_in=5, n_out=4)
    grid = layer.basis.grid
    lo, hi = grid[:, 3], grid[:, grid.shape[1] - 4]
    x = torch.stack([lo, hi, (lo + hi) / 2, lo + 0.25 * (hi - lo)])
    ref = _run(layer, x, "reference")
    got = _run(layer, x, kernel)
    for a, b in list(zip(got[:2], ref[:2])) + [(got[2][n], ref[2][n]) for n in ref[2]]:
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert ref[1][:2].abs().min() > 0  # the ends do get a gradient
    layer.kernel = kernel
    assert torch.autograd.gradcheck(lambda z: layer(z), (x[:2].clone().requires_grad_(),))


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
def test_paths_match_reference_on_adaptive_grid_without_base_or_bias(kernel):
    layer = _layer(3, torch.float64, base="zero", bias=False, grid_size=8)
    gen = torch.Generator().manual_seed(3)
    samples = torch.randn(300, 5, dtype=torch.float64, generator=gen) ** 3  # skewed: non-uniform knots
    layer.update_grid(samples)
    grid = layer.basis.grid
    assert (grid[:, 1:] - grid[:, :-1]).std(dim=1).max() > 1e-3  # really non-uniform
    x = torch.randn(50, 5, dtype=torch.float64, generator=gen) * 2
    ref = _run(layer, x, "reference")
    got = _run(layer, x, kernel)
    for a, b in zip(got[:2], ref[:2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert ref[2]["base_weight"] is None and got[2]["base_weight"] is None  # no base branch
    for name in ("coef", "spline_scaler"):
        torch.testing.assert_close(got[2][name], ref[2][name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
def test_paths_match_reference_float32(kernel):
    layer = _layer(3, torch.float32, grid_size=20, n_in=33, n_out=17)
    x = torch.rand(64, 33, generator=torch.Generator().manual_seed(2)) * 2.4 - 1.2
    ref = _run(layer, x, "reference")
    got = _run(layer, x, kernel)
    for a, b in list(zip(got[:2], ref[:2])) + [(got[2][n], ref[2][n]) for n in ref[2]]:
        assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-7


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
def test_gradcheck_and_double_backward(kernel):
    layer = _layer(3, torch.float64, grid_size=4, n_in=3, n_out=2)
    basis = layer.basis
    mask = layer.numeric_mask()
    x = (torch.rand(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 2.2 - 1.1)
    x.requires_grad_()
    coef = layer.coef.detach().clone().requires_grad_()
    scale = (layer.spline_scaler.detach() * mask).requires_grad_()
    base = (layer.base_weight.detach() * mask).requires_grad_()
    act = torch.nn.functional.silu

    def f(x, coef, scale, base):
        return kan_forward(x, basis, coef, scale, base, act, kernel=kernel)

    assert torch.autograd.gradcheck(f, (x, coef, scale, base))
    assert torch.autograd.gradgradcheck(f, (x, coef, scale, base))


@pytest.mark.parametrize("kernel", ["dense", "local", "fused"])
def test_pinn_style_input_derivatives_match_reference(kernel):
    layer = _layer(4, torch.float64, grid_size=7, n_in=2, n_out=3)
    x = torch.rand(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9)) * 2 - 1

    def second_derivative_loss(k):
        layer.kernel = k
        layer.zero_grad(set_to_none=True)
        xx = x.clone().requires_grad_()
        y = layer(xx).sum()
        (dx,) = torch.autograd.grad(y, xx, create_graph=True)
        (d2x,) = torch.autograd.grad(dx.sum(), xx, create_graph=True)
        loss = (dx ** 2).sum() + (d2x ** 2).sum()
        loss.backward()
        return [loss.detach()] + [p.grad.clone() for n, p in layer.named_parameters() if n != "bias"]

    for a, b in zip(second_derivative_loss(kernel), second_derivative_loss("reference")):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not extension_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4, 5, 7])
def test_cpp_weight_only_backward_matches_dense_formulas(dtype, order):
    """The weight-only backward (an input that needs no gradient) sums runs of samples that share a window in
    registers: every compile-time window size and a run-time one (order 7), output counts that fill whole
    register chunks and leave a tail, many samples per window (G = 4) and few (G = 60), and samples whose
    values are all zero (outside a "zero"-extrapolated grid) skipped even where their gradient is infinite."""
    gen = torch.Generator().manual_seed(order)
    for g, n_out in ((4, 70), (60, 41)):
        n, n_in, k = 300, 5, order
        grid = _grid("nonuniform", n_in, g, k, gen)
        x = torch.rand(n, n_in, dtype=torch.float64, generator=gen) * 3.6 - 1.8
        v, first = torch_impl.bspline_local(x, grid, k, 0)
        v[:7] = 0  # as outside the knot span with extrapolate="zero"
        grad = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
        grad[:3, 0] = float("inf")
        coef = torch.randn(n_out, n_in, g + k, dtype=torch.float64, generator=gen)
        scale = torch.rand(n_out, n_in, dtype=torch.float64, generator=gen)
        dense = torch.zeros(n, n_in, g + k, dtype=torch.float64).scatter(-1, first[..., None] + torch.arange(k + 1), v)
        g_w = (grad[7:].t() @ dense[7:].reshape(n - 7, -1)).reshape(n_out, n_in, g + k)
        _, g_coef, g_scale = torch.ops.kanlab_cpp.local_backward(grad.to(dtype), v.to(dtype), first, coef.to(dtype),
                                                               scale.to(dtype), False, True)
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g_coef.double(), g_w * scale[..., None], **tol)
        torch.testing.assert_close(g_scale.double(), (g_w * coef).sum(-1), **tol)


@pytest.mark.parametrize("impl", IMPLS)
def test_local_contraction_ops_match_between_implementations(impl):
    gen = torch.Generator().manual_seed(4)
    n, n_in, n_out, k, g = 40, 6, 5, 3, 9
    grid = _grid("nonuniform", n_in, g, k, gen)
    x = torch.rand(n, n_in, dtype=torch.float64, generator=gen) * 3 - 1.5
    v, first = torch_impl.bspline_local(x, grid, k, 0)
    coef = torch.randn(n_out, n_in, g + k, dtype=torch.float64, generator=gen)
    scale = torch.rand(n_out, n_in, dtype=torch.float64, generator=gen)
    grad = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
    dense = torch.zeros(n, n_in, g + k, dtype=torch.float64).scatter(-1, first[..., None] + torch.arange(k + 1), v)
    y_ref = dense.reshape(n, -1) @ (coef * scale[..., None]).reshape(n_out, -1).t()
    forward = torch.ops.kanlab_cpp.local_forward if impl == "cpp" else torch_impl.local_forward
    backward = torch.ops.kanlab_cpp.local_backward if impl == "cpp" else torch_impl.local_backward
    torch.testing.assert_close(forward(v, first, coef, scale), y_ref, rtol=1e-12, atol=1e-12)
    g_v, g_coef, g_scale = backward(grad, v, first, coef, scale, True, True)
    w = (coef * scale[..., None]).reshape(n_out, -1)
    ref_gv = torch.gather(grad @ w, 1, torch_impl.local_indices(first, k, g + k)).reshape(n, n_in, k + 1)
    g_w = (grad.t() @ dense.reshape(n, -1)).reshape(n_out, n_in, g + k)
    torch.testing.assert_close(g_v, ref_gv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_coef, g_w * scale[..., None], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_scale, (g_w * coef).sum(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not extension_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_out", [41, 130])
def test_cpp_contraction_with_many_feature_groups_matches_dense_formulas(dtype, threads, n_out):
    """Large grids split the features into several groups (slabs of K x out no longer fit the cache budget);
    sizes that are not multiples of the 8 x 8 transpose tiles; one and two threads (with 130 outputs and two
    threads the forward gives each thread its own block of outputs); every need_v/need_w mix."""
    gen = torch.Generator().manual_seed(11)
    n, n_in, k, g = 53, 37, 3, 200
    grid = _grid("uniform", n_in, g, k, gen)
    x = torch.rand(n, n_in, dtype=torch.float64, generator=gen) * 2 - 1
    v, first = torch_impl.bspline_local(x, grid, k, 0)
    coef = torch.randn(n_out, n_in, g + k, dtype=torch.float64, generator=gen)
    scale = torch.rand(n_out, n_in, dtype=torch.float64, generator=gen)
    grad = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
    dense = torch.zeros(n, n_in, g + k, dtype=torch.float64).scatter(-1, first[..., None] + torch.arange(k + 1), v)
    w = (coef * scale[..., None]).reshape(n_out, -1)
    g_w = (grad.t() @ dense.reshape(n, -1)).reshape(n_out, n_in, g + k)
    want = {"y": dense.reshape(n, -1) @ w.t(),
            "g_v": torch.gather(grad @ w, 1, torch_impl.local_indices(first, k, g + k)).reshape(n, n_in, k + 1),
            "g_coef": g_w * scale[..., None], "g_scale": (g_w * coef).sum(-1)}
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    args = [t.to(dtype) for t in (v, coef, scale)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = torch.ops.kanlab_cpp.local_forward(args[0], first, args[1], args[2])
        torch.testing.assert_close(y.double(), want["y"], **tol)
        for need_v, need_w in [(True, True), (True, False), (False, True)]:
            g_v, g_coef, g_scale = torch.ops.kanlab_cpp.local_backward(grad.to(dtype), args[0], first, args[1],
                                                                     args[2], need_v, need_w)
            if need_v:
                torch.testing.assert_close(g_v.double(), want["g_v"], **tol)
            if need_w:
                torch.testing.assert_close(g_coef.double(), want["g_coef"], **tol)
                torch.testing.assert_close(g_scale.double(), want["g_scale"], **tol)
                assert g_coef.is_contiguous() and g_coef.shape == coef.shape
            else:
                assert g_coef.numel() == 0 and g_scale.numel() == 0  # not allocated
            if not need_v:
                assert g_v.numel() == 0
    finally:
        torch.set_num_threads(previous)


def test_the_extension_builds_where_a_compiler_and_ninja_exist():
    """A C++ compile error must not hide behind the pure-PyTorch fallback (which computes the same values)."""
    if os.environ.get("KANLAB_NO_EXTENSION", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.skip("disabled by KANLAB_NO_EXTENSION")
    if shutil.which(os.environ.get("CXX", "c++")) is None or shutil.which("ninja") is None:
        pytest.skip("no C++ compiler or ninja here")
    assert extension_available(), extension_error()
    names = {"bspline_local", "bspline_dense", "bspline_dense_backward", "pack_weight", "pack_weight_backward",
             "local_forward", "local_backward"}
    assert all(hasattr(torch.ops.kanlab_cpp, n) for n in names)


@pytest.mark.skipif(not extension_available(), reason="C++ kernels not built")
def test_cached_gradient_buffers_are_never_shared_while_alive():
    """Coefficient gradients above 4 MiB come from a buffer cache: a gradient still referenced must keep its
    values when the next backward pass asks for a buffer of the same size, and a freed one may be reused."""
    layer = KANLinear(64, 64, grid_size=257, dtype=torch.float32)  # coef 64·64·260 floats > 4 MiB
    layer.kernel = "local"
    gen = torch.Generator().manual_seed(3)
    x1, x2 = (torch.rand(64, 64, generator=gen) * 2 - 1 for _ in range(2))
    layer(x1).square().sum().backward()
    kept, snapshot = layer.coef.grad, layer.coef.grad.clone()
    layer.coef.grad = None
    layer(x2).square().sum().backward()
    assert layer.coef.grad.data_ptr() != kept.data_ptr()
    torch.testing.assert_close(kept, snapshot, rtol=0, atol=0)
    with use_kernel("reference"):
        layer.kernel = "auto"
        layer.coef.grad = None
        layer(x2).square().sum().backward()
        want = layer.coef.grad
    layer.kernel = "local"
    del kept
    layer.coef.grad = None
    layer(x2).square().sum().backward()
    torch.testing.assert_close(layer.coef.grad, want, rtol=1e-5, atol=1e-6)


def test_ops_pass_opcheck():
    gen = torch.Generator().manual_seed(0)
    grid = _grid("uniform", 3, 5, 3, gen)
    x = torch.rand(7, 3, dtype=torch.float64, generator=gen) * 2 - 1
    torch.library.opcheck(ops.bspline_local, (x, grid, 3, 0))
    torch.library.opcheck(ops.bspline_dense, (x.requires_grad_(), torch.rand(7, 3, dtype=torch.float64), grid, 3))
    v, first = ops.bspline_local(x.detach(), grid, 3, 0)
    coef = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(ops.local_forward, (v.requires_grad_(), first, coef, scale))
    base = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(ops.pack_weight, (coef, scale, base))


@pytest.mark.parametrize("impl", IMPLS)
def test_pack_weight_matches_the_product_and_concatenation(impl):
    gen = torch.Generator().manual_seed(8)
    coef = torch.randn(5, 4, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    scale = torch.rand(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    base = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    gw = torch.randn(5, 4, 10, dtype=torch.float64, generator=gen)
    want = torch.cat([coef * scale[..., None], base[..., None]], dim=-1)
    want_grads = torch.autograd.grad(want, (coef, scale, base), gw)
    if impl == "cpp":
        got = torch.ops.kanlab_cpp.pack_weight(coef, scale, base)
        got_grads = torch.ops.kanlab_cpp.pack_weight_backward(gw, coef, scale)
    else:
        got = torch_impl.pack_weight(coef, scale, base)
        got_grads = torch_impl.pack_weight_backward(gw, coef, scale)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
    # through the eager entry point and autograd, to second order
    assert torch.autograd.gradcheck(ops.packed_weight, (coef, scale, base))
    assert torch.autograd.gradgradcheck(ops.packed_weight, (coef, scale, base))


@pytest.mark.skipif(not extension_available(), reason="needs the C++ extension")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [0, 1, 3, 5])
@pytest.mark.parametrize("with_act", [False, True])
def test_dense_operand_rows_match_cox_de_boor(dtype, order, with_act):
    """``bspline_dense`` writes whole rows (float32 rows of at most 16 columns through one masked permute per row,
    longer rows through zero fill + window copy): grids whose rows are shorter than, exactly, and longer than 16
    columns, points outside the grid, on every knot, NaN and ±inf."""
    gen = torch.Generator().manual_seed(10 + order)
    for n_cols in (9, 15, 16, 17, 30):
        grid_size = n_cols - order - int(with_act)
        if grid_size < 1:
            continue
        grid = _grid("uniform", 37, grid_size, order, gen).to(dtype)
        x = _points(grid, 150, gen)
        act = torch.randn(x.shape, dtype=dtype, generator=gen) if with_act else None
        got = torch.ops.kanlab_cpp.bspline_dense(x, act, grid, order)
        n_fun = grid.shape[1] - order - 1
        assert got.shape == (*x.shape, n_cols)
        want = torch.nan_to_num(bspline_basis(x.double(), grid.double(), order), nan=0.0)  # NaN/inf rows: zero
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(got[..., :n_fun].double(), want, rtol=tol, atol=tol)
        if with_act:
            assert torch.equal(got[..., n_fun], act)
        torch.testing.assert_close(got, torch_impl.bspline_dense(x, act, grid, order), rtol=tol, atol=tol)


def test_torch_compile_keeps_working():
    layer = _layer(3, torch.float32, grid_size=30, n_in=8, n_out=6)
    layer.kernel = "local"
    x = torch.rand(16, 8) * 2 - 1
    ref = layer(x)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    assert layer.coef.grad is not None and torch.isfinite(layer.coef.grad).all()


def test_choice_overrides_and_errors():
    assert set(list_kernels()) >= {"reference", "dense", "local", "fused"}
    assert choose_kernel(1000, 2, 5, 5, 3, compiled_kernels=True) == ("fused" if FUSED_MAX_EDGES >= 10 else "dense")
    assert choose_kernel(1000, 2, 5, 5, 3, compiled_kernels=False) == "dense"
    assert choose_kernel(1024, 256, 256, 5, 3, compiled_kernels=True) == "dense"
    assert choose_kernel(1024, 256, 256, 200, 3, compiled_kernels=True) == "local"
    assert choose_kernel(1024, 256, 256, 200, 3, compiled_kernels=False) == "dense"
    layer = _layer(3, torch.float64)
    x = torch.rand(4, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown kernel"):
        layer.kernel = "fastest"
    with pytest.raises(ValueError, match="unknown kernel"):
        with use_kernel("nope"):
            pass
    calls = []
    originals = {name: getattr(ops, name) for name in ("contract_local", "contract_local_inputs")}
    try:
        for name, fn in originals.items():  # the local path's two entry points (data inputs: the second)
            setattr(ops, name, lambda *a, _fn=fn: calls.append(1) or _fn(*a))
        with use_kernel("local"):
            layer(x)
        assert calls, "use_kernel('local') did not route through the local kernel"
        calls.clear()
        layer.kernel = "dense"  # the layer's own setting wins over the context manager
        with use_kernel("local"):
            layer(x)
        assert not calls
    finally:
        for name, fn in originals.items():
            setattr(ops, name, fn)
    rbf = KANLinear(3, 2, basis="rbf", dtype=torch.float64)
    rbf(torch.rand(4, 3, dtype=torch.float64))  # auto -> reference
    rbf.kernel = "local"
    with pytest.raises(ValueError, match="does not support basis RBF"):
        rbf(torch.rand(4, 3, dtype=torch.float64))


def test_leading_dimensions_and_empty_batch():
    layer = _layer(3, torch.float64)
    x = torch.rand(2, 3, 5, dtype=torch.float64)
    for kernel in ("reference", "dense", "local", "fused"):
        layer.kernel = kernel
        assert layer(x).shape == (2, 3, 4)
        assert layer(torch.zeros(0, 5, dtype=torch.float64)).shape == (0, 4)
