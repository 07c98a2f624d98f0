"""The spline tour: one self-contained HTML page to drag control points of a Bézier curve, a Catmull–Rom
spline, a natural cubic spline and a cubic B-spline (with its basis), and see which pieces move.

The page is assembled from three files shipped with the package (``page.html``, ``splines.js`` — the spline
formulas of :mod:`kanlab.splines` written in JavaScript — and ``app.js``); everything is inlined, so the page
needs no network and works from ``file://``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["render_page", "write_page", "MAX_PAGE_BYTES"]

MAX_PAGE_BYTES = 200_000  # the page must stay small enough to mail around


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def render_page() -> str:
    """The tour as one HTML document (a string), with its scripts and styles inlined."""
    from .. import __version__

    page = _read("page.html")
    # scripts first: the version placeholder appears in app.js too
    page = page.replace("%%SPLINES_JS%%", _read("splines.js")).replace("%%APP_JS%%", _read("app.js"))
    return page.replace("%%VERSION%%", __version__)


def write_page(path: str | Path) -> Path:
    """Write :func:`render_page` to ``path`` (parent folders are created); returns the resolved path."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise ValueError(f"{path} is a directory; give a file name such as {path / 'splines.html'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(), encoding="utf-8")
    return path.resolve()
