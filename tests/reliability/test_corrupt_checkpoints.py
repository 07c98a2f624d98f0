"""Every way a checkpoint directory can break gives a clear :class:`CheckpointError` — never a wrong model.

Each damage below is applied to a fresh, valid checkpoint (weights, config and training state); loading it
(``load`` and, where the training state is damaged, ``load_train_state``) must raise with a message that names
the problem.  The CLI turns the same errors into exit status 2 with one line.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import pytest
import torch

from kanlab.atomic import COMMIT_NAME
from kanlab.io import (CONFIG_NAME, TRAIN_STATE_NAME, WEIGHTS_NAME, CheckpointError, load, load_train_state,
                       save)

from .helpers import small_kan

STATE = {"step": 3, "stage": 0, "stage_step": 3}
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


def _edit_config(d: Path, fn) -> None:
    config = json.loads((d / CONFIG_NAME).read_text())
    fn(config)
    (d / CONFIG_NAME).write_text(json.dumps(config, indent=2))


def _flip(path: Path, offset: int, bit: int = 0x04) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= bit
    path.write_bytes(bytes(blob))


def _header_length(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[:8], "little")


def _foreign_checkpoint(tmp: Path) -> Path:
    other = tmp / "other"
    save(small_kan(seed=9), other, train_state=STATE)
    return other


class _Evil:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def _evil_train_state(d: Path) -> None:
    buf = io.BytesIO()
    pickle.dump({"payload": _Evil()}, buf)
    (d / TRAIN_STATE_NAME).write_bytes(buf.getvalue())


def _newer_train_state(d: Path) -> None:
    from kanlab.io import _train_state_bytes

    (d / TRAIN_STATE_NAME).write_bytes(_train_state_bytes({**STATE, "train_state_version": 99}, None))


# (damage, which loader, message) — the loader is "load" (model) or "state" (training state)
DAMAGES = {
    "weights truncated": (lambda d, t: (d / WEIGHTS_NAME).write_bytes((d / WEIGHTS_NAME).read_bytes()[:300]),
                          "load", "corrupt or truncated"),
    "weights empty": (lambda d, t: (d / WEIGHTS_NAME).write_bytes(b""), "load", "corrupt or truncated"),
    "weights bit flipped (tensor data)": (lambda d, t: _flip(d / WEIGHTS_NAME, -5), "load",
                                          "content hash does not match"),
    "weights bit flipped (header)": (lambda d, t: _flip(d / WEIGHTS_NAME, 8 + _header_length(d / WEIGHTS_NAME) // 2,
                                                        0x01),
                                     "load", "corrupt"),
    "weights of another checkpoint": (lambda d, t: (d / WEIGHTS_NAME).write_bytes(
        (_foreign_checkpoint(t) / WEIGHTS_NAME).read_bytes()), "load", "content hash does not match"),
    "weights missing": (lambda d, t: (d / WEIGHTS_NAME).unlink(), "load", "model.safetensors is missing"),
    "config missing": (lambda d, t: (d / CONFIG_NAME).unlink(), "load", "config.json is missing"),
    "config truncated": (lambda d, t: (d / CONFIG_NAME).write_text((d / CONFIG_NAME).read_text()[:50]), "load",
                         "not valid JSON"),
    "config not utf-8": (lambda d, t: (d / CONFIG_NAME).write_bytes(b"\xff\xfe{}"), "load", "not valid JSON"),
    "config is a JSON list": (lambda d, t: (d / CONFIG_NAME).write_text("[1, 2]"), "load",
                              "not a kanlab checkpoint config"),
    "config edited: activation": (lambda d, t: _edit_config(d, lambda c: c["model"].update(base_activation="tanh")),
                                  "load", "not the config written with these weights"),
    "config edited: grid range": (lambda d, t: _edit_config(
        d, lambda c: c["model"]["layers"][0]["basis_kwargs"].update(grid_range=[-5.0, 5.0])),
        "load", "not the config written with these weights"),
    "config edited: column names": (lambda d, t: _edit_config(d, lambda c: c.update(names=["b", "a"])), "load",
                                    "not the config written with these weights"),
    "config edited: dtype": (lambda d, t: _edit_config(d, lambda c: c.update(dtype="float32")), "load",
                             "not the config written with these weights"),
    "config of another checkpoint": (lambda d, t: (d / CONFIG_NAME).write_bytes(
        (_foreign_checkpoint(t) / CONFIG_NAME).read_bytes()), "load", "content hash does not match"),
    "config from a newer kanlab": (lambda d, t: _edit_config(d, lambda c: c.update(format_version=99)), "load",
                                   "newer than this kanlab supports"),
    "config format_version not an integer": (lambda d, t: _edit_config(d, lambda c: c.update(format_version="2")),
                                             "load", "format_version must be a positive integer"),
    "commit record damaged": (lambda d, t: (d / COMMIT_NAME).write_text("{garbage"), "load",
                              "commit record of an interrupted save is damaged"),
    "train state missing": (lambda d, t: (d / TRAIN_STATE_NAME).unlink(), "state", "has no train_state.pt"),
    "train state truncated": (lambda d, t: (d / TRAIN_STATE_NAME).write_bytes(
        (d / TRAIN_STATE_NAME).read_bytes()[:400]), "state", "cannot read the training state"),
    "train state bit flipped": (lambda d, t: _flip(d / TRAIN_STATE_NAME, -900), "state", "training state"),
    "train state of another checkpoint": (lambda d, t: (d / TRAIN_STATE_NAME).write_bytes(
        (_foreign_checkpoint(t) / TRAIN_STATE_NAME).read_bytes()), "state", "belongs to other weights"),
    "train state from a newer kanlab": (lambda d, t: _newer_train_state(d), "state", "not supported"),
    "train state is a pickle with code": (lambda d, t: _evil_train_state(d), "state",
                                          "cannot read the training state"),
}


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    d = tmp_path / "ckpt"
    save(small_kan(seed=1), d, names=["a", "b"], train_state=STATE)
    load(d), load_train_state(d)  # valid before the damage
    return d


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_checkpoint_is_rejected(checkpoint, tmp_path, capsys, damage):
    fn, which, message = DAMAGES[damage]
    fn(checkpoint, tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load(checkpoint) if which == "load" else load_train_state(checkpoint)
    assert "code ran" not in capsys.readouterr().out


def test_a_save_without_training_state_makes_the_old_one_unresumable(checkpoint):
    """``save`` without ``train_state`` over a resumable checkpoint: the stale train_state.pt is refused."""
    save(small_kan(seed=5), checkpoint)
    load(checkpoint)
    with pytest.raises(CheckpointError, match="belongs to other weights"):
        load_train_state(checkpoint)


@pytest.mark.parametrize("what, message", [
    ("missing", "is not a directory"), ("file", "is a file, not a directory"),
    ("empty", "config.json is missing"), ("unrelated", "config.json is missing"),
    ("json", "not a kanlab checkpoint config"),
])
def test_directories_that_are_not_checkpoints(tmp_path, what, message):
    d = tmp_path / "x"
    if what == "file":
        d.write_text("hello")
    elif what != "missing":
        d.mkdir()
    if what == "unrelated":
        (d / "model.safetensors").write_bytes(b"\0" * 64)
        (d / "notes.txt").write_text("hi")
    if what == "json":
        (d / CONFIG_NAME).write_text('{"name": "some other tool"}')
    with pytest.raises(CheckpointError, match=message):
        load(d)


@pytest.mark.parametrize("damage", ["weights bit flipped (tensor data)", "config edited: activation",
                                    "config from a newer kanlab"])
def test_cli_reports_a_damaged_checkpoint_in_one_line(checkpoint, tmp_path, capsys, damage):
    from kanlab.cli import main

    DAMAGES[damage][0](checkpoint, tmp_path)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n0.1,0.2\n")
    assert main(["predict", str(checkpoint), "--data", str(csv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and DAMAGES[damage][2] in err


def test_legacy_checkpoint_without_config_hash_still_loads(tmp_path):
    """Checkpoints written before the config hash existed (no ``config_sha256`` in the weights' metadata)."""
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    model = small_kan(seed=3)
    save(model, tmp_path)
    tensors = st_load((tmp_path / WEIGHTS_NAME).read_bytes())
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    (tmp_path / WEIGHTS_NAME).write_bytes(st_save(tensors, metadata={"sha256": config["weights_sha256"]}))
    x = torch.rand(4, 2, dtype=torch.float64)
    assert torch.equal(load(tmp_path)(x), model(x))
