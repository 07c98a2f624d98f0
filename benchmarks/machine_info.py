"""The machine line the benchmark scripts print: the CPU's model name (from ``/proc/cpuinfo`` where there is
one, else ``platform``) and its logical CPU count."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    """The CPU's model name, e.g. ``"Intel(R) Xeon(R) Processor"``."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return name


def cpu_line() -> str:
    """``"<model name>, <n> logical CPUs"``."""
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs"
