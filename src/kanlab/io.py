"""Checkpoints: a directory with ``config.json`` and ``model.safetensors`` that rebuilds the model alone.

``save(model, dir)`` writes atomically (temporary files, then rename); ``load(dir)`` checks the format version
and the tensors' content hash before building the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION", "MODEL_KINDS"]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, corrupt, foreign or from a newer kanlab."""


def _kinds() -> dict[str, type]:
    from .models.kan import KAN
    from .models.mlp import MLP

    return {"kan": KAN, "mlp": MLP}


MODEL_KINDS = _kinds


def _kind_of(model: nn.Module) -> str:
    for name, cls in _kinds().items():
        if type(model) is cls:
            return name
    kind = getattr(model, "kind", None)
    if kind is None:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}: it is not a known kanlab model")
    return kind


def _model_config(model: nn.Module) -> dict[str, Any]:
    if hasattr(model, "config"):
        return model.config()
    if hasattr(model, "widths") and hasattr(model, "activation"):  # MLP
        return {"widths": list(model.widths), "activation": model.activation}
    raise TypeError(f"{type(model).__name__} has no config() to checkpoint")


def _hash_tensors(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim safe
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(model: nn.Module, directory: str | os.PathLike, *, names: list[str] | None = None,
         extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    Arguments:
        model: a kanlab model (``KAN``, ``MLP`` or a registered variant with ``config()``).
        names: input column names to keep with the model.
        extra: further JSON-safe entries for ``config.json`` (e.g. the target column).
    """
    from safetensors.torch import save as st_save

    from . import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
               if isinstance(v, torch.Tensor)}
    digest = _hash_tensors(tensors)
    blob = st_save(tensors, metadata={"sha256": digest, "format": "kanlab"})
    config = {
        "format_version": FORMAT_VERSION,
        "kanlab_version": __version__,
        "kind": _kind_of(model),
        "model": _model_config(model),
        "dtype": str(next(iter(tensors.values())).dtype).replace("torch.", "") if tensors else "float32",
        "names": list(names) if names is not None else None,
        "weights_sha256": digest,
    }
    extra_state = {k: v for k, v in model.state_dict().items() if not isinstance(v, torch.Tensor)}
    if extra_state:
        config["extra_state"] = extra_state
    if extra:
        config.update(extra)
    _atomic_write_bytes(directory / WEIGHTS_NAME, blob)
    _atomic_write_bytes(directory / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())
    return directory


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint directory, with clear errors for foreign content."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{str(directory)!r} is not a directory; expected a kanlab checkpoint directory")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{str(directory)!r} is not a kanlab checkpoint: {CONFIG_NAME} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); the checkpoint is corrupt") from None
    if not isinstance(config, dict) or "format_version" not in config or "kind" not in config:
        raise CheckpointError(f"{path}: not a kanlab checkpoint config (format_version/kind missing)")
    version = config["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is newer than this kanlab supports "
                              f"({FORMAT_VERSION}); upgrade kanlab")
    return _migrate(config)


def _migrate(config: dict[str, Any]) -> dict[str, Any]:
    """Upgrade older checkpoint formats to the current one (hook; format 1 is the first)."""
    return config


def load(directory: str | os.PathLike, *, device=None) -> nn.Module:
    """Rebuild a model from a checkpoint directory written by :func:`save` (weights hash verified)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{str(directory)!r}: {WEIGHTS_NAME} is missing")
    try:
        tensors = st_load(weights.read_bytes())
    except (SafetensorError, ValueError, RuntimeError, OSError) as err:
        raise CheckpointError(f"{weights}: cannot read the weights ({err}); the file is corrupt or truncated") \
            from None
    if _hash_tensors(tensors) != config.get("weights_sha256"):
        raise CheckpointError(f"{weights}: content hash does not match config.json; the checkpoint is corrupt "
                              f"or was edited")
    kinds = _kinds()
    kind = config["kind"]
    if kind not in kinds:
        from .models.factory import _MODELS

        if kind not in _MODELS:
            raise CheckpointError(f"{directory}: unknown model kind {kind!r}")
        cls = _MODELS[kind]
    else:
        cls = kinds[kind]
    dtype = getattr(torch, config.get("dtype", "float32"))
    try:
        if hasattr(cls, "from_config"):
            model = cls.from_config(config["model"], dtype=dtype)
        else:
            model = cls(**config["model"], dtype=dtype)
        state = dict(tensors)
        state.update(config.get("extra_state", {}))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{directory}: the config does not describe these weights ({err})") from None
    model.names = config.get("names")
    if device is not None:
        model.to(device)
    model.eval()
    return model
