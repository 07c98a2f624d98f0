"""``kanlab fit``: train a KAN on a formula or a CSV file; write a checkpoint and a JSON summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import UsageError
from .common import add_data_arguments, int_list, positive_int, width_list

HELP = "fit a KAN to a formula (--formula) or a CSV file (--data --target)"


def add_arguments(p) -> None:
    add_data_arguments(p)
    p.add_argument("--width", help="layer widths, e.g. 2,5,1 (default [n, 2n+1, 1])")
    p.add_argument("--basis", default="bspline", help="basis family (see kanlab.list_bases())")
    p.add_argument("--grids", default="3,5,10,20", help="grid-extension schedule (default 3,5,10,20)")
    p.add_argument("--steps", type=positive_int, default=50, help="optimisation steps per grid size")
    p.add_argument("--warmup-steps", type=int, default=200,
                   help="Adam steps before the schedule (default 200; 0 skips the warm-up)")
    p.add_argument("--no-sparsify", action="store_true",
                   help="skip the sparsity stage that switches off edges below 1%% of their layer's largest")
    p.add_argument("--optimizer", default="lbfgs", help="lbfgs (default), adam or sgd")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--lamb", type=float, default=None, help="sparsity regularisation strength")
    p.add_argument("--prune", action="store_true", help="prune small edges and nodes after training")
    p.add_argument("--symbolic", action="store_true", help="snap edges to symbolic formulas")
    p.add_argument("--compare-mlp", action="store_true", help="also train an equal-parameter MLP")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--out", metavar="DIR", help="checkpoint directory to write")
    p.add_argument("--json", metavar="FILE", help="write the result summary as JSON")
    p.add_argument("--checkpoint-every", type=positive_int, metavar="N", help="checkpoint every N steps")
    p.add_argument("--resume", metavar="DIR", help="resume an interrupted fit from its checkpoint directory")
    p.add_argument("--on-divergence", choices=["raise", "reduce_lr"], default="raise",
                   help="on a non-finite loss: stop with an error (default) or lower the learning rate and retry")


def load_data(args) -> dict:
    from ..data import load_csv_dataset, make_dataset

    if args.formula:
        if args.target or args.test:
            raise UsageError("--target/--test go with --data, not --formula")
        return make_dataset(args.formula, ranges=args.ranges, n_train=args.n_train, n_test=args.n_test,
                            seed=args.seed, dtype=_dtype(args))
    if args.data:
        if not args.target:
            raise UsageError("--data needs --target COL (the column to predict)")
        if args.ranges:
            raise UsageError("--ranges goes with --formula, not --data")
        return load_csv_dataset(args.data, args.target, args.test, seed=args.seed, dtype=_dtype(args))
    raise UsageError("give --formula EXPR or --data FILE.csv --target COL")


def _dtype(args):
    import torch

    return getattr(torch, args.dtype)


def build_job(args):
    from ..basis import get_basis_class
    from ..train.loop import OPTIMIZERS
    from ..workflow import FitJob

    get_basis_class(args.basis)  # clear error for unknown names
    if args.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown --optimizer {args.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.warmup_steps < 0:
        raise UsageError(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    if args.lamb is not None and not (args.lamb >= 0 and math.isfinite(args.lamb)):
        raise UsageError(f"--lamb must be >= 0, got {args.lamb}")
    return FitJob(width=width_list(args.width) if args.width else None, basis=args.basis,
                  grids=int_list(args.grids, "--grids"), steps=args.steps, optimizer=args.optimizer, lr=args.lr,
                  lamb=args.lamb if args.lamb is not None else 0.0, prune=args.prune, symbolic=args.symbolic,
                  compare_mlp=args.compare_mlp, warmup_steps=args.warmup_steps,
                  sparsify=not args.no_sparsify, seed=args.seed, dtype=_dtype(args),
                  on_divergence=args.on_divergence)


def _check_outputs(args) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    if args.json:
        parent = Path(args.json).resolve().parent
        if Path(args.json).is_dir() or not parent.is_dir():
            raise UsageError(f"--json {args.json}: cannot write there (not a file path in an existing directory)")


def _resume_and_checkpoint(args, job, data) -> tuple:
    """The model and training state to resume from (``--resume``), and the checkpoint callback."""
    from ..io import load, load_train_state, train_state_exists
    from ..train.checkpoint import Checkpoint

    model = resume = None
    out = args.out or args.resume
    if args.checkpoint_every and not out:
        raise UsageError("--checkpoint-every needs --out DIR (where the checkpoints go)")
    if args.resume:
        if not train_state_exists(args.resume):
            raise UsageError(f"--resume {args.resume}: no complete checkpoint with a train_state.pt there (was it "
                             f"written with --checkpoint-every, or stopped before its first checkpoint? then start "
                             f"again without --resume)")
        model = load(args.resume)
        if model.names is not None and list(model.names) != list(data["names"]):
            raise UsageError(f"--resume {args.resume}: the checkpoint's columns {model.names} differ from the "
                             f"data's {data['names']}")
        model.train()
        resume = load_train_state(args.resume)
    if out:  # also when only --out is given: Ctrl-C then saves the last completed step
        job.callbacks = list(job.callbacks) + [Checkpoint(out, every=args.checkpoint_every, names=data["names"],
                                                          extra={"target": data.get("target")})]
    return model, resume, out


def run(args, echo) -> int:
    from ..atomic import write_file_atomic
    from ..io import TRAIN_STATE_NAME, save
    from ..train import distributed
    from ..train.safety import TrainingDivergedError, TrainingInterrupted
    from ..workflow import run_job

    job = build_job(args)
    _check_outputs(args)
    data = load_data(args)
    multi = distributed.init_from_env()  # under torchrun: data-parallel over all ranks
    try:
        model, resume, out = _resume_and_checkpoint(args, job, data)
        try:
            model, result = run_job(data, job, model=model, resume=resume)
        except TrainingInterrupted as err:
            if out and distributed.is_main_process():
                raise TrainingInterrupted(f"{err}; checkpoint saved in {out} (continue with the same arguments "
                                          f"and --resume {out})", err.step) from None
            raise
        except TrainingDivergedError as err:
            hint = f"; the last periodic checkpoint in {out} is intact" if out and args.checkpoint_every else ""
            raise UsageError(f"training diverged: {str(err).split('. ')[0]}{hint}; try a smaller --lr or "
                             f"--on-divergence reduce_lr") from None
        result["names"] = data["names"]
        result["world_size"] = distributed.world_size()
        if not distributed.is_main_process():
            return 0  # only rank 0 writes files and reports
    finally:
        if multi:
            distributed.cleanup()
    if out:
        save(model, Path(out), names=data["names"], extra={"target": data.get("target")})
        if (args.prune or args.symbolic) and (Path(out) / TRAIN_STATE_NAME).exists():
            (Path(out) / TRAIN_STATE_NAME).unlink()  # the saved model is no longer the one being trained
        write_file_atomic(Path(out) / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    if args.json:
        write_file_atomic(Path(args.json), (json.dumps(result, indent=2) + "\n").encode())
    echo(f"train RMSE {result['train_rmse']:.3e}  test RMSE {result['test_rmse']:.3e}  "
         f"params {result['n_params']}  width {result['width']}  {result['seconds']:.1f}s")
    if "formula" in result:
        echo(f"formula: {result['formula']}  (formula test RMSE {result.get('formula_test_rmse', float('nan')):.3e})")
        if "formula_verified" in result:  # never print a guess as confidently as a verified formula
            from ..interpret.pipeline import formula_confidence

            echo("  " + formula_confidence(result))
    if "mlp_test_rmse" in result:
        echo(f"MLP: test RMSE {result['mlp_test_rmse']:.3e}  params {result['mlp_n_params']}")
    return 0
