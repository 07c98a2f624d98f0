"""Time-series generators, windowing, chronological splits and the train-only scaler."""

import math

import numpy as np
import pytest
import torch

from kanlab.data import (SeriesScaler, TimeSeries, chronological_split, mackey_glass, mackey_glass_series,
                         make_forecasting_data, make_multivariate_series, make_windows)


@pytest.fixture(scope="module")
def series():
    return make_multivariate_series(1500, seed=7)


def test_multivariate_columns_and_determinism(series):
    assert series.names == ["y", "ar1", "ar2", "noise1", "noise2", "season_sin", "season_cos", "event"]
    assert series.n_known == 3 and series.n_observed == 5 and series.target == 0
    again = make_multivariate_series(1500, seed=7)
    np.testing.assert_array_equal(again.values, series.values)
    assert not np.allclose(make_multivariate_series(1500, seed=8).values, series.values)
    t = np.arange(1500)
    np.testing.assert_allclose(series.values[:, 5], np.sin(2 * np.pi * t / 24), atol=1e-12)
    np.testing.assert_allclose(series.values[:, 6], np.cos(2 * np.pi * t / 24), atol=1e-12)


def test_event_is_a_schedule_of_fixed_length_runs(series):
    e = series.values[:, -1]
    assert set(np.unique(e)) == {0.0, 1.0}
    edges = np.diff(np.concatenate([[0.0], e, [0.0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    assert (lengths[:-1] == 4).all() and lengths[-1] <= 4  # the last run may be cut by the series end
    gaps = starts[1:] - ends[:-1]
    assert gaps.min() >= 20 and gaps.max() <= 60


def test_target_recurrence_recovered_by_least_squares(series):
    """Regressing y_t on the documented regressors recovers the documented coefficients."""
    v = series.values
    y, ar, s, c, e = v[:, 0], v[:, 1:3], v[:, 5], v[:, 6], v[:, 7]
    k = np.arange(2, len(y))
    design = np.column_stack([y[k - 1], s[k], s[k] * c[k], np.tanh(ar[k - 1, 0]), ar[k - 2, 1], e[k]])
    coef, *_ = np.linalg.lstsq(design, y[k], rcond=None)
    np.testing.assert_allclose(coef, [0.6, 0.5, 0.3, 0.5, 0.25, 1.5], atol=0.03)
    residual = y[k] - design @ coef
    assert abs(residual.std() - 0.1) < 0.01
    phi, *_ = np.linalg.lstsq(ar[:-1, :1], ar[1:, 0], rcond=None)
    assert abs(phi[0] - 0.9) < 0.03


def test_mackey_glass_rk4_converges_and_matches_fine_euler():
    coarse = mackey_glass(60, dt=0.1)
    fine = mackey_glass(60, dt=0.05)
    np.testing.assert_allclose(coarse, fine, atol=1e-4)

    # independent formulation: forward Euler with a much smaller step
    tau, dt = 17.0, 0.002
    lag, every = int(round(tau / dt)), int(round(1 / dt))
    x = np.full(60 * every + lag + 1, 1.2)
    for i in range(lag, len(x) - 1):
        xd = x[i - lag]
        x[i + 1] = x[i] + dt * (0.2 * xd / (1 + xd ** 10) - 0.1 * x[i])
    np.testing.assert_allclose(coarse, x[lag::every][:60], atol=5e-3)


def test_mackey_glass_equilibrium_and_chaotic_range():
    # short delay: the equilibrium x* = (beta/gamma - 1)^(1/n) = 1 is stable
    settled = mackey_glass(400, tau=2.0)
    assert abs(settled[-1] - 1.0) < 1e-6
    chaotic = mackey_glass_series(1000).values[:, 0]
    assert 0.2 < chaotic.min() < 0.6 and 1.2 < chaotic.max() < 1.5
    assert chaotic.std() > 0.15
    with pytest.raises(ValueError, match="tau / dt"):
        mackey_glass(10, tau=17.05, dt=0.1)


def test_windows_hold_the_right_rows_and_mask_future_observed():
    values = np.arange(40 * 4, dtype=float).reshape(40, 4)  # 2 observed + 2 known columns
    x, y = make_windows(values, 5, 3, target=1, n_known=2)
    assert x.shape == (40 - 8 + 1, 8, 4) and y.shape == (33, 3)
    w = 10
    np.testing.assert_array_equal(x[w, :5].numpy(), values[w:w + 5])
    np.testing.assert_array_equal(x[w, 5:, 2:].numpy(), values[w + 5:w + 8, 2:])  # known future kept
    assert torch.isnan(x[:, 5:, :2]).all()  # observed future masked
    assert not torch.isnan(x[:, :5]).any()
    np.testing.assert_array_equal(y[w].numpy(), values[w + 5:w + 8, 1])
    x2, _ = make_windows(values, 5, 3, target=1, n_known=2, mask_future_observed=False)
    np.testing.assert_array_equal(x2[w].numpy(), values[w:w + 8])
    with pytest.raises(ValueError, match="no window fits"):
        make_windows(values[:6], 5, 3)


def test_chronological_split():
    parts = chronological_split(1000, (0.7, 0.15, 0.15))
    assert parts == [(0, 700), (700, 850), (850, 1000)]
    with pytest.raises(ValueError, match="sum to 1"):
        chronological_split(100, (0.5, 0.2))


def test_forecasting_data_scaler_uses_train_split_only(series):
    data = make_forecasting_data(series, 24, 6)
    (lo, hi), (vlo, vhi), (tlo, thi) = data["segments"]
    assert lo == 0 and hi == vlo and vhi == tlo and thi == len(series)
    np.testing.assert_allclose(data["scaler"].mean, series.values[:hi].mean(0))
    np.testing.assert_allclose(data["scaler"].std, series.values[:hi].std(0))
    # changing the test segment changes neither the scaler nor the training windows
    other = TimeSeries(series.values.copy(), series.names, series.n_known, series.target)
    other.values[tlo:, 0] += 100.0
    data2 = make_forecasting_data(other, 24, 6)
    np.testing.assert_array_equal(data2["scaler"].mean, data["scaler"].mean)
    torch.testing.assert_close(data2["train_input"], data["train_input"], equal_nan=True)
    assert not torch.allclose(data2["test_label"], data["test_label"])
    # labels belong to their own segment: the first label row is the segment start (after the first lookback),
    # the last is the segment's last row
    scaled_y = data["scaler"].transform(series.values)[:, 0]
    for name, (a, b) in zip(("train", "val", "test"), data["segments"]):
        labels = data[f"{name}_label"].double().numpy()
        first = max(a, 24)
        assert len(labels) == b - first - 6 + 1
        np.testing.assert_allclose(labels[0], scaled_y[first:first + 6], atol=1e-5)
        np.testing.assert_allclose(labels[-1], scaled_y[b - 6:b], atol=1e-5)
    back = data["scaler"].inverse_target(data["test_label"], 0)
    np.testing.assert_allclose(back[0], series.values[tlo:tlo + 6, 0], atol=1e-4)


def test_scaler_round_trip_and_errors():
    rng = np.random.default_rng(0)
    v = rng.normal(3.0, 2.0, size=(100, 3))
    v[:, 2] = 5.0  # constant column: centred only, never divided by zero
    sc = SeriesScaler().fit(v)
    z = sc.transform(v)
    assert np.allclose(z[:, :2].mean(0), 0) and np.allclose(z[:, :2].std(0), 1) and np.allclose(z[:, 2], 0)
    np.testing.assert_allclose(sc.inverse_transform(z), v)
    with pytest.raises(RuntimeError, match="not fitted"):
        SeriesScaler().transform(v)


def test_timeseries_validation():
    with pytest.raises(ValueError, match="NaN"):
        TimeSeries(np.array([[1.0], [math.nan]]), ["x"])
    with pytest.raises(ValueError, match="n_known"):
        TimeSeries(np.zeros((5, 2)), ["a", "b"], n_known=2)
    with pytest.raises(ValueError, match="target"):
        TimeSeries(np.zeros((5, 2)), ["a", "b"], n_known=1, target=1)
