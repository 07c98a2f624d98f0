"""``torch.compile(fullgraph=True)`` of a KAN for every registered basis: no graph breaks, same numbers.

New basis families are picked up from the registry (``list_bases()``) with no new test code.
"""

from __future__ import annotations

import pytest
import torch

import kanlab
from kanlab.utils import seeded


def _model_and_input(basis: str, dtype=torch.float64):
    with seeded(0):
        model = kanlab.KAN([2, (2, 1), 1], basis=basis, dtype=dtype)
    x = torch.linspace(-0.9, 0.9, 14, dtype=dtype).reshape(7, 2)
    return model, x


def _forward_backward(module, model, x):
    model.zero_grad(set_to_none=True)
    out = module(x)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("basis", kanlab.list_bases())
def test_compile_fullgraph_matches_eager(basis, backend):
    torch._dynamo.reset()
    model, x = _model_and_input(basis)
    ref_out, ref_grads = _forward_backward(model, model, x)
    compiled = torch.compile(model, fullgraph=True, backend=backend)  # raises on any graph break
    out, grads = _forward_backward(compiled, model, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-9, atol=1e-12, msg=name)
    x2 = torch.rand(5, 2, dtype=x.dtype) * 2 - 1  # another batch size: recompiles without breaking
    torch.testing.assert_close(compiled(x2), model(x2), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_compile_inductor_bspline():
    """The real compiler (C++ kernels on CPU), inference only to keep the suite fast."""
    torch._dynamo.reset()
    model, x = _model_and_input("bspline", torch.float32)
    with torch.no_grad():
        out = torch.compile(model, fullgraph=True, backend="inductor")(x)
        torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-6)
