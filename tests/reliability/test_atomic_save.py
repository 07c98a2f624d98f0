"""A checkpoint save is atomic as a whole: whatever moment a process dies at, the directory holds the complete
old checkpoint or the complete new one — weights, config and training state that belong together.

Instead of killing processes (see ``test_kill_and_resume.py`` for that), every file-system step of a save is
intercepted and the directory is copied at that moment: each copy is exactly what a SIGKILL at that point
would leave behind (the page cache survives a killed process).  Every copy must load as old or new.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import kanlab.atomic
from kanlab.atomic import COMMIT_NAME, resolve
from kanlab.io import CheckpointError, load, load_train_state, save

from .helpers import small_kan, weights_equal


class Snapshots:
    """Copy ``directory`` before and after every write, rename and delete (and with half-written files)."""

    def __init__(self, directory: Path, into: Path, monkeypatch) -> None:
        self.directory, self.into, self.paths = directory, into, []
        real_replace, real_unlink, real_write = os.replace, Path.unlink, kanlab.atomic._write_new

        def replace(src, dst):
            self.take()
            real_replace(src, dst)
            self.take()

        def unlink(path, missing_ok=False):
            self.take()
            real_unlink(path, missing_ok=missing_ok)
            self.take()

        def write_new(path, data):
            self.take()
            with open(path, "wb") as fh:  # a kill in the middle of writing this file
                fh.write(data[: len(data) // 2])
            self.take()
            real_write(path, data)
            self.take()

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(Path, "unlink", unlink)
        monkeypatch.setattr(kanlab.atomic, "_write_new", write_new)

    def take(self) -> None:
        target = self.into / f"moment{len(self.paths):03d}"
        if self.directory.exists():
            shutil.copytree(self.directory, target)
        else:
            target.mkdir()
        self.paths.append(target)


def _which(directory: Path, old: dict | None, new: dict) -> str:
    """'old' or 'new' (checked for consistency), or 'none' when nothing was committed yet."""
    try:
        model = load(directory)
    except CheckpointError as err:
        assert old is None and "config.json is missing" in str(err), err
        return "none"
    state = load_train_state(directory)
    weights = model.state_dict()
    if old is not None and weights_equal(weights, old["weights"]):
        assert state["step"] == old["step"]
        return "old"
    assert weights_equal(weights, new["weights"]), "a mix of old and new files"
    assert state["step"] == new["step"]
    return "new"


@pytest.mark.parametrize("first_save", [False, True])
def test_every_moment_of_a_save_leaves_old_or_new(tmp_path, monkeypatch, first_save):
    run = tmp_path / "run"
    old = None
    if not first_save:
        a = small_kan(seed=1)
        save(a, run, train_state={"step": 1, "stage": 0, "stage_step": 1})
        old = {"weights": a.state_dict(), "step": 1}
    b = small_kan(seed=2)
    new = {"weights": b.state_dict(), "step": 2}
    snaps = Snapshots(run, tmp_path / "moments", monkeypatch)
    save(b, run, train_state={"step": 2, "stage": 0, "stage_step": 2})
    monkeypatch.undo()
    seen = [_which(p, old, new) for p in snaps.paths]
    assert len(seen) > 15
    assert seen[-1] == "new" and seen[0] == ("none" if first_save else "old")
    assert seen == sorted(seen, key=["none", "old", "new"].index), "went back to an older checkpoint"
    assert not (run / COMMIT_NAME).exists() and not list(run.glob(".*.pending"))


def test_interrupted_commit_is_finished_by_the_next_save_and_leftovers_removed(tmp_path):
    run = tmp_path / "run"
    save(small_kan(seed=1), run, train_state={"step": 1, "stage": 0, "stage_step": 1})
    (run / ".model.safetensors.deadbeef.pending").write_bytes(b"half")  # an uncommitted write
    (run / "notes.txt").write_text("mine")
    (run / ".extra.bin.abc.pending").write_bytes(b"x")  # a committed transaction whose renames did not happen
    (run / COMMIT_NAME).write_text('{"files": {"extra.bin": ".extra.bin.abc.pending"}}')
    b = small_kan(seed=2)
    save(b, run, train_state={"step": 2, "stage": 0, "stage_step": 2})
    assert weights_equal(load(run).state_dict(), b.state_dict())
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "extra.bin", "model.safetensors", "notes.txt",
                                                     "train_state.pt"]


def test_resolve_reads_pending_files_of_a_committed_record(tmp_path):
    (tmp_path / "a").write_text("old")
    (tmp_path / ".a.x.pending").write_text("new")
    assert resolve(tmp_path, "a") == tmp_path / "a"  # no record: the pending file is not committed
    (tmp_path / COMMIT_NAME).write_text('{"files": {"a": ".a.x.pending"}}')
    assert resolve(tmp_path, "a").read_text() == "new"
    (tmp_path / COMMIT_NAME).write_text('{"files": {"a": "../../etc/passwd"}}')
    with pytest.raises(ValueError, match="commit record .* is damaged"):
        resolve(tmp_path, "a")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    a = small_kan(seed=1)
    save(a, run)

    class NotJson(torch.nn.Module):
        pass

    with pytest.raises(TypeError):
        save(NotJson(), run)
    with pytest.raises(TypeError, match="JSON-safe"):
        save(small_kan(seed=2), run, extra={"bad": object()})
    assert weights_equal(load(run).state_dict(), a.state_dict())
    assert not list(run.glob(".*.pending"))
