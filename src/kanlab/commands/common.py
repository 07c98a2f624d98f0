"""Shared argument parsing helpers for the subcommands."""

from __future__ import annotations

from . import UsageError

__all__ = ["int_list", "width_list", "positive_int", "add_data_arguments"]


def int_list(text: str, what: str) -> list[int]:
    """``"3,5,10"`` → ``[3, 5, 10]`` (each >= 1)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated integers such as 3,5,10, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"{what} must be positive integers, got {text!r}")
    return values


def width_list(text: str) -> list:
    """``"2,5,1"`` or with multiplication nodes ``"2,3x1,1"`` (3 sum + 1 mult nodes)."""
    out: list = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "x" in part:
                a, b = part.split("x", 1)
                out.append((int(a), int(b)))
            else:
                out.append(int(part))
        except ValueError:
            raise UsageError(f"--width must look like 2,5,1 (or 2,3x1,1 for multiplication nodes), "
                             f"got {text!r}") from None
    if len(out) < 2:
        raise UsageError(f"--width needs at least an input and an output width, got {text!r}")
    return out


def positive_int(text: str) -> int:
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def add_data_arguments(p) -> None:
    """The data-source options shared by ``kanlab fit`` and ``kanlab compare``."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--formula", metavar="EXPR", help="sympy expression, e.g. 'exp(sin(pi*x)+y**2)'")
    src.add_argument("--data", metavar="FILE.csv", help="CSV with a header row")
    p.add_argument("--ranges", metavar="x=-1:1,y=-1:1", help="sampling ranges for --formula (default -1:1)")
    p.add_argument("--target", metavar="COL", help="target column of --data")
    p.add_argument("--test", metavar="FILE.csv", help="test CSV (default: seeded 80/20 split of --data)")
    p.add_argument("--n-train", type=positive_int, default=1000, help="points sampled for --formula")
    p.add_argument("--n-test", type=positive_int, default=1000, help="test points sampled for --formula")
