"""DeepOKAN / DeepONet: shapes, the branch·trunk formula, gradients, normalisation, checkpoints, training."""

import pytest
import torch

from kanlab.basis import list_bases
from kanlab.models import DeepOKAN, DeepONet, create_model, list_models
from kanlab.models.deeponet import relative_l2
from kanlab.train.operator import evaluate_operator, fit_operator
from kanlab.utils import seeded

M, D, P_FEAT = 6, 2, 4


def _models(dtype=torch.float32):
    with seeded(0):
        return [DeepOKAN([M, 5, P_FEAT], [D, 5, P_FEAT], num_centers=4, dtype=dtype),
                DeepONet([M, 7, P_FEAT], [D, 7, P_FEAT], dtype=dtype)]


def _randomise_normalisation(model):
    with torch.no_grad():
        model.branch_shift.copy_(torch.linspace(-0.3, 0.4, M))
        model.branch_scale.copy_(torch.linspace(0.5, 1.5, M))
        model.trunk_shift.copy_(torch.tensor([0.2, -0.1]))
        model.trunk_scale.copy_(torch.tensor([1.7, 0.8]))
        model.b0.fill_(0.37)


@pytest.mark.parametrize("model", _models(), ids=["deepokan", "deeponet"])
def test_shapes_shared_and_per_function_queries(model):
    u, y_shared, y_each = torch.randn(3, M), torch.rand(11, D), torch.rand(3, 11, D)
    assert model(u, y_shared).shape == (3, 11)
    assert model(u, y_each).shape == (3, 11)
    # the same points given per function give the same answer as the shared grid
    torch.testing.assert_close(model(u, y_shared.expand(3, -1, -1)), model(u, y_shared))
    # functions are independent: evaluating one at a time gives the same rows
    torch.testing.assert_close(torch.cat([model(u[i:i + 1], y_each[i:i + 1]) for i in range(3)]),
                               model(u, y_each))


@pytest.mark.parametrize("model", _models(), ids=["deepokan", "deeponet"])
def test_single_query_point_is_branch_dot_trunk_plus_b0(model):
    _randomise_normalisation(model)
    u, y = torch.randn(5, M), torch.rand(1, D)
    b = model.branch((u - model.branch_shift) * model.branch_scale)          # (5, p), networks called directly
    t = model.trunk((y - model.trunk_shift) * model.trunk_scale)             # (1, p)
    expected = torch.stack([torch.dot(b[i], t[0]) for i in range(5)])[:, None] + 0.37
    torch.testing.assert_close(model(u, y), expected)
    torch.testing.assert_close(model(u, y.expand(5, 1, D)), expected)


@pytest.mark.parametrize("basis", list_bases())
def test_deepokan_accepts_every_registered_basis(basis):
    with seeded(0):
        model = DeepOKAN([M, 3, P_FEAT], [D, 3, P_FEAT], basis=basis)
    assert isinstance(model.branch.layers[0].basis, type(model.trunk.layers[0].basis))
    out = model(torch.rand(2, M) * 2 - 1, torch.rand(4, D) * 2 - 1)
    assert out.shape == (2, 4) and torch.isfinite(out).all()


def test_gradcheck_inputs_and_parameters():
    with seeded(0):
        model = DeepOKAN([3, 2, 2], [D, 2, 2], num_centers=3, dtype=torch.float64)
    model.fit_normalization(torch.randn(8, 3, dtype=torch.float64), torch.rand(5, D, dtype=torch.float64))
    with torch.no_grad():
        model.b0.fill_(0.2)
    u = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, D, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: model(a, b), (u, y))
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

    def by_params(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (u.detach(), y.detach()))

    assert torch.autograd.gradcheck(by_params, params)


def test_fit_normalization_maps_data_ranges_onto_input_range():
    model = DeepOKAN([M, 3, P_FEAT], [D, 3, P_FEAT], num_centers=4, grid_range=(-2.0, 3.0))
    assert model.input_range == (-2.0, 3.0)
    u = torch.randn(50, M) * 4 + 7
    u[:, 0] = 0.0                                  # a constant sensor (a Dirichlet boundary) must not break it
    y = torch.stack([torch.rand(40) * 10, torch.rand(40) * 0.1 - 5], dim=1)
    model.fit_normalization(u, y)
    un = (u - model.branch_shift) * model.branch_scale
    yn = (y - model.trunk_shift) * model.trunk_scale
    assert un.min().item() == pytest.approx(-2.0, abs=1e-5) and un.max().item() == pytest.approx(3.0, abs=1e-5)
    torch.testing.assert_close(yn.min(0).values, torch.tensor([-2.0, -2.0]))
    torch.testing.assert_close(yn.max(0).values, torch.tensor([3.0, 3.0]))
    assert torch.allclose(model.branch_scale, model.branch_scale[0])  # one scale for all sensors


@pytest.mark.parametrize("idx", [0, 1], ids=["deepokan", "deeponet"])
def test_state_dict_and_checkpoint_round_trip(idx, tmp_path):
    from kanlab.io import load, save

    model = _models()[idx]
    model.fit_normalization(torch.randn(20, M) * 3, torch.rand(10, D) * 5)
    u, y = torch.randn(4, M), torch.rand(9, D)
    twin = type(model).from_config(model.config())
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(twin(u, y), model(u, y))
    assert {"branch_shift", "branch_scale", "trunk_shift", "trunk_scale", "b0"} <= set(model.state_dict())
    loaded = load(save(model, tmp_path / "ckpt"))
    assert type(loaded) is type(model)
    torch.testing.assert_close(loaded(u, y), model(u, y))


def test_registry_and_matching_parameter_counts():
    assert {"deepokan", "deeponet"} <= set(list_models())
    model = create_model("deepokan", branch_widths=[M, 3, P_FEAT], trunk_widths=[D, 3, P_FEAT], num_centers=5)
    assert isinstance(model, DeepOKAN)
    expected = model.branch.n_params + model.trunk.n_params + 1
    assert model.n_params == expected
    onet = DeepONet([M, 7, P_FEAT], [D, 7, P_FEAT])
    assert onet.n_params == ((M + 1) * 7 + (7 + 1) * P_FEAT) + ((D + 1) * 7 + (7 + 1) * P_FEAT) + 1


def test_bad_input_gives_clear_errors():
    model = _models()[0]
    with pytest.raises(ValueError, match="same number of features p"):
        DeepOKAN([M, 3, 4], [D, 3, 5])
    with pytest.raises(ValueError, match="branch_widths"):
        DeepONet([M], [D, 4])
    with pytest.raises(ValueError, match=r"u must have shape \(B, 6\)"):
        model(torch.randn(3, M + 1), torch.rand(4, D))
    with pytest.raises(ValueError, match=r"y must have shape \(P, 2\)"):
        model(torch.randn(3, M), torch.rand(4, D + 1))
    with pytest.raises(ValueError, match="same batch size"):
        model(torch.randn(3, M), torch.rand(2, 4, D))
    with pytest.raises(ValueError, match="unknown basis"):
        DeepOKAN([M, 3, 4], [D, 3, 4], basis="nope")


def test_relative_l2_against_numpy():
    np = pytest.importorskip("numpy")
    a, b = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    want = np.linalg.norm(a.numpy() - b.numpy(), axis=1) / np.linalg.norm(b.numpy(), axis=1)
    torch.testing.assert_close(relative_l2(a, b), torch.from_numpy(want))


def test_short_training_reduces_error():
    from kanlab.data.operators import antiderivative_operator

    data = antiderivative_operator(64, 32, n_sensors=M, n_query=10, seed=3)
    with seeded(1):
        model = DeepOKAN([M, 6, 6], [1, 6, 6], num_centers=5)
    model.fit_normalization(data["train_u"], data["train_y"])
    before = evaluate_operator(model, data["test_u"], data["test_y"], data["test_s"])
    hist = fit_operator(model, data, steps=150, lr=1e-2, batch_size=16, eval_every=50, seed=0)
    assert hist.eval_step == [50, 100, 150] and len(hist.train_mse) == 150
    assert hist.test_rel_l2[-1] < 0.5 * before


def test_example_and_benchmark_scripts_run(tmp_path, capsys):
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    example = runpy.run_path(str(root / "examples" / "deepokan_heat.py"), run_name="example")
    out = tmp_path / "fields.png"
    assert example["main"]([str(out), "--steps", "5"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bench = runpy.run_path(str(root / "benchmarks" / "operator_learning.py"), run_name="bench")
    assert bench["main"](["--quick", "--steps", "3", "--problems", "sine_wave"]) == 0
    table = capsys.readouterr().out
    assert "| sine_wave | DeepOKAN (rbf) |" in table and "| sine_wave | DeepONet (MLP, silu) |" in table


@pytest.mark.parametrize("idx", [0, 1], ids=["deepokan", "deeponet"])
def test_reset_parameters_reinitialises_weights_but_keeps_normalisation(idx):
    model = _models()[idx]
    _randomise_normalisation(model)
    u, y = torch.randn(3, M), torch.rand(4, D)
    before = model(u, y).detach().clone()
    shift = model.branch_shift.clone()
    model.reset_parameters()
    assert model.b0.item() == 0.0
    torch.testing.assert_close(model.branch_shift, shift)
    assert not torch.allclose(model(u, y), before)
