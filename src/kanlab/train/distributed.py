"""Data-parallel training on ``torch.distributed`` (DDP): what :func:`kanlab.fit` does when a process group is
initialised with more than one rank.

Launch with ``torchrun --standalone --nproc_per_node=N -m kanlab fit ...`` (the CLI calls
:func:`init_from_env`), or from Python: initialise a process group (``gloo`` on CPU, ``nccl`` on GPUs), build
the same model on every rank and call ``kanlab.fit(model, data)`` with the same data on every rank.

How the work is split, and why replicas never diverge:

* **dict data** is the *global* data set, identical on every rank (checked).  Every step draws the same global
  batch on all ranks (same seed) and each rank computes the loss on its contiguous slice of it
  (:meth:`DataParallel.shard`).  The loss of each slice is weighted by ``world · n_local / n_global`` so that
  DDP's gradient average equals the gradient of the global mean loss exactly — the run matches a single
  process on the same global batches up to float rounding.
* **DataLoader data** is re-sampled with a :class:`~torch.utils.data.DistributedSampler` (unless it has one),
  each rank drawing ``batch_size // world`` rows per step; local batch sizes are all-reduced for the weights.
* **Gradients** are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`; the value returned by
  the LBFGS closure is the all-reduced global loss, so every rank takes the same line-search decisions.
* **Grid updates** use samples gathered from all ranks (:meth:`DataParallel.gather`) — with dict data every
  rank already holds all of them — and parameters and buffers are broadcast from rank 0 after every grid
  update and grid extension, so grids are identical on every rank.
* Early-stopping decisions are all-reduced; only rank 0 shows progress or writes files
  (:func:`is_main_process`).

The sparsity regulariser (``lamb > 0``) is computed per shard and averaged (like BatchNorm without
synchronisation), so with regularisation a DDP run is close to, not equal to, a single-process run.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch
from torch import Tensor, nn

__all__ = ["DataParallel", "LocalContext", "parallel_context", "init_from_env", "cleanup", "is_distributed",
           "is_main_process", "rank", "world_size", "shard_loader"]


# ---- process-group helpers -----------------------------------------------------------------------------
def is_distributed() -> bool:
    """True when a ``torch.distributed`` process group with more than one rank is initialised."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in every non-distributed run): the process that may print and write files."""
    return rank() == 0


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the default process group from torchrun's environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``...) when ``WORLD_SIZE > 1``.  Returns True when a multi-rank group is active.

    ``backend`` defaults to ``"gloo"`` (the CLI trains on CPU); pass ``"nccl"`` for GPU models.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None
    if size <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    dist.init_process_group(backend=backend or "gloo")
    return True


def cleanup() -> None:
    """Destroy the default process group if one is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_loader(loader: Any, *, seed: int = 0) -> Any:
    """A DataLoader drawing this rank's share: same dataset, a :class:`DistributedSampler` (shuffling if the
    original shuffled) and ``batch_size // world`` rows per batch.  Loaders that already use a
    ``DistributedSampler``, and iterables that are not DataLoaders, are returned unchanged."""
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

    if not isinstance(loader, DataLoader) or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError("distributed training needs a DataLoader with a batch_size (or pass a DistributedSampler)")
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(),
                                 shuffle=isinstance(loader.sampler, RandomSampler), seed=int(seed))
    return DataLoader(loader.dataset, batch_size=max(1, loader.batch_size // world_size()), sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                      pin_memory=loader.pin_memory)


# ---- the contexts the fit loop talks to ----------------------------------------------------------------
class LocalContext:
    """Single-process stand-in with the same interface as :class:`DataParallel` (every call is an identity)."""

    world_size = 1
    rank = 0
    is_main = True
    active = False

    def check_same_data(self, *tensors: Tensor) -> None:
        pass

    def shard(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x, y

    def set_local_size(self, n: int) -> None:
        pass

    def weight(self) -> float:
        return 1.0

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def global_loss(self, value: Tensor) -> Tensor:
        return value

    def global_mean(self, value: float, n: int) -> float:
        return value

    def gather(self, x: Tensor) -> Tensor:
        return x

    def any(self, flag: bool) -> bool:
        return flag

    def sync(self, model: nn.Module) -> None:
        pass

    def loader(self, loader: Any, seed: int) -> Any:
        return loader

    def epoch(self, loader: Any, epoch: int) -> None:
        pass


class DataParallel(LocalContext):
    """The DDP side of :func:`kanlab.fit` (see the module docstring for the scheme).

    Arguments:
        group: a process group (default: the world).
    """

    active = True

    def __init__(self, group=None) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("distributed training needs an initialised process group "
                               "(torch.distributed.init_process_group or torchrun)")
        self.dist = dist
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.is_main = self.rank == 0
        self._n_local = 1
        self._n_global = self.world_size

    # -- helpers --------------------------------------------------------------------------------------
    def _comm_device(self, like: Tensor) -> torch.device:
        backend = self.dist.get_backend(self.group)
        return like.device if backend != "gloo" else torch.device("cpu")

    def _all_reduce(self, t: Tensor, op=None) -> Tensor:
        dev = self._comm_device(t)
        buf = t.detach().to(dev).clone()
        self.dist.all_reduce(buf, op=op or self.dist.ReduceOp.SUM, group=self.group)
        return buf.to(t.device)

    # -- data -----------------------------------------------------------------------------------------
    def check_same_data(self, *tensors: Tensor) -> None:
        """Raise when the ranks were given different dict data (it must be the global data set)."""
        stats = torch.tensor([float(sum(t.numel() for t in tensors))]
                             + [float(t.double().sum()) for t in tensors], dtype=torch.float64)
        lo = self._all_reduce(stats, self.dist.ReduceOp.MIN)
        hi = self._all_reduce(stats, self.dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise ValueError("in distributed training every rank must pass the same data dict (the global data "
                             "set; each rank trains on its slice of every batch); for data sharded across ranks "
                             "use a DataLoader with a DistributedSampler")

    def shard(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """This rank's contiguous slice of a global batch; remembers the sizes for :meth:`weight`."""
        xs = torch.tensor_split(x, self.world_size)[self.rank]
        ys = torch.tensor_split(y, self.world_size)[self.rank]
        self._n_local, self._n_global = len(xs), len(x)
        return xs, ys

    def set_local_size(self, n: int) -> None:
        """Record the size of a locally drawn batch (DataLoader path); all-reduces the global size."""
        self._n_local = int(n)
        self._n_global = int(self._all_reduce(torch.tensor([float(n)], dtype=torch.float64))[0])

    def weight(self) -> float:
        """Factor for the local mean loss so that DDP's gradient average is the global mean's gradient."""
        return self.world_size * self._n_local / max(self._n_global, 1)

    def loader(self, loader: Any, seed: int) -> Any:
        return shard_loader(loader, seed=seed)

    def epoch(self, loader: Any, epoch: int) -> None:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    # -- model ----------------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """A fresh :class:`DistributedDataParallel` around ``model`` (rebuilt whenever parameters may have been
        replaced: every optimizer rebuild).  Construction broadcasts rank 0's parameters and buffers."""
        from torch.nn.parallel import DistributedDataParallel

        params = [p for p in model.parameters() if p.requires_grad]
        device = params[0].device if params else torch.device("cpu")
        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                       process_group=self.group, broadcast_buffers=False,
                                       find_unused_parameters=self._has_unused(model, params))

    @staticmethod
    def _has_unused(model: nn.Module, params: Sequence[Tensor]) -> bool:
        """Probe once whether some trainable parameter gets no gradient (e.g. ``base_activation="zero"``)."""
        n_in = getattr(model, "in_features", None)
        widths = getattr(model, "widths", None)
        if n_in is None and widths and isinstance(widths[0], int):
            n_in = widths[0]
        if n_in is None or not params:
            return True
        x = torch.zeros(2, n_in, dtype=params[0].dtype, device=params[0].device)
        with torch.enable_grad():
            out = model(x)
            grads = torch.autograd.grad(out.sum(), list(params), allow_unused=True)
        return any(g is None for g in grads)

    def sync(self, model: nn.Module) -> None:
        """Broadcast rank 0's parameters and buffers to every rank (after grid updates and extensions)."""
        with torch.no_grad():
            for t in list(model.parameters()) + list(model.buffers()):
                dev = self._comm_device(t)
                buf = t.detach().to(dev).clone()
                self.dist.broadcast(buf, src=self.dist.get_global_rank(self.group, 0) if self.group else 0,
                                    group=self.group)
                t.copy_(buf.to(t.device))

    # -- reductions -----------------------------------------------------------------------------------
    def global_loss(self, value: Tensor) -> Tensor:
        """The global mean of a per-shard mean loss: ``Σ_r n_r·value_r / N``."""
        total = self._all_reduce(value.detach().reshape(1).to(torch.float64) * self._n_local)
        return (total / max(self._n_global, 1)).reshape(()).to(value.dtype)

    def global_mean(self, value: float, n: int) -> float:
        """Sample-weighted mean of a per-rank mean ``value`` over ``n`` local samples."""
        t = self._all_reduce(torch.tensor([value * n, float(n)], dtype=torch.float64))
        return float(t[0] / t[1]) if t[1] > 0 else float("nan")

    def gather(self, x: Tensor) -> Tensor:
        """All ranks' rows of ``x (n_r, F)`` concatenated in rank order (identical on every rank)."""
        dev = self._comm_device(x)
        n = torch.tensor([len(x)], dtype=torch.int64, device=dev)
        sizes = [torch.zeros_like(n) for _ in range(self.world_size)]
        self.dist.all_gather(sizes, n, group=self.group)
        sizes_i = [int(s) for s in sizes]
        top = max(sizes_i)
        pad = torch.zeros(top, *x.shape[1:], dtype=x.dtype, device=dev)
        pad[: len(x)] = x.detach().to(dev)
        parts = [torch.empty_like(pad) for _ in range(self.world_size)]
        self.dist.all_gather(parts, pad, group=self.group)
        return torch.cat([p[:s] for p, s in zip(parts, sizes_i)]).to(x.device)

    def any(self, flag: bool) -> bool:
        t = self._all_reduce(torch.tensor([1.0 if flag else 0.0]), self.dist.ReduceOp.MAX)
        return bool(t[0] > 0)


def parallel_context(distributed: bool | None = None) -> LocalContext:
    """The context for one fit: :class:`DataParallel` when ``distributed`` is True, or when it is None and a
    multi-rank process group is initialised; :class:`LocalContext` otherwise."""
    if distributed is None:
        distributed = is_distributed()
    if distributed:
        return DataParallel()
    return LocalContext()
