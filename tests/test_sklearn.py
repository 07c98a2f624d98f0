"""scikit-learn estimators: the library's own estimator checks, and use in Pipeline / GridSearchCV / CV."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from kanlab.sklearn import KANClassifier, KANRegressor, expected_failed_checks

TINY = dict(hidden_layer_sizes=(3,), grid_size=3, steps=3)


@parametrize_with_checks([KANRegressor(**TINY), KANClassifier(**TINY)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    torch.set_num_threads(1)
    check(estimator)


def _regression(n=160, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 2)) * [1.0, 100.0] + [0.0, 500.0]  # very different units
    y = np.sin(X[:, 0]) + ((X[:, 1] - 500.0) / 100.0) ** 2
    return X, y


def test_regressor_fits_a_smooth_function_and_is_reproducible():
    X, y = _regression()
    a = KANRegressor(steps=15, random_state=3).fit(X[:120], y[:120])
    b = KANRegressor(steps=15, random_state=3).fit(X[:120], y[:120])
    assert a.score(X[120:], y[120:]) > 0.99
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.n_features_in_ == 2 and a.model_.widths == [2, 5, 1] and a.n_iter_ == 15
    state = torch.random.get_rng_state()
    KANRegressor(steps=2, random_state=5).fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), state), "fit must not touch the global torch RNG"


def test_regressor_multi_output_matches_targets_shape():
    X, y = _regression()
    Y = np.stack([y, -2 * y + 3], axis=1)
    est = KANRegressor(**TINY, random_state=0).fit(X, Y)
    pred = est.predict(X)
    assert pred.shape == (len(X), 2) and est.n_outputs_ == 2
    assert est.score(X, Y) > 0.9


def test_early_stopping_keeps_best_validation_weights():
    X, y = _regression(200)
    y = y + np.random.RandomState(1).normal(scale=0.3, size=len(y))
    est = KANRegressor(hidden_layer_sizes=(8,), grid_size=10, steps=80, optimizer="adam", lr=0.05,
                       early_stopping=True, validation_fraction=0.25, n_iter_no_change=5, random_state=0)
    est.fit(X, y)
    val = np.asarray(est.history_["test_loss"])
    assert est.n_iter_ < 80, "training should have stopped early"
    assert np.isfinite(val).all() and est.best_validation_loss_ == pytest.approx(val.min())
    assert val[-1] > val.min(), "the last steps did not improve, so the kept weights are not the last ones"


def test_classifier_in_pipeline_grid_search_and_cross_val():
    X, y = make_classification(n_samples=150, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[y]
    pipe = make_pipeline(StandardScaler(), KANClassifier(**TINY, random_state=0))
    scores = cross_val_score(pipe, X, labels, cv=3)
    assert scores.mean() > 0.8
    search = GridSearchCV(pipe, {"kanclassifier__grid_size": [2, 4]}, cv=2).fit(X, labels)
    assert search.best_params_["kanclassifier__grid_size"] in (2, 4)
    proba = search.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(search.predict(X)) <= set(labels)
    again = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(again.predict_proba(X), search.best_estimator_.predict_proba(X))


@pytest.mark.parametrize("bad, message", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"optimizer": "nope"}, "unknown optimizer"),
    ({"basis": "nope"}, "unknown basis"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"dtype": "int8"}, "dtype must be one of"),
])
def test_bad_hyperparameters_raise_in_fit_with_a_clear_message(bad, message):
    X, y = _regression(20)
    est = KANRegressor(**{**TINY, **bad})  # constructing never raises
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
