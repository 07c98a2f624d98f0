"""The Triton kernels of the local contraction against the pure-PyTorch reference.

On a GPU they run directly.  Without one they run in Triton's interpreter on CPU tensors, which must be
switched on (``TRITON_INTERPRET=1``) before Triton is first imported: so the first test below re-runs this
file in a fresh process with that setting.  Skipped when Triton is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kanlab.kernels import torch_impl, triton_local

pytest.importorskip("triton")

DIRECT = torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


def test_kernels_in_the_interpreter_of_a_fresh_process():
    if DIRECT:
        pytest.skip("this process runs the tests below directly")
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(Path(__file__).resolve()), "-k", "not fresh_process"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


@pytest.fixture
def device():
    if not DIRECT:
        pytest.skip("runs in the interpreter of a fresh process (see the first test)")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _case(dtype, device, n=37, n_in=5, n_out=7, order=3, grid_size=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    m = grid_size + 2 * order + 1
    grid = torch.linspace(-1.6, 1.6, m, dtype=torch.float64).expand(n_in, -1).contiguous()
    x = torch.rand(n, n_in, dtype=torch.float64, generator=gen) * 3.4 - 1.7  # some outside the knot span
    v, first = torch_impl.bspline_local(x, grid, order, 0)
    coef = torch.randn(n_out, n_in, m - order - 1, dtype=torch.float64, generator=gen)
    scale = torch.rand(n_out, n_in, dtype=torch.float64, generator=gen)
    scale[0, 1] = 0.0  # a pruned edge
    grad = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
    return [t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
            for t in (v, first, coef, scale, grad)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradients_match_the_reference(device, dtype):
    v, first, coef, scale, grad = _case(dtype, device)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(triton_local.local_forward(v, first, coef, scale),
                               torch_impl.local_forward(v, first, coef, scale), **tol)
    for need_v, need_w in [(True, True), (True, False), (False, True)]:
        got = triton_local.local_backward(grad, v, first, coef, scale, need_v, need_w)
        want = torch_impl.local_backward(grad, v, first, coef, scale, need_v, need_w)
        for name, a, b in zip(("g_v", "g_coef", "g_scale"), got, want):
            assert a.shape == b.shape, name
            torch.testing.assert_close(a, b, **tol, msg=name)


def test_blocks_larger_than_the_problem_and_empty_batches(device):
    v, first, coef, scale, grad = _case(torch.float64, device, n=3, n_in=2, n_out=1, order=1, grid_size=3)
    torch.testing.assert_close(triton_local.local_forward(v, first, coef, scale),
                               torch_impl.local_forward(v, first, coef, scale))
    empty = [t[:0] for t in (v, first)]
    assert triton_local.local_forward(empty[0], empty[1], coef, scale).shape == (0, 1)
    g_v, g_coef, g_scale = triton_local.local_backward(grad[:0], empty[0], empty[1], coef, scale, True, True)
    assert g_v.shape == (0, 2, 2) and not g_coef.any() and not g_scale.any()


def test_bad_shapes_are_named(device):
    v, first, coef, scale, _ = _case(torch.float64, device)
    with pytest.raises(ValueError, match="scale"):
        triton_local.local_forward(v, first, coef, scale[:, :2])
