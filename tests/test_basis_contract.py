"""The Basis contract, checked for every registered family — no per-family code here.

A new family registered with ``@register_basis`` is picked up automatically (parametrised over
``list_bases()``, as timm's model tests are over ``list_models()``).
"""

from __future__ import annotations

import json

import pytest
import torch

from kanlab.basis import Basis, create_basis, get_basis_class, list_bases
from kanlab.kernels import contract
from kanlab.layers import KANLinear

IN, OUT = 4, 3
NAMES = list_bases()
LOCAL = [n for n in NAMES if get_basis_class(n).supports_local]
GRID = [n for n in NAMES if get_basis_class(n).supports_grid]
REQUIRED = ["bspline", "catmull_rom", "natural_cubic", "rbf", "chebyshev", "legendre", "gram", "jacobi",
            "bernstein", "fourier", "mexican_hat", "morlet", "dog", "meyer", "shannon", "rational", "relu"]


def make(name: str, **factory) -> Basis:
    """An unbound default basis, bound the way KANLinear binds it."""
    return create_basis(name).bind(IN, OUT, **factory)


def inputs(n: int = 32, seed: int = 0, dtype=torch.float32, spread: float = 0.9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(n, IN, generator=g, dtype=torch.float64) * 2 - 1) * spread).to(dtype)


def tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def perturb(basis: Basis, seed: int = 1) -> None:
    """Move every learnable parameter (and the grid, where there is one) away from its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in basis.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    if basis.supports_grid:
        n_in = basis.in_features
        samples = torch.randn(200, n_in, generator=g).to(next(iter(tensors(basis).values())).dtype) * 0.6
        basis.update_grid(samples, torch.zeros(1, n_in, basis.num_functions, dtype=samples.dtype))


def test_every_required_family_is_registered():
    assert set(REQUIRED) <= set(NAMES)
    assert {"bspline", "catmull_rom", "relu"} <= set(LOCAL)
    assert {"bspline", "catmull_rom", "natural_cubic"} <= set(GRID)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="bspline"):
        create_basis("no_such_basis")


@pytest.mark.parametrize("name", NAMES)
def test_kanlinear_with_defaults_by_name_and_instance(name):
    x = inputs(5)
    for basis in (name, get_basis_class(name)()):
        layer = KANLinear(IN, OUT, basis=basis)
        y = layer(x)
        assert y.shape == (5, OUT) and torch.isfinite(y).all()
        assert layer.coef.shape == (OUT, IN, layer.basis.num_functions)


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name):
    basis = make(name)
    k = basis.num_functions
    assert isinstance(k, int) and k >= 1
    for shape in [(IN,), (5, IN), (2, 3, IN), (0, IN)]:
        x = torch.rand(shape) * 1.8 - 0.9
        out = basis(x)
        assert out.shape == (*shape, k), f"{shape} -> {tuple(out.shape)}"
        assert out.dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    cls = get_basis_class(name)
    assert cls.name == name
    assert isinstance(cls.domain, str) and len(cls.domain) > 20 and cls.domain != Basis.domain
    assert isinstance(cls.supports_local, bool) and isinstance(cls.supports_grid, bool)
    basis = make(name)
    assert f"in_features={IN}" in basis.extra_repr()
    assert name == basis.name and type(basis).__name__ in repr(basis)


@pytest.mark.parametrize("name", NAMES)
def test_dtype_and_device_factory_arguments(name):
    for basis in (create_basis(name, in_features=IN, out_features=OUT, dtype=torch.float64, device="cpu"),
                  make(name, dtype=torch.float64, device="cpu")):
        for key, t in tensors(basis).items():
            if t.is_floating_point():
                assert t.dtype == torch.float64, key
            assert t.device.type == "cpu", key
        assert basis(inputs(dtype=torch.float64)).dtype == torch.float64
    layer = KANLinear(IN, OUT, basis=name, dtype=torch.float64)
    assert all(t.dtype == torch.float64 for t in tensors(layer).values() if t.is_floating_point())


@pytest.mark.parametrize("name", NAMES)
def test_meta_construction_then_reset_parameters(name):
    ref = make(name)
    meta = make(name, device="meta")
    assert all(t.device.type == "meta" for t in tensors(meta).values())
    meta.to_empty(device="cpu")
    meta.reset_parameters()
    expected, got = tensors(ref), tensors(meta)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], msg=key)
    x = inputs()
    torch.testing.assert_close(meta(x), ref(x))
    layer = KANLinear(IN, OUT, basis=name, device="meta")
    layer.to_empty(device="cpu")
    layer.reset_parameters()
    assert torch.isfinite(layer(x)).all()


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_and_config_round_trip(name):
    src = make(name)
    perturb(src)
    config = json.loads(json.dumps(src.config()))  # JSON-safe
    dst = create_basis(name, **config).bind(IN, OUT)
    dst.load_state_dict(src.state_dict())
    x = inputs(spread=1.2)
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    # the same through a layer, as checkpoints do it
    layer = KANLinear(IN, OUT, basis=name)
    perturb(layer.basis, seed=2)
    copy = KANLinear(IN, OUT, basis=create_basis(name, **json.loads(json.dumps(layer.basis.config()))))
    copy.load_state_dict(layer.state_dict())
    torch.testing.assert_close(copy(x), layer(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_of_a_kan(name, tmp_path):
    from kanlab import KAN
    from kanlab.io import load, save

    model = KAN([2, 3, 1], basis=name)
    for layer in model.layers:
        perturb(layer.basis)
    save(model, tmp_path / "ckpt")
    again = load(tmp_path / "ckpt")
    x = torch.rand(9, 2) * 2 - 1
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda(name):
    layer = KANLinear(IN, OUT, basis=name, device="cuda")
    x = (10 * torch.randn(64, IN, device="cuda")).requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    assert out.device.type == "cuda" and torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    cpu = KANLinear(IN, OUT, basis=create_basis(name, **layer.basis.config()))
    cpu.load_state_dict({k: v.cpu() for k, v in layer.state_dict().items()})
    torch.testing.assert_close(out.detach().cpu(), cpu(x.detach().cpu()), rtol=1e-4, atol=1e-4)
    if layer.basis.supports_local:
        values, first = layer.basis.local(x.detach())
        assert values.device.type == "cuda" and first.device.type == "cuda"


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_inputs_and_basis_parameters(name):
    basis = make(name, dtype=torch.float64)
    names = [n for n, p in basis.named_parameters() if p.requires_grad]
    params = [p.detach().clone().requires_grad_(True) for n, p in basis.named_parameters() if p.requires_grad]
    x = inputs(3, seed=3, dtype=torch.float64, spread=0.85).requires_grad_(True)

    def fn(x, *ps):
        return torch.func.functional_call(basis, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_finite_for_wide_inputs(name):
    g = torch.Generator().manual_seed(4)
    x = 10 * torch.randn(256, IN, generator=g)
    x[:4] = torch.tensor([0.0, 1e3, -1e4, 1e6])[:, None]
    x.requires_grad_(True)
    layer = KANLinear(IN, OUT, basis=name)
    values = layer.basis(x)
    assert torch.isfinite(values).all()
    out = layer(x)
    assert torch.isfinite(out).all()
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    assert torch.isfinite(x.grad).all()
    for key, p in layer.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), key


@pytest.mark.parametrize("name", NAMES)
def test_eval_mode_batch_independence(name):
    layer = KANLinear(IN, OUT, basis=name).eval()
    x = inputs(64, spread=1.5)
    with torch.no_grad():
        torch.testing.assert_close(layer.basis(x[:7]), layer.basis(x)[:7], rtol=0, atol=0)
        torch.testing.assert_close(layer.basis(x[7:8]), layer.basis(x)[7:8], rtol=0, atol=0)
        torch.testing.assert_close(layer(x[:7]), layer(x)[:7], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", LOCAL)
def test_local_matches_forward(name):
    basis = make(name)
    x = torch.cat([inputs(64, spread=1.6), torch.tensor([[-1.0, 1.0, 0.0, 5.0]])])
    values, first = basis.local(x)
    k, width = basis.num_functions, values.shape[-1]
    assert values.shape[:-1] == x.shape and first.shape == x.shape and first.dtype == torch.int64
    assert width <= k and int(first.min()) >= 0 and int(first.max()) <= k - width
    idx = first[..., None] + torch.arange(width)
    dense = torch.zeros(*x.shape, k).scatter(-1, idx, values)
    torch.testing.assert_close(dense, basis(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", GRID)
def test_update_grid_and_refine_keep_the_functions(name):
    basis = make(name, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    # smooth edge functions: random coefficients, smoothed along K so they are resolvable on a new grid
    coef = torch.randn(OUT, IN, basis.num_functions, generator=g, dtype=torch.float64).cumsum(-1) * 0.3
    x = torch.rand(400, IN, generator=g, dtype=torch.float64) * 1.6 - 0.8
    before = contract(basis(x), coef)
    scale = before.abs().max()
    coef = basis.update_grid(x, coef)
    assert coef.shape == (OUT, IN, basis.num_functions)
    after = contract(basis(x), coef)
    assert (after - before).abs().max() < 0.05 * scale
    new_size = basis.grid_size * 2
    coef = basis.refine(new_size, coef)
    assert basis.grid_size == new_size and coef.shape == (OUT, IN, basis.num_functions)
    refined = contract(basis(x), coef)
    assert (refined - before).abs().max() < 0.05 * scale


@pytest.mark.parametrize("name", NAMES)
def test_clear_errors(name):
    with pytest.raises(TypeError, match=name):
        create_basis(name, no_such_option=1)
    unbound = create_basis(name)
    with pytest.raises(RuntimeError, match="not bound"):
        unbound(torch.zeros(2, IN))
    basis = make(name)
    with pytest.raises(ValueError, match="shape"):
        basis(torch.zeros(2, IN + 1))
    with pytest.raises(ValueError, match="in_features"):
        basis.bind(IN + 1, OUT)
