"""Bad input to the scikit-learn estimators: hyperparameters are checked in ``fit`` (scikit-learn's rule), data
by ``validate_data``; each gives one error naming the problem."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from kanlab.sklearn import KANClassifier, KANRegressor

RNG = np.random.RandomState(0)
X = RNG.rand(20, 2)
Y = X.sum(axis=1)
LABELS = (Y > 1).astype(int)
X_NAN = X.copy()
X_NAN[3, 1] = np.nan
X_INF = X.copy()
X_INF[2, 0] = np.inf
Y_NAN = Y.copy()
Y_NAN[1] = np.nan


def reg(**kw):
    return KANRegressor(**{"hidden_layer_sizes": (2,), "steps": 1, "grid_size": 3, **kw})


def clf(**kw):
    return KANClassifier(**{"hidden_layer_sizes": (2,), "steps": 1, "grid_size": 3, **kw})


_FITTED = {}


def fitted():
    if "reg" not in _FITTED:
        _FITTED["reg"] = reg(random_state=0).fit(X, Y)
    return _FITTED["reg"]


CASES = [
    ("hidden width 0", lambda: reg(hidden_layer_sizes=(0,)).fit(X, Y), ValueError,
     "every entry of hidden_layer_sizes must be a positive integer"),
    ("hidden widths as text", lambda: reg(hidden_layer_sizes="5").fit(X, Y), ValueError, "hidden_layer_sizes"),
    ("unknown basis", lambda: reg(basis="bessel").fit(X, Y), ValueError, "unknown basis 'bessel'"),
    ("grid_size 0", lambda: reg(grid_size=0).fit(X, Y), ValueError, "grid_size must be a positive integer"),
    ("grids empty", lambda: reg(grids=[]).fit(X, Y), ValueError, "grids must be a non-empty list"),
    ("grids negative", lambda: reg(grids=[3, -1]).fit(X, Y), ValueError, "every entry of grids"),
    ("steps 0", lambda: reg(steps=0).fit(X, Y), ValueError, "steps must be a positive integer"),
    ("unknown optimizer", lambda: reg(optimizer="rmsprop").fit(X, Y), ValueError, "unknown optimizer 'rmsprop'"),
    ("lr negative", lambda: reg(lr=-1.0).fit(X, Y), ValueError, "lr must be a positive number"),
    ("lr NaN", lambda: reg(lr=float("nan")).fit(X, Y), ValueError, "lr must be a positive number"),
    ("batch_size 0", lambda: reg(batch_size=0).fit(X, Y), ValueError, "batch_size must be a positive integer"),
    ("lamb negative", lambda: reg(lamb=-1.0).fit(X, Y), ValueError, "lamb must be a number >= 0"),
    ("lamb NaN", lambda: reg(lamb=float("nan")).fit(X, Y), ValueError, "lamb must be a number >= 0"),
    ("update_grid_every negative", lambda: reg(update_grid_every=-1).fit(X, Y), ValueError, "update_grid_every"),
    ("validation_fraction 1.5", lambda: reg(early_stopping=True, validation_fraction=1.5).fit(X, Y), ValueError,
     r"validation_fraction must be a float in \(0, 1\)"),
    ("early_stopping as text", lambda: reg(early_stopping="yes").fit(X, Y), ValueError,
     "early_stopping must be True or False"),
    ("n_iter_no_change 0", lambda: reg(n_iter_no_change=0).fit(X, Y), ValueError, "n_iter_no_change must be"),
    ("tol negative", lambda: reg(tol=-1.0).fit(X, Y), ValueError, "tol must be a number >= 0"),
    ("dtype float16", lambda: reg(dtype="float16").fit(X, Y), ValueError, "dtype must be one of"),
    ("basis option misspelt", lambda: reg(basis_options={"ordr": 2}).fit(X, Y), TypeError,
     "bad argument for basis 'bspline'.*'ordr'"),
    ("basis option out of range", lambda: reg(basis_options={"order": -1}).fit(X, Y), ValueError,
     "order must be an integer >= 0"),
    ("basis options not a dict", lambda: reg(basis_options=[1]).fit(X, Y), ValueError,
     "basis_options must be a dict"),
    ("unknown activation", lambda: reg(base_activation="swish2").fit(X, Y), ValueError, "unknown base_activation"),
    ("random_state text", lambda: reg(random_state="abc").fit(X, Y), ValueError, "cannot be used to seed"),
    ("X with NaN", lambda: reg().fit(X_NAN, Y), ValueError, "Input X contains NaN"),
    ("X with inf", lambda: reg().fit(X_INF, Y), ValueError, "Input X contains infinity"),
    ("y with NaN", lambda: reg().fit(X, Y_NAN), ValueError, "Input y contains NaN"),
    ("X 1-D", lambda: reg().fit(X[:, 0], Y), ValueError, "Expected 2D array, got 1D array"),
    ("X 3-D", lambda: reg().fit(X[:, :, None], Y), ValueError, "Found array with dim 3"),
    ("X empty", lambda: reg().fit(X[:0], Y[:0]), ValueError, "0 sample"),
    ("X and y lengths differ", lambda: reg().fit(X, Y[:5]), ValueError, "inconsistent numbers of samples"),
    ("X of strings", lambda: reg().fit(np.array([["a", "b"]] * 20), Y), ValueError, "could not convert string"),
    ("X complex", lambda: reg().fit(X.astype(complex), Y), ValueError, "Complex data not supported"),
    ("early stopping on one sample", lambda: reg(early_stopping=True).fit(X[:1], Y[:1]), ValueError,
     "early_stopping needs at least 2 samples"),
    ("predict before fit", lambda: reg().predict(X), NotFittedError, "not fitted yet"),
    ("predict wrong feature count", lambda: fitted().predict(X[:, :1]), ValueError,
     "X has 1 features, but KANRegressor is expecting 2"),
    ("predict with NaN", lambda: fitted().predict(X_NAN), ValueError, "Input X contains NaN"),
    ("predict with inf", lambda: fitted().predict(X_INF), ValueError, "Input X contains infinity"),
    ("classifier on continuous y", lambda: clf().fit(X, Y), ValueError, "Unknown label type: continuous"),
    ("classifier on 2-D y", lambda: clf().fit(X, np.c_[LABELS, LABELS]), ValueError, "y should be a 1d array"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_estimator_input_gives_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_at_least_forty_distinct_bad_inputs_per_issue_7():
    from . import test_bad_inputs_api, test_bad_inputs_cli

    ids = {f"{where}: {case[0]}" for where, cases in (("estimators", CASES), ("api", test_bad_inputs_api.CASES),
                                                      ("cli", test_bad_inputs_cli.CASES)) for case in cases}
    assert len(ids) >= 40
