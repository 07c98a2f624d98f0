"""Run the real ``kanlab`` command line in this process with one fault injected at a chosen moment.

Usage (the tests start it as a subprocess)::

    python faulty_fit.py EVENT@STEP#N:SIGNAL fit --formula ... --out DIR ...

The N-th ``EVENT`` that happens once the run has completed at least ``STEP`` training steps (as seen by the
checkpoint callback, so resumed runs count from their checkpoint) sends ``SIGNAL`` (``KILL`` or ``INT``) to
this very process.  Events:

* ``forward`` — a ``KAN`` forward pass (inside the optimiser's step, an evaluation or a grid update);
* ``refine`` — one layer's grid extension (``KANLinear.refine``): the second call is the middle of a refine;
* ``update_grid`` — an adaptive grid update of the model (``KAN.update_grid``);
* ``fsync`` — a checkpoint file's data reached the disk, before it is made current;
* ``replace`` — a rename (``os.replace``), e.g. while a checkpoint is being committed.

``none`` as the spec runs without a fault.  The exit status is the CLI's, or -9 / 130 after the signal.
"""

from __future__ import annotations

import os
import signal
import stat
import sys


def main() -> int:
    spec, argv = sys.argv[1], sys.argv[2:]
    import kanlab.io  # noqa: F401  (import before patching os.replace so imports are not counted)
    from kanlab.cli import main as cli_main
    from kanlab.layers.linear import KANLinear
    from kanlab.models.kan import KAN
    from kanlab.train.checkpoint import Checkpoint

    if spec == "none":
        return cli_main(argv)
    event, rest = spec.split("@")
    at_step, rest = rest.split("#")
    nth, sig_name = rest.split(":")
    at_step, nth = int(at_step), int(nth)
    sig = {"KILL": signal.SIGKILL, "INT": signal.SIGINT}[sig_name]
    if sig == signal.SIGINT:  # the Ctrl-C of a terminal, which reaches a foreground process: a parent that
        # ignores SIGINT (a background job without job control) must not pass that on to this process
        signal.signal(signal.SIGINT, signal.default_int_handler)
    progress = {"step": -1, "count": 0, "fired": False}

    def hit(name: str) -> None:
        if name != event or progress["fired"] or progress["step"] < at_step:
            return
        progress["count"] += 1
        if progress["count"] == nth:
            progress["fired"] = True
            os.kill(os.getpid(), sig)

    def wrap(owner, attr: str, name: str, before: bool = True) -> None:
        original = getattr(owner, attr)

        def patched(*args, **kwargs):
            if before:
                hit(name)
            out = original(*args, **kwargs)
            if not before:
                hit(name)
            return out

        setattr(owner, attr, patched)

    def record(method: str) -> None:
        original = getattr(Checkpoint, method)

        def patched(self, state):
            progress["step"] = state.step
            return original(self, state)

        setattr(Checkpoint, method, patched)

    record("on_train_begin")
    record("on_step_end")
    wrap(KAN, "forward", "forward")
    wrap(KANLinear, "refine", "refine")
    wrap(KAN, "update_grid", "update_grid")
    wrap(os, "replace", "replace", before=False)  # after the rename
    original_fsync = os.fsync

    def fsync(fd):
        original_fsync(fd)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # a file's data, not a directory entry
            hit("fsync")

    os.fsync = fsync
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
