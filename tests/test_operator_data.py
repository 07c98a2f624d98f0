"""Operator data generators checked against their analytic definitions with independent numpy/scipy oracles."""

import math

import numpy as np
import pytest
import torch

from kanlab.data import antiderivative_operator, heat_operator, sine_wave_operator
from kanlab.data.operators import (OPERATOR_PROBLEMS, fourier_antiderivative, fourier_series, heat_solution,
                                   random_fourier_coefficients)

F64 = torch.float64


@pytest.mark.parametrize("name", sorted(OPERATOR_PROBLEMS))
@pytest.mark.parametrize("query", ["grid", "random"])
def test_keys_shapes_dtypes_and_seeding(name, query):
    make = OPERATOR_PROBLEMS[name]
    d = make(12, 5, query=query, seed=4)
    d2 = make(12, 5, query=query, seed=4)
    d3 = make(12, 5, query=query, seed=5)
    n_sensors = d["sensors"].shape[0]
    dim = 2 if name == "heat" else 1
    for split, n in (("train", 12), ("test", 5)):
        u, y, s = d[f"{split}_u"], d[f"{split}_y"], d[f"{split}_s"]
        assert u.shape == (n, n_sensors) and u.dtype == torch.float32
        n_query = s.shape[1]
        assert s.shape == (n, n_query)
        assert y.shape == ((n_query, dim) if query == "grid" else (n, n_query, dim))
        assert torch.isfinite(u).all() and torch.isfinite(s).all()
        torch.testing.assert_close(d[f"{split}_s"], d2[f"{split}_s"])
        assert not torch.allclose(d[f"{split}_u"], d3[f"{split}_u"])
    assert not torch.allclose(d["train_u"][:5], d["test_u"])  # train and test draw different functions
    assert make(3, 2, dtype=torch.float64)["train_s"].dtype == torch.float64


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_train"):
        antiderivative_operator(0, 5)
    with pytest.raises(ValueError, match="query"):
        heat_operator(5, 5, query="mesh")
    with pytest.raises(ValueError, match="alpha"):
        heat_operator(5, 5, alpha=-1.0)
    with pytest.raises(ValueError, match="length_scale"):
        antiderivative_operator(5, 5, length_scale=0.0)


def test_sine_wave_matches_its_definition():
    d = sine_wave_operator(20, 4, n_sensors=9, n_query=17, query="random", seed=1, dtype=torch.float64)
    coef = d["train_coef"].numpy()
    a, f, phi = coef[:, :1], coef[:, 1:2], coef[:, 2:3]
    assert (a >= 0.5).all() and (a <= 1.5).all() and (f >= 0.5).all() and (f <= 2.0).all()
    assert (phi >= 0).all() and (phi < 2 * math.pi).all()
    x = d["sensors"].numpy()
    np.testing.assert_allclose(d["train_u"].numpy(), a * np.sin(2 * np.pi * f * x + phi), atol=1e-12)
    y = d["train_y"][..., 0].numpy()
    np.testing.assert_allclose(d["train_s"].numpy(), a * np.sin(2 * np.pi * f * y + phi), atol=1e-12)


def test_antiderivative_derivative_equals_the_input_function():
    coef = random_fourier_coefficients(6, 8, 0.1, torch.Generator().manual_seed(0))
    x = torch.linspace(0.05, 0.95, 37, dtype=F64)
    h = 1e-5
    deriv = (fourier_antiderivative(coef, x + h) - fourier_antiderivative(coef, x - h)) / (2 * h)
    torch.testing.assert_close(deriv, fourier_series(coef, x), atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(fourier_antiderivative(coef, torch.zeros(1, dtype=F64)), torch.zeros(6, 1, dtype=F64))


@pytest.mark.parametrize("query", ["grid", "random"])
def test_antiderivative_data_matches_numerical_integration(query):
    from scipy.integrate import cumulative_trapezoid

    d = antiderivative_operator(5, 2, n_sensors=20, n_query=15, length_scale=0.1, query=query, seed=2,
                                dtype=torch.float64)
    coef = d["train_coef"].numpy()

    def u_np(x):  # independent numpy evaluation of the Fourier series
        k = np.arange(1, (coef.shape[1] - 1) // 2 + 1)
        arg = 2 * np.pi * x[:, None] * k
        return coef[:, :1] + coef[:, 1::2] @ np.cos(arg).T + coef[:, 2::2] @ np.sin(arg).T

    np.testing.assert_allclose(d["train_u"].numpy(), u_np(d["sensors"].numpy()), atol=1e-12)
    fine = np.linspace(0.0, 1.0, 20001)
    integral = cumulative_trapezoid(u_np(fine), fine, axis=1, initial=0.0)
    y = d["train_y"][..., 0].numpy()
    y = np.broadcast_to(y, d["train_s"].shape)
    want = np.stack([np.interp(y[i], fine, integral[i]) for i in range(5)])
    np.testing.assert_allclose(d["train_s"].numpy(), want, atol=1e-6)


def test_heat_solution_satisfies_the_pde_boundaries_and_initial_condition():
    alpha = 0.07
    coef = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(3))
    x = torch.rand(4, 30, dtype=F64, generator=torch.Generator().manual_seed(4)) * 0.9 + 0.05
    t = torch.rand(4, 30, dtype=F64, generator=torch.Generator().manual_seed(5)) * 0.8 + 0.1
    h = 1e-4
    u_t = (heat_solution(coef, x, t + h, alpha) - heat_solution(coef, x, t - h, alpha)) / (2 * h)
    u_xx = (heat_solution(coef, x + h, t, alpha) - 2 * heat_solution(coef, x, t, alpha)
            + heat_solution(coef, x - h, t, alpha)) / h ** 2
    torch.testing.assert_close(u_t, alpha * u_xx, atol=1e-5, rtol=1e-5)
    ends = torch.tensor([0.0, 1.0], dtype=F64)
    for tt in (0.0, 0.3):
        torch.testing.assert_close(heat_solution(coef, ends, torch.full((2,), tt, dtype=F64), alpha),
                                   torch.zeros(4, 2, dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("query", ["grid", "random"])
def test_heat_data_matches_the_sine_series_solution(query):
    d = heat_operator(6, 2, n_sensors=11, n_x=7, n_t=5, alpha=0.05, t_max=0.5, query=query, seed=6,
                      dtype=torch.float64)
    c = d["train_coef"].numpy()                                  # (N, M)
    n = np.arange(1, c.shape[1] + 1)
    xs = d["sensors"].numpy()
    np.testing.assert_allclose(d["train_u"].numpy(), c @ np.sin(np.pi * np.outer(n, xs)), atol=1e-12)
    y = np.broadcast_to(d["train_y"].numpy(), (6, 35, 2))
    assert (y[..., 0] >= 0).all() and (y[..., 0] <= 1).all() and (y[..., 1] >= 0).all() and (y[..., 1] <= 0.5).all()
    want = np.einsum("im,ipm->ip", c, np.exp(-0.05 * (np.pi * n) ** 2 * y[..., 1:]) * np.sin(np.pi * n * y[..., :1]))
    np.testing.assert_allclose(d["train_s"].numpy(), want, atol=1e-12)
    if query == "grid":  # x-major grid; the t = 0 column is the initial condition
        s = d["train_s"].numpy().reshape(6, 7, 5)
        np.testing.assert_allclose(s[:, :, 0], c @ np.sin(np.pi * np.outer(n, np.linspace(0, 1, 7))), atol=1e-12)
