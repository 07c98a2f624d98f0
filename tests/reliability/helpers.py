"""Shared helpers of the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import kanlab
from kanlab.utils import seeded

SRC = str(Path(kanlab.__file__).parents[1])
HARNESS = str(Path(__file__).with_name("faulty_fit.py"))


def subprocess_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))


def run_faulty_fit(spec: str, args: list[str], *, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``kanlab <args>`` in a fresh process with the fault ``spec`` (see ``faulty_fit.py``)."""
    return subprocess.run([sys.executable, HARNESS, spec, *args], env=subprocess_env(), capture_output=True,
                          text=True, timeout=timeout)


def small_kan(seed: int = 0, widths=(2, 3, 1), **kw) -> kanlab.KAN:
    with seeded(seed):
        return kanlab.KAN(list(widths), grid_size=kw.pop("grid_size", 3), dtype=torch.float64, **kw)


def small_data():
    return kanlab.make_dataset("sin(x)*y", n_train=40, n_test=10, seed=0, dtype=torch.float64)


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
