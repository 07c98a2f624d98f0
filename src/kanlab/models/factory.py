"""Model registry: ``create_model(name, **kwargs)`` and ``list_models()``; variants register themselves."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator registering a model class or builder function under ``name``."""

    def deco(obj):
        if name in _MODELS and _MODELS[name] is not obj:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = obj
        return obj

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
