"""``kanlab splines``: write the interactive spline tour, one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from . import UsageError

HELP = "write the interactive spline tour (Bézier, Catmull–Rom, natural cubic, B-spline) as one HTML page"

DEFAULT_NAME = "kanlab-splines.html"


def add_arguments(p) -> None:
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help=f"where to write the page (default: {DEFAULT_NAME} in the current directory)")


def run(args, echo) -> int:
    from ..tour import write_page

    out = Path(args.out) if args.out else Path.cwd() / DEFAULT_NAME
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out must name an .html file, got {str(out)!r}")
    try:
        path = write_page(out)
    except OSError as err:
        raise UsageError(f"cannot write {out}: {err.strerror or err}") from None
    size_kb = path.stat().st_size / 1024
    echo(f"wrote {path} ({size_kb:.0f} KB); open it in a browser (it works offline, no network needed)")
    return 0
