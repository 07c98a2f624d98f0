"""Checkpoints: a directory with ``config.json`` and ``model.safetensors`` that rebuilds the model alone, plus an
optional ``train_state.pt`` (optimizer, step counters, RNG states, history) for resuming a fit.

``save(model, dir)`` is atomic as a whole (see :mod:`kanlab.atomic`): the new files are written next to the
old ones, a commit record makes them current in one rename, and readers resolve through that record, so a
process killed at any moment leaves the last complete checkpoint loadable.  ``load(dir)`` checks the format
version (older formats are upgraded by the migration steps in :data:`MIGRATIONS`), the tensors' content hash,
and that ``config.json`` is the one written with the weights (its hash is kept in the weights file's
metadata), before building the model.  ``train_state.pt`` records the weights hash it belongs to.

Everything the model needs round-trips: grids and masks (buffers), grid sizes and bases (``config()``), pruned widths and multiplication nodes (``widths``), symbolic edge assignments (the
JSON-safe ``get_extra_state`` of each layer, stored under ``"extra_state"``), input column names, and each
module's ``_version`` (``"module_versions"``, handed back to ``_load_from_state_dict`` so modules can upgrade
old state themselves).

Layout of ``config.json`` (format 2)::

    {"format_version": 2, "kanlab_version": "...", "kind": "kan", "model": {...constructor config...},
     "dtype": "float64", "names": ["x", "y"] | null, "weights_sha256": "...",
     "module_versions": {"": 1, "layers.0": 1, ...}, "extra_state": {...} (optional), ...extra entries}

``model.safetensors`` metadata: ``sha256`` (the tensors' hash, also in config.json) and ``config_sha256``
(:func:`config_digest` of config.json as written; checked for current-format configs).  ``train_state.pt``
holds ``weights_sha256``, the weights it continues from.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .atomic import Transaction, resolve

__all__ = ["save", "load", "read_config", "config_digest", "save_train_state", "load_train_state", "train_state_exists",
           "CheckpointError", "FORMAT_VERSION", "MIGRATIONS", "register_migration", "hash_tensors",
           "CONFIG_NAME", "WEIGHTS_NAME", "TRAIN_STATE_NAME"]

FORMAT_VERSION = 2
TRAIN_STATE_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TRAIN_STATE_NAME = "train_state.pt"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, corrupt, foreign or from a newer kanlab."""


# ---- format migrations ---------------------------------------------------------------------------------
#: ``MIGRATIONS[v]`` upgrades a config of format ``v`` to format ``v + 1`` (a pure function on the dict).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register_migration(from_version: int) -> Callable:
    """Decorator: register the step that upgrades ``config.json`` from ``from_version`` to the next format."""

    def deco(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        MIGRATIONS[from_version] = fn
        return fn

    return deco


@register_migration(1)
def _format_1_to_2(config: dict[str, Any]) -> dict[str, Any]:
    """Format 1 did not record module versions: every module was at ``_version`` 1."""
    out = dict(config)
    out.setdefault("module_versions", {})
    out["format_version"] = 2
    return out


def _migrate(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the registered migration steps until the config is at :data:`FORMAT_VERSION`."""
    version = config["format_version"]
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CheckpointError(f"no migration from checkpoint format {version}; this checkpoint is too old")
        config = step(config)
        if config.get("format_version") != version + 1:
            raise RuntimeError(f"migration step from format {version} did not produce format {version + 1}")
        version = config["format_version"]
    return config


# ---- helpers -------------------------------------------------------------------------------------------
def _kinds() -> dict[str, type]:
    from .models.kan import KAN
    from .models.mlp import MLP

    return {"kan": KAN, "mlp": MLP}


MODEL_KINDS = _kinds


def _kind_of(model: nn.Module) -> str:
    for name, cls in _kinds().items():
        if type(model) is cls:
            return name
    from .models.factory import _MODELS

    for name, obj in _MODELS.items():
        if obj is type(model):
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


def hash_tensors(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of ``tensors`` (order-independent)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim safe
    return h.hexdigest()


_hash_tensors = hash_tensors  # backwards-compatible private name


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a checkpoint config (as written; recorded in the weights' metadata)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (already known to parse)."""
    try:
        n = int.from_bytes(blob[:8], "little")
        meta = json.loads(blob[8: 8 + n]).get("__metadata__") or {}
        return meta if isinstance(meta, dict) else {}
    except (ValueError, UnicodeDecodeError, AttributeError):
        return {}


def _json_safe(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} is not JSON-safe ({err}); store names and numbers, never functions") from None


# ---- model ---------------------------------------------------------------------------------------------
def save(model: nn.Module, directory: str | os.PathLike, *, names: list[str] | None = None,
         extra: dict[str, Any] | None = None, train_state: Mapping[str, Any] | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (and ``train_state.pt``) into ``directory``.

    Arguments:
        model: a kanlab model (``KAN``, ``MLP`` or a registered variant with ``config()``).
        directory: created if needed; existing checkpoint files are replaced.
        names: input column names to keep with the model (default: ``model.names`` if set).
        extra: further JSON-safe entries for ``config.json`` (e.g. the target column).
        train_state: a dict from :func:`kanlab.train.checkpoint.capture_train_state` to resume from later.
    Returns:
        the directory as a :class:`~pathlib.Path`.
    """
    from safetensors.torch import save as st_save

    from . import __version__

    directory = Path(directory)
    state = model.state_dict()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
    digest = hash_tensors(tensors)
    if names is None:
        names = getattr(model, "names", None)
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kanlab_version": __version__,
        "kind": _kind_of(model),
        "model": _json_safe(_model_config(model), "the model config"),
        "dtype": str(next(iter(tensors.values())).dtype).replace("torch.", "") if tensors else "float32",
        "names": [str(n) for n in names] if names is not None else None,
        "weights_sha256": digest,
        "module_versions": {k: v.get("version") for k, v in getattr(state, "_metadata", {}).items()
                            if isinstance(v, dict) and v.get("version") is not None},
    }
    extra_state = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if extra_state:
        config["extra_state"] = _json_safe(extra_state, "the modules' extra state (get_extra_state)")
    if extra:
        reserved = set(config) & set(extra)
        if reserved:
            raise ValueError(f"extra entries {sorted(reserved)} would overwrite checkpoint fields")
        config.update(_json_safe(extra, "extra"))
    blob = st_save(tensors, metadata={"sha256": digest, "format": "kanlab", "config_sha256": config_digest(config)})
    files = {WEIGHTS_NAME: blob, CONFIG_NAME: (json.dumps(config, indent=2) + "\n").encode()}
    if train_state is not None:
        files[TRAIN_STATE_NAME] = _train_state_bytes(train_state, digest)
    with Transaction(directory) as tx:  # all files become current together, or none does
        for name, data in files.items():
            tx.write(name, data)
    return directory


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint directory (migrated to the current format), with clear
    errors for foreign or corrupt content."""
    return _migrate(_read_raw_config(Path(directory)))


def _read_raw_config(directory: Path) -> dict[str, Any]:
    """``config.json`` as written (not migrated), checked to be a kanlab config of a supported format."""
    if not directory.is_dir():
        if directory.exists():
            raise CheckpointError(f"{str(directory)!r} is a file, not a directory; expected a kanlab checkpoint "
                                  f"directory")
        raise CheckpointError(f"{str(directory)!r} is not a directory; expected a kanlab checkpoint directory")
    path = _path(directory, CONFIG_NAME)
    if not path.is_file():
        raise CheckpointError(f"{str(directory)!r} is not a kanlab checkpoint: {CONFIG_NAME} is missing")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); the checkpoint is corrupt") from None
    if not isinstance(config, dict) or "format_version" not in config or "kind" not in config:
        raise CheckpointError(f"{path}: not a kanlab checkpoint config (format_version/kind missing)")
    version = config["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is newer than this kanlab supports "
                              f"({FORMAT_VERSION}); upgrade kanlab")
    return config


def _path(directory: Path, name: str) -> Path:
    """Where the current version of checkpoint file ``name`` lies (see :func:`kanlab.atomic.resolve`)."""
    try:
        return resolve(directory, name)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def _model_class(kind: str, directory: Path):
    kinds = _kinds()
    if kind in kinds:
        return kinds[kind]
    from .models.factory import _MODELS

    if kind not in _MODELS:
        raise CheckpointError(f"{directory}: unknown model kind {kind!r}")
    return _MODELS[kind]


def load(directory: str | os.PathLike, *, device=None) -> nn.Module:
    """Rebuild a model from a checkpoint directory written by :func:`save` (weights hash verified).

    The model comes back in eval mode with ``model.names`` set to the saved column names (or None).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    directory = Path(directory)
    raw = _read_raw_config(directory)
    config = _migrate(raw)
    weights = _path(directory, WEIGHTS_NAME)
    if not weights.is_file():
        raise CheckpointError(f"{str(directory)!r}: {WEIGHTS_NAME} is missing")
    blob = weights.read_bytes()
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError, OSError) as err:
        raise CheckpointError(f"{weights}: cannot read the weights ({err}); the file is corrupt or truncated") \
            from None
    if hash_tensors(tensors) != config.get("weights_sha256"):
        raise CheckpointError(f"{weights}: content hash does not match config.json; the checkpoint is corrupt "
                              f"or was edited")
    recorded = _safetensors_metadata(blob).get("config_sha256")
    if recorded is not None and raw["format_version"] == FORMAT_VERSION and recorded != config_digest(raw):
        raise CheckpointError(f"{_path(directory, CONFIG_NAME)}: not the config written with these weights (its "
                              f"hash differs from the one recorded in {WEIGHTS_NAME}); it was edited or copied "
                              f"from another checkpoint")
    cls = _model_class(config["kind"], directory)
    dtype_name = config.get("dtype", "float32")
    dtype = getattr(torch, dtype_name, None) if isinstance(dtype_name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{directory}: unknown dtype {dtype_name!r} in {CONFIG_NAME}")
    try:
        if hasattr(cls, "from_config"):
            model = cls.from_config(config["model"], dtype=dtype)
        else:
            model = cls(**config["model"], dtype=dtype)
        state: OrderedDict[str, Any] = OrderedDict(tensors)
        state.update(config.get("extra_state", {}))
        state._metadata = OrderedDict(  # type: ignore[attr-defined]
            (k, {"version": v}) for k, v in config.get("module_versions", {}).items())
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{directory}: the config does not describe these weights ({err})") from None
    model.names = config.get("names")
    if device is not None:
        model.to(device)
    model.eval()
    return model


# ---- training state ------------------------------------------------------------------------------------
def train_state_exists(directory: str | os.PathLike) -> bool:
    """True when the directory's last complete checkpoint has a ``train_state.pt``."""
    try:
        return _path(Path(directory), TRAIN_STATE_NAME).is_file()
    except CheckpointError:
        return False


def _train_state_bytes(train_state: Mapping[str, Any], weights_sha256: str | None) -> bytes:
    payload = _io.BytesIO()
    state = {"train_state_version": TRAIN_STATE_VERSION, **dict(train_state)}
    if weights_sha256 is not None:
        state["weights_sha256"] = weights_sha256  # the weights this state continues from
    torch.save(state, payload)
    data = payload.getvalue()
    wrapper = _io.BytesIO()
    torch.save({"sha256": hashlib.sha256(data).hexdigest(), "payload": torch.frombuffer(bytearray(data),
                                                                                         dtype=torch.uint8)},
               wrapper)
    return wrapper.getvalue()


def save_train_state(directory: str | os.PathLike, train_state: Mapping[str, Any]) -> Path:
    """Write ``train_state.pt`` (a dict of tensors, numbers, strings and lists) atomically.

    The payload is stored together with its SHA-256 so that a truncated or edited file is detected on load,
    and bound to the weights of the checkpoint already in ``directory`` (if any).  To write weights and state
    together, atomically, use ``save(model, directory, train_state=...)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        weights_sha256 = _read_raw_config(directory).get("weights_sha256")
    except CheckpointError:
        weights_sha256 = None
    with Transaction(directory) as tx:
        tx.write(TRAIN_STATE_NAME, _train_state_bytes(train_state, weights_sha256))
    return directory / TRAIN_STATE_NAME


def load_train_state(directory: str | os.PathLike) -> dict[str, Any]:
    """Read ``train_state.pt`` (hash checked, loaded with ``weights_only=True``: no code runs).

    Raises :class:`CheckpointError` when the file is missing, corrupt, from a newer kanlab, or belongs to other
    weights than the checkpoint's ``model.safetensors`` (e.g. copied from another run).
    """
    directory = Path(directory)
    path = _path(directory, TRAIN_STATE_NAME)
    if not path.is_file():
        raise CheckpointError(f"{str(directory)!r} has no {TRAIN_STATE_NAME}: it cannot be resumed from")
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
        data = wrapper["payload"].numpy().tobytes()
        if hashlib.sha256(data).hexdigest() != wrapper["sha256"]:
            raise CheckpointError(f"{path}: content hash mismatch; the training state is corrupt")
        state = torch.load(_io.BytesIO(data), map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # zip/pickle errors of a truncated or foreign file
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path}: cannot read the training state ({type(err).__name__}: {reason}); the "
                              f"file is corrupt, truncated or not a kanlab training state") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a kanlab training state")
    version = state.get("train_state_version")
    if not isinstance(version, int) or version > TRAIN_STATE_VERSION:
        raise CheckpointError(f"{path}: training-state format {version!r} is not supported by this kanlab")
    bound = state.get("weights_sha256")
    if bound is not None:
        try:
            current = _read_raw_config(directory).get("weights_sha256")
        except CheckpointError:
            current = None
        if current is not None and current != bound:
            raise CheckpointError(f"{path}: this training state belongs to other weights than {WEIGHTS_NAME} "
                                  f"(copied from another checkpoint, or the model was saved again without its "
                                  f"training state); it cannot be resumed from")
    return state
