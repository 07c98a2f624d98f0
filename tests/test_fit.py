"""kanlab.fit: data formats, optimizers, regularisation, grid schedules, determinism, bad input."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kanlab
from kanlab.train import Callback, EarlyStopping, edge_scales
from kanlab.utils import seeded


@pytest.fixture
def data():
    return kanlab.make_dataset("x*y + sin(x)", n_train=200, n_test=100, seed=0, dtype=torch.float64)


def _model(seed=0, **kw):
    with seeded(seed):
        return kanlab.KAN([2, 3, 1], grid_size=5, dtype=torch.float64, **kw)


def _rmse(m, d):
    with torch.no_grad():
        return math.sqrt(float(torch.mean((m(d["test_input"]) - d["test_label"]) ** 2)))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_fit_reduces_test_error(data, optimizer):
    m = _model()
    before = _rmse(m, data)
    hist = kanlab.fit(m, data, steps=15 if optimizer == "lbfgs" else 150, optimizer=optimizer)
    assert len(hist.train_loss) == len(hist.test_loss) == len(hist.step)
    assert hist.test_loss[-1] == pytest.approx(_rmse(m, data), rel=1e-9)
    assert hist.test_loss[-1] < before / 5


def test_fit_with_dataloader(data):
    m = _model()
    loader = DataLoader(TensorDataset(data["train_input"], data["train_label"]), batch_size=50, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    test = DataLoader(TensorDataset(data["test_input"], data["test_label"]), batch_size=64)
    before = _rmse(m, data)
    hist = kanlab.fit(m, loader, test_data=test, steps=200, optimizer="adam")
    assert hist.test_loss[-1] < before / 3
    assert hist.test_loss[-1] == pytest.approx(_rmse(m, data), rel=1e-6)


def test_grid_schedule_refines_between_stages(data):
    m = _model()
    hist = kanlab.fit(m, data, steps=3, grids=[3, 6, 12])
    assert m.grid_size == 12 and m.layers[0].coef.shape[-1] == 15
    assert [r["grid_size"] for r in hist.stage_end()] == [3, 6, 12]
    assert sorted(set(hist.stage)) == [0, 1, 2]


def test_regularisation_makes_edges_sparse(data):
    plain, reg = _model(), _model()
    kanlab.fit(plain, data, steps=20, update_grid_every=None)
    kanlab.fit(reg, data, steps=20, lamb=0.01, update_grid_every=None)
    l1 = lambda m: sum(float(s.sum()) for s in edge_scales(m, data["train_input"]))  # noqa: E731
    assert l1(reg) < 0.8 * l1(plain)


def test_same_seed_same_result_and_global_rng_untouched(data):
    state = torch.random.get_rng_state()
    results = []
    for _ in range(2):
        m = _model(seed=5)
        kanlab.fit(m, data, steps=30, optimizer="adam", batch_size=32, seed=1)
        results.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert torch.equal(results[0], results[1])
    assert torch.equal(state, torch.random.get_rng_state())


def test_callbacks_and_early_stopping(data):
    seen = []

    class Record(Callback):
        def on_step_end(self, state):
            seen.append(state.step)

    m = _model()
    hist = kanlab.fit(m, data, steps=100, optimizer="sgd", lr=1e-9, update_grid_every=None,
                      callbacks=[Record(), EarlyStopping(patience=3, min_delta=1e-4)])
    assert hist.stopped_early and len(seen) < 100 and seen == list(range(1, len(seen) + 1))


def test_fit_plain_module(data):
    mlp = kanlab.MLP([2, 8, 1], dtype=torch.float64)
    hist = kanlab.fit(mlp, data, steps=5)
    assert math.isfinite(hist.test_loss[-1])
    with pytest.raises(ValueError, match="refine"):
        kanlab.fit(mlp, data, steps=1, grids=[3, 5])


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda d: d.update(train_input=d["train_input"][:, :1]), ValueError, "features but the model expects 2"),
    (lambda d: d.update(train_label=d["train_label"][:10]), ValueError, "train_label must have shape"),
    (lambda d: d["train_input"].__setitem__((0, 0), float("nan")), ValueError, "NaN or infinite"),
    (lambda d: d["test_label"].__setitem__((3, 0), float("inf")), ValueError, "NaN or infinite"),
    (lambda d: d.update(train_input=d["train_input"][:0], train_label=d["train_label"][:0]), ValueError, "empty"),
    (lambda d: d.pop("train_label"), ValueError, "missing"),
    (lambda d: d.update(train_input=d["train_input"].numpy()), TypeError, "torch tensors"),
])
def test_bad_data_is_a_clear_error(data, mutate, exc, match):
    d = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in data.items()}
    mutate(d)
    with pytest.raises(exc, match=match):
        kanlab.fit(_model(), d, steps=1)


@pytest.mark.parametrize("kw,match", [
    ({"optimizer": "rmsprop"}, "unknown optimizer"), ({"steps": -1}, "steps"), ({"lr": -1.0}, "lr"),
    ({"lamb": -1.0}, "lamb"), ({"batch_size": 0}, "batch_size"), ({"grids": [0, 3]}, "grids"),
])
def test_bad_options_are_clear_errors(data, kw, match):
    with pytest.raises(ValueError, match=match):
        kanlab.fit(_model(), data, **kw)


def test_divergence_restores_last_finite_state(data):
    m = _model()
    kanlab.fit(m, data, steps=2)
    snapshot = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(kanlab.TrainingDivergedError, match="non-finite"):
        kanlab.fit(m, data, steps=5, optimizer="sgd", lr=1e30, update_grid_every=None)
    assert all(torch.isfinite(v).all() for v in m.state_dict().values())
    x = data["test_input"]
    assert torch.isfinite(m(x)).all()
    assert snapshot.keys() == m.state_dict().keys()
