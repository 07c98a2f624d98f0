"""The ``kanlab`` command line: ``kanlab demo``, ``kanlab fit``, ``kanlab predict``, ...

Each subcommand lives in ``kanlab/commands/<name>.py`` (``add_arguments`` + ``run``) and is listed in
``kanlab.commands.COMMANDS``.  Bad arguments or bad input exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from .commands import COMMANDS, UsageError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kanlab", description="Kolmogorov–Arnold Networks on PyTorch")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"kanlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _echo(text: str = "") -> None:
    print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad arguments or input, 1 unexpected failure)."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "command", None):
            raise UsageError("kanlab: choose a command: " + ", ".join(COMMANDS) + " (see kanlab --help)")
        return int(args._run(args, _echo) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        return 130
