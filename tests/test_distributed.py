"""Data-parallel training (DDP, gloo, 2 CPU processes): replicas stay identical and match one process.

The workers run in processes started with ``torch.multiprocessing.spawn``; the CLI test launches ``torchrun``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import kanlab
from kanlab.utils import seeded

WORLD = 2
SETTINGS = {
    # few LBFGS steps: strong-Wolfe line searches amplify the rounding differences of a sharded gradient sum
    "lbfgs_full_batch": dict(steps=2, grids=[3, 5], optimizer="lbfgs", update_grid_every=2),
    "adam_minibatch": dict(steps=6, grids=[3, 4], optimizer="adam", batch_size=40, update_grid_every=3, seed=7),
}


def _data():
    return kanlab.make_dataset("sin(pi*x)*y", n_train=120, n_test=40, seed=3, dtype=torch.float64)


def _model():
    with seeded(0):
        return kanlab.KAN([2, 3, 1], grid_size=3, dtype=torch.float64)


def _loader(data, batch_size):
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(data["train_input"], data["train_label"]), batch_size=batch_size, shuffle=False)


def _train(setting: str):
    data = _data()
    model = _model()
    if setting == "loader":
        hist = kanlab.fit(model, _loader(data, 40), steps=5, grids=[3, 4], optimizer="adam", update_grid_every=3)
    else:
        hist = kanlab.fit(model, data, **SETTINGS[setting])
    return model, hist


ALL = [*SETTINGS, "loader"]


def _worker(rank: int, init: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        out = {}
        for setting in ALL:
            model, hist = _train(setting)
            out[setting] = {"state": model.state_dict(), "train_loss": hist.train_loss}
        try:  # dict data must be the global data set, the same on every rank
            kanlab.fit(kanlab.KAN([2, 2, 1]), kanlab.make_dataset("x*y", n_train=20, n_test=0, seed=rank), steps=1)
        except ValueError as err:
            out["different_data_error"] = str(err)
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_replicas_identical_and_equal_to_single_process(tmp_path):
    """Two gloo processes: LBFGS full batch, Adam mini-batches and a DataLoader (DistributedSampler), each with
    grid updates and a grid extension.  Replicas must be bit-identical and match one process to 1e-5."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=((tmp_path / "rendezvous").as_uri(), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for setting in ALL:
        states = [r[setting]["state"] for r in results]
        assert states[0].keys() == states[1].keys()
        for key in states[0]:
            assert torch.equal(states[0][key], states[1][key]), f"{setting}: replicas differ in {key}"
        single, hist = _train(setting)
        ref = single.state_dict()
        assert any(k.endswith("grid") for k in ref)
        for key, value in ref.items():
            torch.testing.assert_close(states[0][key], value, rtol=1e-5, atol=1e-5,
                                       msg=lambda m, k=key: f"{setting}: {k} differs from one process: {m}")
        # the loss history agrees to 1e-4 relative (LBFGS line searches amplify reduction-order rounding)
        torch.testing.assert_close(torch.tensor(results[0][setting]["train_loss"]), torch.tensor(hist.train_loss),
                                   rtol=1e-4, atol=1e-7)
    for r in range(WORLD):
        assert "every rank must pass the same data" in results[r]["different_data_error"]


def test_single_process_context_is_identity():
    from kanlab.train.distributed import is_main_process, parallel_context

    par = parallel_context()
    x = torch.randn(5, 2)
    assert not par.active and is_main_process()
    assert par.shard(x, x)[0] is x and par.gather(x) is x and par.weight() == 1.0


def test_torchrun_cli_only_rank0_writes(tmp_path):
    """``torchrun --standalone --nproc_per_node=2 -m kanlab fit ...`` trains data-parallel; rank 0 writes."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(kanlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    # no warm-up/sparsity stage: the sparsity regulariser is computed per shard under DDP (not bit-equal)
    args = ["fit", "--formula", "x*y", "--n-train", "100", "--n-test", "50", "--width", "2,2,1", "--grids", "3",
            "--warmup-steps", "0", "--no-sparsify", "--steps", "3", "--out", str(tmp_path / "run"), "--json", str(tmp_path / "out.json")]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "kanlab", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("train RMSE") == 1, proc.stdout  # only rank 0 reports
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["world_size"] == 2
    ddp_model = kanlab.load(tmp_path / "run")
    from kanlab.cli import main

    assert main([*args[:-4], "--out", str(tmp_path / "single")]) == 0  # the same job in this one process
    ref = kanlab.load(tmp_path / "single")
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(ddp_model(x), ref(x), rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "run", "single"]
