"""Build and load the C++ CPU kernels (``csrc/kan_cpu.cpp``, ``csrc/kan_local.cpp``, ``csrc/kan_fused.cpp``) on
first use, with a pure-PyTorch fallback.

The extension is compiled with :func:`torch.utils.cpp_extension.load` into a cache directory — never the
source tree — chosen as, in order: ``$KANLAB_CACHE_DIR``, ``$XDG_CACHE_HOME/kanlab``, ``~/.cache/kanlab``;
under it, ``torch_extensions/<hash>`` where the hash covers the sources, the compiler flags, the torch version
and the CPU (the code is built with ``-march=native``).  A second process reuses the cached build; parallel
builds are serialised by torch's lock file.  Once a build has loaded, a marker file next to it lets later
processes load the library directly, without importing ``torch.utils.cpp_extension`` (which pulls in
setuptools: about a second of start-up).

When the build fails (no compiler, no ninja, a header problem) the failure is logged once at WARNING level
and :func:`load_extension` returns ``False``: every op then runs its pure-PyTorch implementation
(``kanlab.kernels.torch_impl``), which computes the same values.  ``KANLAB_NO_EXTENSION=1`` skips the build
entirely (and is what the test of the fallback sets).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from pathlib import Path

import torch

__all__ = ["load_extension", "extension_available", "extension_error", "cache_dir", "disable_extension"]

log = logging.getLogger(__name__)

_SOURCES = [Path(__file__).with_name("csrc") / name for name in ("kan_cpu.cpp", "kan_local.cpp", "kan_fused.cpp")]
_HEADERS = [Path(__file__).with_name("csrc") / name
            for name in ("bspline_eval.h", "buffer_pool.h", "feature_lists.h", "transpose.h", "window_sweeps.h")]
_NAME = "kanlab_cpu_kernels"
_MARKER = "kanlab-loaded"  # written next to a build that loaded once
_CFLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp", "-fopenmp-simd", "-std=c++17"]
_LDFLAGS = ["-fopenmp"]

_lock = threading.Lock()
_state: dict[str, object] = {"tried": False, "ok": False, "error": None}


def cache_dir() -> Path:
    """Root of kanlab's on-disk caches (see the module docstring for the lookup order)."""
    if os.environ.get("KANLAB_CACHE_DIR"):
        return Path(os.environ["KANLAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kanlab"


def _cpu_signature() -> str:
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("flags", "model name")):
                    flags += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return platform.machine() + flags


def _build_dir() -> Path:
    h = hashlib.sha256()
    for source in _SOURCES + _HEADERS:
        h.update(source.read_bytes())
    h.update(" ".join(_CFLAGS + _LDFLAGS).encode())
    h.update(torch.__version__.encode())
    h.update(_cpu_signature().encode())
    return cache_dir() / "torch_extensions" / h.hexdigest()[:16]


def _disabled_by_env() -> bool:
    return os.environ.get("KANLAB_NO_EXTENSION", "").strip().lower() not in ("", "0", "false", "no")


def _load_built(build: Path) -> bool:
    """Load a build that loaded before (its marker exists) without the JIT machinery; False if there is none
    or it does not load (then the normal build path runs)."""
    library = build / f"{_NAME}.so"
    if not (library.is_file() and (build / _MARKER).is_file()):
        return False
    try:
        torch.ops.load_library(str(library))
    except Exception as exc:  # a damaged file: rebuild
        log.debug("kanlab: cached kernels at %s did not load (%s); rebuilding", library, exc)
        return False
    return hasattr(torch.ops, "kanlab_cpp") and hasattr(torch.ops.kanlab_cpp, "fused_forward")


def _mark_loaded(build: Path) -> None:
    try:
        (build / _MARKER).write_text(torch.__version__ + "\n", encoding="utf-8")
    except OSError:  # a read-only cache still works, only slower to load
        pass


def load_extension() -> bool:
    """Build (once, cached) and load the C++ kernels; ``True`` when ``torch.ops.kanlab_cpp`` is usable."""
    if _state["tried"]:
        return bool(_state["ok"])
    with _lock:
        if _state["tried"]:
            return bool(_state["ok"])
        try:
            if _disabled_by_env():
                raise RuntimeError("disabled by KANLAB_NO_EXTENSION")
            if hasattr(torch.ops, "kanlab_cpp") and hasattr(torch.ops.kanlab_cpp, "fused_forward"):
                _state["ok"] = True  # already loaded (another copy of this module)
            else:
                build = _build_dir()
                if not _load_built(build):
                    from torch.utils import cpp_extension

                    build.mkdir(parents=True, exist_ok=True)
                    cpp_extension.load(name=_NAME, sources=[str(p) for p in _SOURCES], build_directory=str(build),
                                       extra_cflags=_CFLAGS, extra_ldflags=_LDFLAGS, is_python_module=False,
                                       verbose=False)
                    _mark_loaded(build)
                _state["ok"] = hasattr(torch.ops.kanlab_cpp, "fused_forward")
        except Exception as exc:  # no compiler, failed build, ... -> pure PyTorch
            _state["ok"] = False
            _state["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            if not _disabled_by_env():
                log.warning("kanlab: C++ kernels unavailable (%s); using the pure-PyTorch implementation",
                            _state["error"])
        _state["tried"] = True
    return bool(_state["ok"])


def extension_available() -> bool:
    """Whether the C++ CPU kernels are loaded (builds them on first call)."""
    return load_extension()


def extension_error() -> str | None:
    """Why the extension is unavailable (``None`` if it loaded or was not tried yet)."""
    return _state["error"]  # type: ignore[return-value]


def disable_extension() -> None:
    """Use the pure-PyTorch implementations from now on in this process (e.g. to compare the two)."""
    with _lock:
        _state.update(tried=True, ok=False, error="disabled by disable_extension()")
