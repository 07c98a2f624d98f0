"""Headless-Chromium helper for page tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

``make test`` installs Chromium when it is missing (root); elsewhere, browser tests are skipped unless the
``CI`` environment variable is set, in which case a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    """Path of the Chromium binary; skip (or fail under CI) when it or Playwright is missing."""
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        msg = "headless Chromium (Debian package 'chromium') and the 'playwright' package are needed"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@contextlib.contextmanager
def open_page(file: str | Path, *, width: int = 1200, height: int = 900) -> Iterator[tuple[object, list]]:
    """Open a local HTML file offline; yields ``(page, console)`` where ``console`` collects
    ``(type, text)`` of console messages and uncaught page errors (type ``"pageerror"``)."""
    exe = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
            page = context.new_page()
            console: list = []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.goto(Path(file).resolve().as_uri())
            yield page, console
        finally:
            browser.close()
