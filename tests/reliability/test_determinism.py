"""Determinism: the same seed gives bit-identical results run to run on CPU (models, fits with mini-batches and
grid extension, data sets, estimators, the CLI), another seed gives other results, and nothing that takes a
seed touches the global random number generators (torch, numpy, Python's ``random``)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

import kanlab
from kanlab.sklearn import KANRegressor
from kanlab.utils import seeded

from .helpers import weights_equal


def _global_states():
    return torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()


def _assert_untouched(before):
    torch_state, np_state, py_state = before
    assert torch.equal(torch_state, torch.random.get_rng_state()), "global torch RNG changed"
    assert np.array_equal(np_state, np.random.get_state()[1]), "global numpy RNG changed"
    assert py_state == random.getstate(), "Python's random changed"


def _train(seed: int, data_seed: int = 0):
    data = kanlab.make_dataset("sin(x)*y + z", n_train=60, n_test=20, seed=data_seed, dtype=torch.float64)
    with seeded(seed):
        model = kanlab.KAN([3, (2, 1), 1], grid_size=3, dtype=torch.float64)
    kanlab.fit(model, data, steps=6, optimizer="adam", batch_size=16, grids=[3, 5], update_grid_every=2, seed=seed)
    return model.state_dict()


def test_same_seed_same_weights_other_seed_other_weights():
    before = _global_states()
    a, b, c = _train(1), _train(1), _train(2)
    _assert_untouched(before)
    assert weights_equal(a, b)
    assert not weights_equal(a, c)


def test_data_sets_are_seeded_locally():
    before = _global_states()
    d1 = kanlab.make_dataset("x*y", n_train=30, n_test=10, seed=4, noise=0.1)
    d2 = kanlab.make_dataset("x*y", n_train=30, n_test=10, seed=4, noise=0.1)
    d3 = kanlab.make_dataset("x*y", n_train=30, n_test=10, seed=5, noise=0.1)
    _assert_untouched(before)
    assert all(torch.equal(d1[k], d2[k]) for k in ("train_input", "train_label", "test_input", "test_label"))
    assert not torch.equal(d1["train_input"], d3["train_input"])


def test_estimators_with_random_state_are_reproducible_and_leave_global_rngs_alone():
    x = np.random.RandomState(0).rand(40, 2)
    y = np.sin(3 * x[:, 0]) + x[:, 1]
    before = _global_states()
    kw = dict(hidden_layer_sizes=(3,), steps=3, grid_size=3, optimizer="adam", batch_size=8, early_stopping=True)
    p1 = KANRegressor(random_state=3, **kw).fit(x, y).predict(x)
    p2 = KANRegressor(random_state=3, **kw).fit(x, y).predict(x)
    p3 = KANRegressor(random_state=4, **kw).fit(x, y).predict(x)
    _assert_untouched(before)
    assert np.array_equal(p1, p2) and not np.array_equal(p1, p3)


def test_cli_fit_is_reproducible_and_leaves_global_rngs_alone(tmp_path):
    from kanlab.cli import main

    args = ["fit", "--formula", "x*y", "--width", "2,2,1", "--grids", "3,4", "--steps", "2", "--n-train", "30",
            "--n-test", "10", "--seed", "3"]
    before = _global_states()
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    _assert_untouched(before)
    a, b = kanlab.load(tmp_path / "a"), kanlab.load(tmp_path / "b")
    assert weights_equal(a.state_dict(), b.state_dict())
    ra, rb = (json.loads((tmp_path / d / "result.json").read_text()) for d in "ab")
    assert ra["history"] == rb["history"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "sgd"])
def test_divergence_handling_is_deterministic(optimizer):
    """The on_divergence="reduce_lr" retries are part of the trajectory: the same seed repeats them exactly."""
    data = kanlab.make_dataset("sin(x)*y", n_train=40, n_test=0, seed=0, dtype=torch.float64)

    def run():
        with seeded(0):
            model = kanlab.KAN([2, 3, 1], grid_size=3, dtype=torch.float64)
        lr = 100.0 if optimizer == "lbfgs" else 10.0
        loss = (lambda p, t: torch.mean((p - t) ** 2) if float(p.detach().abs().max()) < 3
                else torch.mean((p - t) ** 2) * float("nan"))
        kanlab.fit(model, data, steps=4, optimizer=optimizer, lr=lr, loss_fn=loss, on_divergence="reduce_lr",
                   update_grid_every=None, seed=0)
        return model.state_dict()

    assert weights_equal(run(), run())
