"""Without a working compiler the C++ build fails, a warning is logged and every path still runs (pure PyTorch)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging, torch
    logging.basicConfig(level=logging.WARNING, format="%(name)s:%(message)s")
    from kanlab.kernels import extension_available, extension_error, ops
    from kanlab.layers.linear import KANLinear
    assert not extension_available(), "the extension should not build without a compiler"
    print("ERROR:", extension_error())
    layer = KANLinear(6, 4, grid_size=30, dtype=torch.float64)
    assert not ops.uses_extension(torch.zeros(1, dtype=torch.float64))
    x = (torch.rand(25, 6, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    outs = {}
    for kernel in ("reference", "dense", "local", "fused", "auto"):
        layer.kernel = kernel
        layer.zero_grad(set_to_none=True)
        x.grad = None
        y = layer(x)
        y.square().sum().backward()
        outs[kernel] = [y.detach(), x.grad.clone(), layer.coef.grad.clone(), layer.spline_scaler.grad.clone()]
    for kernel in ("dense", "local", "fused", "auto"):
        for a, b in zip(outs[kernel], outs["reference"]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    print("FALLBACK OK")
    """
)


def test_build_failure_falls_back_to_pure_pytorch(tmp_path: Path):
    env = dict(os.environ)
    env.pop("KANLAB_NO_EXTENSION", None)
    env.update(CXX=str(tmp_path / "no-such-compiler"), KANLAB_CACHE_DIR=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FALLBACK OK" in proc.stdout
    assert "C++ kernels unavailable" in proc.stderr  # logged once, at WARNING level
    assert not any((tmp_path / "cache").rglob("*.so"))  # nothing was built
