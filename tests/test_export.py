"""ONNX export with a dynamic batch dimension (onnxruntime parity on other batch sizes) and torch.export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kanlab
from kanlab.export import export_program, to_onnx
from kanlab.utils import seeded

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _trained_like_model(dtype):
    """A KAN with a multiplication node and non-uniform grids (after a grid update), as after training."""
    with seeded(0):
        model = kanlab.KAN([3, (2, 1), 2], grid_size=4, dtype=dtype)
        x = torch.rand(64, 3, dtype=dtype) * 1.6 - 0.8
    model.update_grid(x)
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_onnx_runtime_matches_torch_on_another_batch_size(tmp_path, dtype):
    model = _trained_like_model(dtype)
    path = to_onnx(model, tmp_path / "sub" / "kan.onnx")  # traced with a batch of 4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "input" and out.name == "output"
    assert isinstance(inp.shape[0], str) and inp.shape[1] == 3, "the batch dimension must be symbolic"
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for n in (1, 37):
        x = torch.rand(n, 3, dtype=dtype) * 2.4 - 1.2  # also outside the grid
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == (n, 2) and got.dtype == x.numpy().dtype
        np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=tol, atol=tol)


def test_export_program_has_dynamic_batch_and_matches():
    model = _trained_like_model(torch.float64)
    program = export_program(model)
    x = torch.rand(11, 3, dtype=torch.float64)
    torch.testing.assert_close(program.module()(x), model(x), rtol=0, atol=1e-14)


def test_export_rejects_a_one_row_example(tmp_path):
    model = kanlab.KAN([2, 2, 1])
    with pytest.raises(ValueError, match="at least 2 rows"):
        to_onnx(model, tmp_path / "m.onnx", example=torch.zeros(1, 2))
