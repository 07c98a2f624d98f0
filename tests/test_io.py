"""Checkpoints: directory round trips (bit-identical in a new process), resuming from train_state.pt,
format migrations and module versions, extra state, torch.save and state_dict round trips, corruption."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import kanlab
from kanlab.io import (CONFIG_NAME, TRAIN_STATE_NAME, WEIGHTS_NAME, CheckpointError, load, load_train_state,
                       read_config, save)
from kanlab.layers import KANLinear
from kanlab.train.checkpoint import Checkpoint
from kanlab.utils import seeded

FIT = dict(steps=4, grids=[3, 5], optimizer="lbfgs", update_grid_every=2, seed=1)


def _data():
    return kanlab.make_dataset("x*y + sin(z)", n_train=80, n_test=20, seed=0, dtype=torch.float64)


def _new_kan():
    with seeded(0):
        return kanlab.KAN([3, (2, 1), 1], grid_size=3, dtype=torch.float64)


def _models() -> dict[str, torch.nn.Module]:
    """Models exercising every kind of state: adapted and refined grids, masks, multiplication nodes, a pruned
    width, a non-default basis, an MLP."""
    data = _data()
    trained = _new_kan()
    kanlab.fit(trained, data, steps=2, grids=[3, 6], update_grid_every=1, seed=0)
    with torch.no_grad():
        trained.layers[0].mask[1, 2] = 0.0
        trained.layers[1].symbolic_mask[0, 1] = 1.0
    with seeded(1):
        pruned = kanlab.KAN([3, 1, 1], grid_size=4, dtype=torch.float32)
        rbf = kanlab.KAN([3, 2, 1], basis="rbf", num_centers=6, dtype=torch.float64)
        mlp = kanlab.MLP([3, 7, 1], activation="tanh", dtype=torch.float64)
    return {"trained": trained, "pruned": pruned, "rbf": rbf, "mlp": mlp}


def _run_python(code: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(kanlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


NEW_PROCESS = """
    import sys, torch, kanlab
    from pathlib import Path
    from kanlab.io import load, load_train_state
    root = Path(sys.argv[1])
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("resume")):
        m = load(d)
        x = torch.load(d / "x.pt")
        torch.save({"y": m(x).detach(), "names": m.names}, d / "y_new.pt")
    # resume an interrupted fit and save the final weights
    d = root / "resume"
    model = load(d)
    model.train()
    data = kanlab.make_dataset("x*y + sin(z)", n_train=80, n_test=20, seed=0, dtype=torch.float64)
    kanlab.fit(model, data, steps=4, grids=[3, 5], optimizer=sys.argv[2], update_grid_every=2, seed=1,
               batch_size=int(sys.argv[3]) or None, resume=load_train_state(d))
    torch.save(model.state_dict(), root / "resumed.pt")
"""


@pytest.mark.parametrize("optimizer, batch_size", [("lbfgs", 0), ("adam", 16)])
def test_round_trips_and_resume_are_bit_identical_in_a_new_process(tmp_path, optimizer, batch_size):
    if optimizer == "lbfgs":
        for name, model in _models().items():
            x = (torch.rand(9, 3) * 2.2 - 1.1).to(next(model.parameters()).dtype)
            save(model, tmp_path / name, names=["x", "y", "z"])
            torch.save(x, tmp_path / name / "x.pt")
            torch.save(model(x).detach(), tmp_path / name / "y_ref.pt")
    data = _data()
    fit_kw = dict(FIT, optimizer=optimizer, batch_size=batch_size or None)
    straight = _new_kan()
    kanlab.fit(straight, data, **fit_kw)

    class StopAt(kanlab.train.Callback):  # an "interruption" after step 6 (stage 1, step 2)
        def on_step_end(self, state):
            state.stop = state.step == 6

    interrupted = _new_kan()
    kanlab.fit(interrupted, data, callbacks=[Checkpoint(tmp_path / "resume", every=3), StopAt()], **fit_kw)
    assert load_train_state(tmp_path / "resume")["step"] == 6
    _run_python(NEW_PROCESS, str(tmp_path), optimizer, str(batch_size))
    resumed = torch.load(tmp_path / "resumed.pt")
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed[key], value), f"resumed {key} differs from the uninterrupted run"
    for d in (p for p in tmp_path.iterdir() if p.is_dir() and p.name != "resume"):
        new = torch.load(d / "y_new.pt")
        assert torch.equal(new["y"], torch.load(d / "y_ref.pt")), d.name
        assert new["names"] == ["x", "y", "z"]


def test_config_records_architecture_and_versions(tmp_path):
    model = _models()["trained"]
    save(model, tmp_path, extra={"target": "f"})
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["format_version"] == 2 and config["kind"] == "kan" and config["target"] == "f"
    assert config["model"]["widths"] == [3, [2, 1], 1]
    assert [spec["basis_kwargs"]["grid_size"] for spec in config["model"]["layers"]] == [6, 6]
    assert config["module_versions"]["layers.0"] == KANLinear._version
    with pytest.raises(ValueError, match="overwrite"):
        save(model, tmp_path, extra={"kind": "mlp"})


def test_state_dict_and_torch_save_round_trips():
    for name, model in _models().items():
        x = (torch.rand(5, 3) * 2 - 1).to(next(model.parameters()).dtype)
        buf = io.BytesIO()
        torch.save(model, buf)  # the whole module pickles: no lambdas anywhere
        buf.seek(0)
        again = torch.load(buf, weights_only=False)
        assert torch.equal(again(x), model(x)), name
        if hasattr(model, "from_config"):
            fresh = type(model).from_config(model.config(), dtype=next(model.parameters()).dtype)
            fresh.load_state_dict(model.state_dict())
            assert torch.equal(fresh(x), model(x)), name


def test_extra_state_of_layers_round_trips_through_config_json(tmp_path, monkeypatch):
    """Symbolic edge assignments live in KANLinear.get_extra_state (JSON-safe) and must survive save/load."""
    def get_extra_state(self):
        return getattr(self, "_symbolic", {"edges": []})

    def set_extra_state(self, state):
        self._symbolic = state

    monkeypatch.setattr(KANLinear, "get_extra_state", get_extra_state, raising=False)
    monkeypatch.setattr(KANLinear, "set_extra_state", set_extra_state, raising=False)
    model = _new_kan()
    model.layers[1]._symbolic = {"edges": [{"out": 0, "in": 1, "fn": "sin", "affine": [1.0, 2.0, 0.5, -1.0]}]}
    save(model, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["extra_state"]["layers.1._extra_state"]["edges"][0]["fn"] == "sin"
    again = load(tmp_path)
    assert again.layers[1]._symbolic == model.layers[1]._symbolic
    assert again.layers[0]._symbolic == {"edges": []}


def test_old_format_is_migrated_and_module_versions_reach_the_modules(tmp_path, monkeypatch):
    model = _new_kan()
    save(model, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    del config["module_versions"]
    config["format_version"] = 1  # what kanlab 0.1 wrote
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    assert read_config(tmp_path)["module_versions"] == {}
    x = torch.rand(4, 3, dtype=torch.float64)
    assert torch.equal(load(tmp_path)(x), model(x))

    seen = {}
    original = KANLinear._load_from_state_dict

    def spy(self, state_dict, prefix, local_metadata, *args, **kwargs):
        seen[prefix] = local_metadata.get("version")
        return original(self, state_dict, prefix, local_metadata, *args, **kwargs)

    monkeypatch.setattr(KANLinear, "_version", 7, raising=False)
    save(_new_kan(), tmp_path / "v7")
    monkeypatch.setattr(KANLinear, "_load_from_state_dict", spy)
    load(tmp_path / "v7")
    assert seen == {"layers.0.": 7, "layers.1.": 7}


@pytest.mark.parametrize("damage, message", [
    ("flip_weight_byte", "content hash does not match"),
    ("truncate_weights", "corrupt or truncated"),
    ("newer_format", "newer than this kanlab"),
    ("not_json", "not valid JSON"),
    ("truncate_train_state", "training state"),
    ("no_config", "config.json is missing"),
])
def test_damaged_checkpoints_are_rejected(tmp_path, damage, message):
    model = _new_kan()
    save(model, tmp_path, train_state={"step": 0, "stage": 0, "stage_step": 0})
    weights, config, state = tmp_path / WEIGHTS_NAME, tmp_path / CONFIG_NAME, tmp_path / TRAIN_STATE_NAME
    if damage == "flip_weight_byte":
        blob = bytearray(weights.read_bytes())
        blob[-3] ^= 0x10
        weights.write_bytes(bytes(blob))
    elif damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "newer_format":
        config.write_text(json.dumps({**json.loads(config.read_text()), "format_version": 99}))
    elif damage == "not_json":
        config.write_text("{ not json")
    elif damage == "truncate_train_state":
        state.write_bytes(state.read_bytes()[:200])
    elif damage == "no_config":
        config.unlink()
    with pytest.raises(CheckpointError, match=message):
        load(tmp_path)
        load_train_state(tmp_path)


def test_cli_checkpoint_and_resume_flags(tmp_path):
    from kanlab.cli import main

    args = ["fit", "--formula", "x*y", "--n-train", "40", "--n-test", "10", "--width", "2,2,1", "--grids", "3",
            "--steps", "2"]
    assert main([*args, "--checkpoint-every", "1"]) == 2  # needs --out
    assert main([*args, "--resume", str(tmp_path)]) == 2  # nothing to resume from
    assert main([*args, "--checkpoint-every", "1", "--out", str(tmp_path / "run")]) == 0
    state = load_train_state(tmp_path / "run")
    assert state["step"] == 2 and len(state["history"]["train_loss"]) == 2
    assert main([*args, "--resume", str(tmp_path / "run"), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["history"]["step"] == [0, 1]


def test_checkpoint_is_not_written_while_an_exception_unwinds(tmp_path):
    class Boom(kanlab.train.Callback):
        def on_step_end(self, state):
            if state.step == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kanlab.fit(_new_kan(), _data(), steps=5, callbacks=[Checkpoint(tmp_path, every=2), Boom()])
    assert load_train_state(tmp_path)["step"] == 2
