"""Killing a real ``kanlab fit`` process at many moments — while a checkpoint is written or committed, in the
middle of a grid extension, inside an LBFGS step, at a grid update, from outside at an arbitrary moment, and
with Ctrl-C — then resuming with ``--resume`` each time ends with final weights bit-identical to one
uninterrupted run (CPU, same seed), grid-extension stages included.

The schedule (3 grid stages × 4 LBFGS steps, a checkpoint every 2 steps) is small so that the whole chain of
processes takes seconds; faults are injected by ``faulty_fit.py`` at exact moments (see its docstring).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from kanlab.atomic import COMMIT_NAME
from kanlab.io import load, load_train_state

from .helpers import HARNESS, run_faulty_fit, subprocess_env, weights_equal

FIT = ["fit", "--formula", "sin(x)*y", "--width", "2,2,1", "--grids", "3,5,8", "--steps", "4", "--n-train", "40",
       "--n-test", "10", "--seed", "1"]
EVERY = ["--checkpoint-every", "2"]
SIGKILL, SIGINT_EXIT = -9, 130


def _checkpoint_step(run: Path) -> int | None:
    try:
        state = load_train_state(run)
    except ValueError:
        return None
    load(run)  # the weights of that checkpoint load too (hashes verified)
    return int(state["step"])


def _kill_from_outside(args: list[str], run: Path) -> subprocess.CompletedProcess:
    """Start the fit, wait until it has committed a newer checkpoint, then SIGKILL it at once."""
    before = _checkpoint_step(run)
    proc = subprocess.Popen([sys.executable, HARNESS, "none", *args], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 200
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if load_train_state(run)["step"] != before:
                    break
            except (ValueError, OSError):  # caught between a resolve and a rename: look again
                pass
            time.sleep(0.003)
        proc.kill()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigkill_at_many_moments_then_resume_is_bit_identical(tmp_path):
    ref_dir, run = tmp_path / "reference", tmp_path / "run"
    reference = subprocess.Popen([sys.executable, HARNESS, "none", *FIT, "--out", str(ref_dir)],
                                 env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    resume = [*FIT, *EVERY, "--resume", str(run)]
    survived = []

    def step(spec: str, args: list[str], expect_rc: int, what: str) -> int | None:
        proc = run_faulty_fit(spec, args)
        assert proc.returncode == expect_rc, f"{what}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        survived.append(what)
        return _checkpoint_step(run)

    # 1. killed while the first checkpoint's files are written: nothing was committed, so there is nothing to
    #    resume from (a clear error, exit 2) and the fit is started again
    assert step("fsync@2#2:KILL", [*FIT, *EVERY, "--out", str(run)], SIGKILL, "first checkpoint half written") \
        is None
    proc = run_faulty_fit("none", resume)
    assert proc.returncode == 2 and "no complete checkpoint" in proc.stderr, proc.stderr
    # 2. killed between the renames of a commit (weights renamed, config not yet): the commit record makes the
    #    new checkpoint (step 4, end of grid stage 0) the current one
    assert step("replace@4#2:KILL", [*FIT, *EVERY, "--out", str(run)], SIGKILL, "between commit renames") == 4
    assert (run / COMMIT_NAME).exists()  # the kill really landed inside the commit
    # 3. killed in the middle of the grid extension 3 -> 5 (one of two layers refined)
    assert step("refine@4#2:KILL", resume, SIGKILL, "middle of a grid extension") == 4
    # 4. killed from outside right after the next checkpoint is committed
    proc = _kill_from_outside(resume, run)
    assert proc.returncode == SIGKILL, proc.stderr[-2000:]
    survived.append("external SIGKILL")
    k = _checkpoint_step(run)
    assert k is not None and 4 < k < 12
    # 5. killed inside an LBFGS step (the 5th forward pass: in the line search)
    k2 = step(f"forward@{k}#5:KILL", resume, SIGKILL, "inside an LBFGS step")
    assert k2 is not None and k <= k2 < 12
    # 6. killed at the grid update that opens the last grid stage (right after the extension 5 -> 8)
    assert step("update_grid@8#1:KILL", resume, SIGKILL, "grid update of the last stage") == 8
    # 7. Ctrl-C inside step 9: the step completes, is checkpointed (9 is not a periodic checkpoint), exit 130
    proc = run_faulty_fit("forward@8#3:INT", resume)
    assert proc.returncode == SIGINT_EXIT, proc.stderr[-2000:]
    assert "checkpoint saved" in proc.stderr and f"--resume {run}" in proc.stderr
    assert _checkpoint_step(run) == 9
    survived.append("Ctrl-C")
    # 8. run to the end
    assert step("none", resume, 0, "final resume") == 12

    assert reference.wait(timeout=240) == 0, reference.stderr.read()[-2000:]
    final, ref = load_file(run / "model.safetensors"), load_file(ref_dir / "model.safetensors")
    assert weights_equal(final, ref), "resumed run differs from the uninterrupted one"
    assert len(survived) == 8  # 6 SIGKILLs + Ctrl-C + the final run (reported in the closing note)


def test_resume_of_a_run_stopped_before_any_checkpoint_says_so(tmp_path):
    proc = run_faulty_fit("none", [*FIT, "--resume", str(tmp_path / "nothing")])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no complete checkpoint" in proc.stderr


@pytest.mark.parametrize("extra, message", [(["--grids", "3,5,10"], "grids=[3, 5] then, [3, 5, 10] now"),
                                            (["--steps", "5"], "steps=2 then, 5 now"),
                                            (["--seed", "2"], "the training data differ")])
def test_resume_with_other_arguments_is_refused(tmp_path, capsys, extra, message):
    """Resuming with a different schedule or seed would silently train another model: exit 2 instead."""
    from kanlab.cli import main

    small = ["fit", "--formula", "x*y", "--width", "2,1,1", "--grids", "3,5", "--steps", "2", "--n-train", "20",
             "--n-test", "5", "--seed", "1", "--checkpoint-every", "1"]
    assert main([*small, "--out", str(tmp_path)]) == 0
    args = list(small)
    for flag, value in zip(extra[::2], extra[1::2]):
        args[args.index(flag) + 1] = value
    capsys.readouterr()
    assert main([*args, "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot resume" in err and message in err, err
