"""Small shared helpers: local seeding that leaves the global RNG state as it was."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded to ``seed``; the caller's RNG state is restored after.

    ``seeded(None)`` does nothing.  Used so that ``KAN(...)`` built under a seed is reproducible without
    library code ever changing the global RNG state seen by the user.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
