"""Bad input at the Python API — layers, models, bases, ``fit``, data sets, checkpoints: each gives one clear
error of the documented type whose message names the problem, raised at the entry point (not from inside
torch).
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kanlab
from kanlab import KAN, KANLinear, fit, make_dataset
from kanlab.train import Callback
from kanlab.train.checkpoint import Checkpoint

from .helpers import small_data, small_kan

D = small_data()
NAN_X = D["train_input"].clone()
NAN_X[3, 1] = float("nan")
INF_Y = D["train_label"].clone()
INF_Y[0, 0] = float("inf")


def _with(**changes):
    return {**D, **changes}


def _fit(data=None, model=None, **kw):
    return fit(model if model is not None else small_kan(), D if data is None else data, steps=kw.pop("steps", 1),
               **kw)


def _loader(*tensors, batch_size=8):
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size)


# (id, call, exception type, message pattern)
CASES = [
    # ---- layers, models, bases -----------------------------------------------------------------------------
    ("layer in_features 0", lambda: KANLinear(0, 3), ValueError, "in_features must be a positive integer"),
    ("layer out_features bool", lambda: KANLinear(2, True), ValueError, "out_features must be a positive integer"),
    ("layer unknown basis", lambda: KANLinear(2, 3, basis="bessel"), ValueError, "unknown basis 'bessel'; known"),
    ("layer basis not a name", lambda: KANLinear(2, 3, basis=3), TypeError, "registered name or a Basis"),
    ("layer grid_size 0", lambda: KANLinear(2, 3, grid_size=0), ValueError, "grid_size must be an integer >= 1"),
    ("layer order -1", lambda: KANLinear(2, 3, order=-1), ValueError, "order must be an integer >= 0"),
    ("layer order 1.5", lambda: KANLinear(2, 3, order=1.5), ValueError, "order must be an integer >= 0"),
    ("layer grid range reversed", lambda: KANLinear(2, 3, grid_range=(1, -1)), ValueError, "low < high"),
    ("layer grid range infinite", lambda: KANLinear(2, 3, grid_range=(0, float("inf"))), ValueError, "finite"),
    ("layer grid_eps out of [0,1]", lambda: KANLinear(2, 3, grid_eps=2.0), ValueError,
     r"grid_eps must lie in \[0, 1\]"),
    ("layer unknown extrapolation", lambda: KANLinear(2, 3, extrapolate="mirror"), ValueError, "extrapolate must be"),
    ("layer unknown option", lambda: KANLinear(2, 3, gridsize=5), TypeError, "bad argument for basis 'bspline'"),
    ("layer unknown activation", lambda: KANLinear(2, 3, base_activation="swish2"), ValueError,
     "unknown base_activation 'swish2'"),
    ("layer integer dtype", lambda: KANLinear(2, 3, dtype=torch.int64), TypeError,
     "dtype must be a floating-point torch.dtype"),
    ("rbf num_centers 0", lambda: KANLinear(2, 3, basis="rbf", num_centers=0), ValueError,
     "num_centers must be an integer >= 1"),
    ("rbf infinite range", lambda: KANLinear(2, 3, basis="rbf", grid_range=(0, float("inf"))), ValueError, "finite"),
    ("rbf width 0", lambda: KANLinear(2, 3, basis="rbf", width_scale=0.0), ValueError, "width_scale must be > 0"),
    ("forward numpy input", lambda: KANLinear(2, 3)(np.zeros((1, 2))), TypeError, "expects a torch.Tensor"),
    ("forward wrong feature count", lambda: KANLinear(2, 3)(torch.zeros(4, 5)), ValueError,
     r"expects input of shape \(\*, 2\), got \(4, 5\)"),
    ("forward 0-dim input", lambda: KANLinear(2, 3)(torch.tensor(1.0)), ValueError, r"got \(\)"),
    ("forward integer input", lambda: KANLinear(2, 3)(torch.zeros(1, 2, dtype=torch.long)), TypeError,
     "floating-point input"),
    ("forward dtype mismatch", lambda: KANLinear(2, 3)(torch.zeros(1, 2, dtype=torch.float64)), TypeError,
     "does not match the layer's dtype"),
    ("forward device mismatch", lambda: KANLinear(2, 3)(torch.zeros(1, 2, device="meta")), ValueError,
     "input is on meta but the layer is on cpu"),
    ("KAN one width", lambda: KAN([2]), ValueError, "at least two layer widths"),
    ("KAN widths as a string", lambda: KAN("2,3,1"), ValueError, "at least two layer widths"),
    ("KAN negative width", lambda: KAN([2, -1, 1]), ValueError, "width 1 must have at least one node"),
    ("KAN fractional width", lambda: KAN([2, 2.5, 1]), ValueError, r"width 1 must be an integer or \(n_sum, n_mult\)"),
    ("KAN multiplication on input", lambda: KAN([(2, 1), 1]), ValueError, "input layer\\) cannot have multiplication"),
    ("KAN forward wrong features", lambda: small_kan()(torch.zeros(3, 3, dtype=torch.float64)), ValueError,
     r"KAN expects input of shape \(\*, 2\)"),
    ("unknown model name", lambda: kanlab.create_model("transformer"), ValueError, "unknown model 'transformer'"),
    ("refine to grid 0", lambda: small_kan().refine(0), ValueError, "grid_size must be an integer >= 1"),
    ("grid update from one sample", lambda: small_kan().update_grid(torch.zeros(1, 2, dtype=torch.float64)),
     ValueError, "at least 2 samples"),
    ("grid update from NaN samples", lambda: small_kan().update_grid(torch.full((5, 2), float("nan"),
                                                                                dtype=torch.float64)),
     ValueError, "NaN or infinite samples"),
    # ---- fit: data ------------------------------------------------------------------------------------------
    ("fit data as a tuple", lambda: _fit((D["train_input"], D["train_label"])), TypeError,
     "got a tuple; pass \\{'train_input'"),
    ("fit data as a path", lambda: _fit("data.csv"), TypeError, "dict of tensors or a DataLoader, got str"),
    ("fit data missing labels", lambda: _fit({"train_input": D["train_input"]}), ValueError,
     r"missing \['train_label'\]"),
    ("fit numpy arrays", lambda: _fit(_with(train_input=D["train_input"].numpy())), TypeError, "must be torch tensors"),
    ("fit 3-D inputs", lambda: _fit(_with(train_input=D["train_input"][None])), ValueError,
     r"train_input must have shape \(N, n_features\)"),
    ("fit wrong feature count", lambda: _fit(_with(train_input=D["train_input"][:, :1])), ValueError,
     "has 1 features but the model expects 2"),
    ("fit label rows mismatch", lambda: _fit(_with(train_label=D["train_label"][:7])), ValueError,
     "train_label must have shape"),
    ("fit wrong output count", lambda: _fit(_with(train_label=D["train_label"].repeat(1, 2))), ValueError,
     "has 2 columns but the model has 1 outputs"),
    ("fit empty data", lambda: _fit(_with(train_input=D["train_input"][:0], train_label=D["train_label"][:0])),
     ValueError, "empty"),
    ("fit NaN in inputs", lambda: _fit(_with(train_input=NAN_X)), ValueError,
     r"train_input contains 1 NaN or infinite values \(first in row 3\)"),
    ("fit inf in labels", lambda: _fit(_with(train_label=INF_Y)), ValueError, "train_label contains 1 NaN or infinite"),
    ("fit NaN in test inputs", lambda: _fit(_with(test_input=NAN_X[:10])), ValueError, "test_input contains"),
    ("fit boolean labels", lambda: _fit(_with(train_label=D["train_label"] > 0)), TypeError,
     "train_label must hold numbers"),
    ("fit complex inputs", lambda: _fit(_with(train_input=D["train_input"].to(torch.complex128))), TypeError,
     "train_input must hold numbers"),
    ("fit loader of single tensors", lambda: _fit(_loader(D["train_input"])), TypeError,
     r"every DataLoader batch must be an \(inputs, labels\) pair"),
    ("fit empty loader", lambda: _fit(_loader(D["train_input"][:0], D["train_label"][:0])), ValueError,
     "yields no batches"),
    ("fit MLP of other width", lambda: _fit(model=kanlab.MLP([3, 4, 1], dtype=torch.float64)), ValueError,
     "has 2 features but the model expects 3"),
    # ---- fit: options ---------------------------------------------------------------------------------------
    ("fit model not a module", lambda: fit("kan", D), TypeError, "model must be a torch.nn.Module"),
    ("fit model without parameters", lambda: fit(torch.nn.Identity(), D), ValueError, "no parameters to train"),
    ("fit unknown optimizer", lambda: _fit(optimizer="rmsprop"), ValueError, "unknown optimizer 'rmsprop'"),
    ("fit negative steps", lambda: _fit(steps=-1), ValueError, "steps must be an integer >= 0"),
    ("fit fractional steps", lambda: _fit(steps=2.5), ValueError, "steps must be an integer >= 0"),
    ("fit lr 0", lambda: _fit(lr=0.0), ValueError, "lr must be a finite number > 0"),
    ("fit lr NaN", lambda: _fit(lr=float("nan")), ValueError, "lr must be a finite number > 0"),
    ("fit lr as text", lambda: _fit(lr="0.1"), ValueError, "lr must be a finite number > 0"),
    ("fit negative lamb", lambda: _fit(lamb=-0.1), ValueError, "lamb must be a finite number >= 0"),
    ("fit negative lamb_entropy", lambda: _fit(lamb=0.1, lamb_entropy=-2.0), ValueError,
     "lamb_entropy must be a finite number >= 0"),
    ("fit batch_size 0", lambda: _fit(batch_size=0), ValueError, "batch_size must be a positive integer"),
    ("fit grids with 0", lambda: _fit(grids=[0, 3]), ValueError, "grids must be a non-empty list of integers >= 1"),
    ("fit grids as text", lambda: _fit(grids="3,5"), ValueError, "grids must be a non-empty list"),
    ("fit grids on an MLP", lambda: _fit(model=kanlab.MLP([2, 4, 1], dtype=torch.float64), grids=[3, 5]),
     ValueError, "needs a model with refine"),
    ("fit negative update_grid_every", lambda: _fit(update_grid_every=-1), ValueError,
     "update_grid_every must be an integer >= 0"),
    ("fit seed as text", lambda: _fit(seed="abc"), ValueError, "seed must be a non-negative integer"),
    ("fit unknown on_divergence", lambda: _fit(on_divergence="ignore"), ValueError,
     "unknown on_divergence 'ignore'; choose one of: raise, reduce_lr"),
    ("fit loss_fn not callable", lambda: _fit(loss_fn="mse"), TypeError, "loss_fn must be a callable"),
    ("fit loss_fn not scalar", lambda: _fit(loss_fn=lambda p, t: (p - t) ** 2), ValueError,
     r"loss_fn must return a scalar tensor, got \(40, 1\)"),
    ("fit callback not a Callback", lambda: _fit(callbacks=[object()]), TypeError,
     "every callback must be a kanlab.train.Callback"),
    ("fit callbacks not a list", lambda: _fit(callbacks=Callback()), TypeError, "callbacks must be a list"),
    ("fit resume not a training state", lambda: _fit(resume={"epoch": 3}), ValueError,
     "resume must be a training state"),
    ("fit resume with another optimizer", lambda: _fit(resume={"step": 1, "stage": 0, "stage_step": 1,
                                                                "optimizer_name": "adam"}),
     ValueError, "trained with optimizer 'adam', not 'lbfgs'"),
    ("fit resume past the grid stages", lambda: _fit(resume={"step": 9, "stage": 3, "stage_step": 1}), ValueError,
     "checkpoint is at grid stage 3 but this fit has 1 stage"),
    ("Checkpoint every 0", lambda: Checkpoint("unused", every=0), ValueError, "every must be a positive integer"),
    # ---- data sets and checkpoints --------------------------------------------------------------------------
    ("formula syntax error", lambda: make_dataset("x**"), ValueError, r"cannot parse formula 'x\*\*'"),
    ("formula without variables", lambda: make_dataset("2+3"), ValueError, "has no variables"),
    ("formula NaN on its range", lambda: make_dataset("log(x)", ranges=(-1, 1)), ValueError,
     "NaN or infinite values on the given ranges"),
    ("range reversed", lambda: make_dataset("x", ranges={"x": (1, -1)}), ValueError, "low < high"),
    ("range of an unknown variable", lambda: make_dataset("x", ranges={"z": (0, 1)}), ValueError,
     r"unknown variables \['z'\]"),
    ("n_train 0", lambda: make_dataset("x", n_train=0), ValueError, "n_train must be a positive integer"),
    ("n_train fractional", lambda: make_dataset("x", n_train=2.5), ValueError, "n_train must be a positive integer"),
    ("negative noise", lambda: make_dataset("x", noise=-1.0), ValueError, "noise must be a finite number >= 0"),
    ("callable formula of wrong shape", lambda: make_dataset(lambda x: x[:3, 0], n_var=2), ValueError,
     r"must return a tensor of shape \(N,\) or \(N, n_out\)"),
    ("save a plain torch module", lambda: kanlab.save(torch.nn.Linear(2, 2), "unused-dir"), TypeError,
     "not a known kanlab model"),
    ("save over a file", lambda: kanlab.save(small_kan(), Path(__file__)), FileExistsError, "is not a directory"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    frames = traceback.extract_tb(info.value.__traceback__)
    assert "site-packages/torch" not in frames[-1].filename, f"raised inside torch: {frames[-1]}"


def test_resume_with_other_data_is_refused(tmp_path):
    model = small_kan()
    fit(model, D, steps=2, callbacks=[Checkpoint(tmp_path, every=1)])
    state = kanlab.io.load_train_state(tmp_path)
    other = _with(train_label=D["train_label"] * 2)
    with pytest.raises(ValueError, match="cannot resume: .*the training data differ"):
        fit(kanlab.load(tmp_path), other, steps=2, resume=state)
    with pytest.raises(ValueError, match="cannot resume: .*lr=None then, 0.5 now"):
        fit(kanlab.load(tmp_path), D, steps=2, lr=0.5, resume=state)
