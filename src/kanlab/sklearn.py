"""scikit-learn estimators: :class:`KANRegressor` and :class:`KANClassifier`.

They follow the scikit-learn conventions — hyperparameters only in ``__init__`` (validated in ``fit``), learned
attributes with a trailing underscore, ``random_state`` (never the global RNGs), ``n_features_in_`` /
``feature_names_in_`` — and pass ``sklearn.utils.estimator_checks.parametrize_with_checks``, so they work in
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``::

    from kanlab.sklearn import KANRegressor
    from sklearn.model_selection import cross_val_score
    cross_val_score(KANRegressor(hidden_layer_sizes=(5,), steps=20, random_state=0), X, y, cv=3)

Inputs are standardised internally (and regression targets too), so the spline grids see values of order one
whatever the units.  ``early_stopping=True`` holds out ``validation_fraction`` of the rows, stops after
``n_iter_no_change`` steps without an improvement of ``tol`` on them, and keeps the best weights.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .basis import get_basis_class
from .models.kan import KAN
from .train.callbacks import Callback, TrainState
from .train.loop import OPTIMIZERS, fit
from .utils import seeded

__all__ = ["KANRegressor", "KANClassifier", "expected_failed_checks"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """Checks of ``parametrize_with_checks`` that an estimator is known to fail, with the reason.

    Pass it as ``parametrize_with_checks([...], expected_failed_checks=expected_failed_checks)``.
    Both estimators currently pass every check, so this is empty; it is the one place to declare one.
    """
    return dict(getattr(estimator, "_expected_failed_checks", {}))


class _BestValidation(Callback):
    """Early stopping on the held-out rows (``state.test_loss``), keeping the best weights seen."""

    def __init__(self, patience: int, tol: float) -> None:
        self.patience, self.tol = patience, tol
        self.best = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0

    def on_stage_begin(self, state: TrainState) -> None:
        # a grid extension changes the parameter shapes: earlier snapshots cannot be restored any more
        if self.best_state is not None and any(
                v.shape != self.best_state[k].shape for k, v in state.model.state_dict().items()):
            self.best, self.best_state, self.wait = math.inf, None, 0

    def on_step_end(self, state: TrainState) -> None:
        value = state.test_loss
        if value < self.best - self.tol:
            self.best, self.wait = value, 0
            self.best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop = True
                state.history.stopped_early = True

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class _KANEstimator(BaseEstimator):
    """Shared fit/predict machinery; the subclasses define the targets and the loss."""

    def __init__(self, hidden_layer_sizes: Sequence[int] | None = None, *, basis: str = "bspline",
                 grid_size: int = 5, grids: Sequence[int] | None = None, basis_options: dict | None = None,
                 base_activation: str = "silu", steps: int = 50, optimizer: str = "lbfgs", lr: float | None = None,
                 batch_size: int | None = None, lamb: float = 0.0, update_grid_every: int | None = 5,
                 early_stopping: bool = False, validation_fraction: float = 0.1, n_iter_no_change: int = 10,
                 tol: float = 1e-4, dtype: str = "float64", random_state=None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.basis = basis
        self.grid_size = grid_size
        self.grids = grids
        self.basis_options = basis_options
        self.base_activation = base_activation
        self.steps = steps
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.lamb = lamb
        self.update_grid_every = update_grid_every
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dtype = dtype
        self.random_state = random_state

    # ---- validation of the hyperparameters (in fit, as scikit-learn asks) -----------------------------
    def _check_params(self) -> None:
        def positive_int(name: str, value: Any, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        if self.hidden_layer_sizes is not None:
            sizes = self.hidden_layer_sizes
            if isinstance(sizes, (int, np.integer)):
                sizes = (sizes,)
            for s in sizes:
                positive_int("every entry of hidden_layer_sizes", s)
        get_basis_class(self.basis)  # clear error for unknown names
        positive_int("grid_size", self.grid_size)
        if self.grids is not None:
            if not len(self.grids):
                raise ValueError("grids must be a non-empty list of grid sizes, or None")
            for g in self.grids:
                positive_int("every entry of grids", g)
        if self.basis_options is not None and not isinstance(self.basis_options, dict):
            raise ValueError(f"basis_options must be a dict or None, got {type(self.basis_options).__name__}")
        positive_int("steps", self.steps)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number or None, got {self.lr!r}")
        positive_int("batch_size", self.batch_size, allow_none=True)
        if not (isinstance(self.lamb, (int, float)) and self.lamb >= 0):
            raise ValueError(f"lamb must be a number >= 0, got {self.lamb!r}")
        if self.update_grid_every is not None and self.update_grid_every != 0:
            positive_int("update_grid_every", self.update_grid_every)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        if not (isinstance(self.validation_fraction, float) and 0.0 < self.validation_fraction < 1.0):
            raise ValueError(f"validation_fraction must be a float in (0, 1), got {self.validation_fraction!r}")
        positive_int("n_iter_no_change", self.n_iter_no_change)
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")

    # ---- the shared fit ---------------------------------------------------------------------------------
    def _basis_kwargs(self, x_std: np.ndarray) -> dict[str, Any]:
        params = inspect.signature(get_basis_class(self.basis).__init__).parameters
        kwargs: dict[str, Any] = {}
        if "grid_size" in params:
            kwargs["grid_size"] = int(self.grids[0] if self.grids else self.grid_size)
        if "grid_range" in params:
            lo, hi = (float(x_std.min()), float(x_std.max())) if x_std.size else (-1.0, 1.0)
            kwargs["grid_range"] = (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)
        kwargs.update(self.basis_options or {})
        return kwargs

    def _fit_targets(self, x: np.ndarray, targets: np.ndarray, loss_fn) -> None:
        """Standardise ``x``, build the KAN and train it on ``targets (N, n_out)`` (already encoded)."""
        dtype = _DTYPES[self.dtype]
        self.x_mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.x_scale_ = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(self.x_mean_)), scale, 1.0)
        x_std = (x - self.x_mean_) / self.x_scale_
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n = len(x_std)
        train_idx, val_idx = np.arange(n), np.arange(0)
        if self.early_stopping:
            n_val = int(math.ceil(self.validation_fraction * n))
            if n - n_val < 1 or n_val < 1:
                raise ValueError(f"early_stopping needs at least 2 samples (validation_fraction="
                                 f"{self.validation_fraction} of n_samples = {n})")
            perm = rng.permutation(n)
            train_idx, val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
        data = {"train_input": as_t(x_std[train_idx]), "train_label": as_t(targets[train_idx]),
                "test_input": as_t(x_std[val_idx]), "test_label": as_t(targets[val_idx])}
        hidden = self.hidden_layer_sizes
        if hidden is None:
            hidden = (2 * x.shape[1] + 1,)
        elif isinstance(hidden, (int, np.integer)):
            hidden = (int(hidden),)
        widths = [x.shape[1], *[int(h) for h in hidden], targets.shape[1]]
        with seeded(seed):
            model = KAN(widths, basis=self.basis, base_activation=self.base_activation, dtype=dtype,
                        **self._basis_kwargs(x_std[train_idx]))
        stopper = _BestValidation(self.n_iter_no_change, self.tol) if self.early_stopping else None
        grid_every = self.update_grid_every if len(train_idx) >= 2 else None
        uses_grid = model.layers[0].basis.supports_grid
        history = fit(model, data, steps=int(self.steps), optimizer=self.optimizer, lr=self.lr,
                      batch_size=None if self.batch_size is None else int(self.batch_size), lamb=float(self.lamb),
                      update_grid_every=grid_every, grids=list(self.grids) if self.grids and uses_grid else None,
                      loss_fn=loss_fn, callbacks=[stopper] if stopper else [], seed=seed, progress=False)
        if stopper is not None:
            stopper.restore(model)
            self.best_validation_loss_ = stopper.best
        model.eval()
        self.model_ = model
        self.history_ = {k: list(history[k]) for k in ("train_loss", "test_loss", "grid_size")}
        self.n_iter_ = len(history.train_loss)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        x_std = (x - self.x_mean_) / self.x_scale_
        dtype = next(self.model_.parameters()).dtype
        with torch.no_grad():
            out = self.model_(torch.as_tensor(np.ascontiguousarray(x_std), dtype=dtype))
        return out.double().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class KANRegressor(RegressorMixin, _KANEstimator):
    """Kolmogorov–Arnold network regressor (MSE on standardised targets; multi-output supported).

    Arguments:
        hidden_layer_sizes: hidden KAN widths, e.g. ``(5,)`` (default ``(2·n_features + 1,)``).
        basis: registered basis name (see :func:`kanlab.list_bases`).
        grid_size: grid intervals of grid-based bases.  grids: grid-extension schedule, e.g. ``(3, 5, 10)``.
        basis_options: further basis keyword arguments (e.g. ``{"order": 2}``).
        base_activation: residual function name.
        steps: optimisation steps per grid stage.  optimizer: ``"lbfgs"``, ``"adam"`` or ``"sgd"``.
        lr, batch_size, lamb, update_grid_every: as in :func:`kanlab.fit`.
        early_stopping, validation_fraction, n_iter_no_change, tol: hold-out early stopping (best weights kept).
        dtype: ``"float64"`` or ``"float32"``.  random_state: int, RandomState or None.

    Attributes:
        model_: the trained :class:`kanlab.KAN` (on standardised inputs/targets).  n_features_in_,
        feature_names_in_, n_outputs_, x_mean_, x_scale_, y_mean_, y_scale_, history_, n_iter_.
    """

    def fit(self, X, y) -> "KANRegressor":
        """Train on ``X (n_samples, n_features)`` and ``y (n_samples,)`` or ``(n_samples, n_outputs)``."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_was_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(self.y_mean_)), scale, 1.0)
        self._fit_targets(np.asarray(X, dtype=np.float64), (y2 - self.y_mean_) / self.y_scale_, None)
        return self

    def predict(self, X) -> np.ndarray:
        """``(n_samples,)`` predictions, or ``(n_samples, n_outputs)`` when fitted on 2-D targets."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        out = self._forward(np.asarray(X, dtype=np.float64)) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_was_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _soft_cross_entropy(logits: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, one_hot)


class KANClassifier(ClassifierMixin, _KANEstimator):
    """Kolmogorov–Arnold network classifier: one output per class, softmax cross-entropy.

    Arguments: as :class:`KANRegressor`.

    Attributes:
        classes_: the class labels.  model_, n_features_in_, feature_names_in_, x_mean_, x_scale_, history_,
        n_iter_: as :class:`KANRegressor`.
    """

    def fit(self, X, y) -> "KANClassifier":
        """Train on ``X (n_samples, n_features)`` and class labels ``y (n_samples,)``."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)
        n_classes = len(self.classes_)
        one_hot = np.eye(max(n_classes, 2))[codes]
        self._fit_targets(np.asarray(X, dtype=np.float64), one_hot, _soft_cross_entropy)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        logits = self._forward(np.asarray(X, dtype=np.float64))
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[:, : len(self.classes_)] if len(self.classes_) > 1 else np.ones((len(p), 1))

    def predict_log_proba(self, X) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class label for each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
