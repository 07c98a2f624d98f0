"""Continual learning (examples/continual_learning.py): the KAN keeps earlier bumps, the MLP forgets."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "continual_learning.py"


def _example():
    spec = importlib.util.spec_from_file_location("continual_learning", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kan_remembers_earlier_regions_and_mlp_forgets():
    res = _example().run(grid_size=60, steps=8, n_per_region=80)
    kan, mlp = res["kan"], res["mlp"]
    assert abs(kan["n_params"] - mlp["n_params"]) <= 0.15 * kan["n_params"]  # same size
    # the KAN learned each region when it was shown...
    assert max(kan["after_each"]) < 0.05
    # ...but after the last phase only the KAN still knows regions 1-4
    assert kan["earlier_final"] < 0.05
    assert mlp["earlier_final"] > 10 * kan["earlier_final"]
    assert mlp["earlier_final"] > 0.2
    # the KAN's earlier regions are exactly as they were right after they were learned (local support)
    for k in range(4):
        assert abs(kan["final"][k] - kan["after_each"][k]) < 0.02
