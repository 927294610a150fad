"""Pick a drafter backend from one setting (ALTTEXT_MODEL), one way: names map to lazy import paths.

The registry imports no backend until one is chosen, and backends import only leaf modules
(``models.base``, ``models.draft``, ``models.versions``, ...), never this one. So choosing
``offline`` does not import torch or transformers, and choosing a transformers model does not
import the offline models.

- an exact name (``offline``, ``debug``) picks that backend;
- ``PREFIX:REST`` picks a prefixed backend (``register_prefix("openai", ...)`` makes
  ``openai:gpt-4o-mini`` work; the backend's ``from_name`` gets the whole name);
- anything else is a Hugging Face hub id or local path for the transformers backend.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from models.base import Drafter
from models.versions import installed_version

OFFLINE = "offline"
TRANSFORMERS = "transformers"

# name -> "module:Class"; imported only when chosen (or listed by `alttext models`).
BACKENDS: dict[str, str] = {
    OFFLINE: "models.offline.backend:OfflineDrafter",
    "debug": "models.debug:DebugDrafter",
}
# "prefix" in "prefix:model" -> "module:Class".
PREFIXES: dict[str, str] = {"openai": "models.openai_backend:OpenAIDrafter"}
# Everything else: a hub id or local path.
FALLBACK = (TRANSFORMERS, "models.transformers_backend:TransformersDrafter")

__all__ = ["BACKENDS", "PREFIXES", "BackendInfo", "backend_class", "backend_name", "describe_backends",
           "installed_version", "load_drafter", "register", "register_prefix"]


def register(name: str, target: str) -> None:
    """Add an exactly named backend: ``register("mine", "package.module:MyDrafter")``."""
    BACKENDS[name] = target


def register_prefix(prefix: str, target: str) -> None:
    """Add a backend chosen by ``prefix:anything`` (e.g. ``openai:gpt-4o-mini``)."""
    PREFIXES[prefix] = target


def _target(model: str) -> tuple[str, str]:
    """(backend name, import path) for an ALTTEXT_MODEL value."""
    if model in BACKENDS:
        return model, BACKENDS[model]
    prefix, sep, rest = model.partition(":")
    if sep and rest and prefix in PREFIXES:
        return prefix, PREFIXES[prefix]
    return FALLBACK


def backend_name(model: str) -> str:
    """Which backend an ALTTEXT_MODEL value chooses (imports nothing)."""
    return _target(model)[0]


def _import(target: str) -> type[Drafter]:
    module, _, attr = target.partition(":")
    cls = getattr(import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Drafter)):
        raise TypeError(f"{target} is not a models.base.Drafter")
    return cls


def backend_class(model: str) -> type[Drafter]:
    """The Drafter class an ALTTEXT_MODEL value chooses (imports that backend only)."""
    return _import(_target(model)[1])


def load_drafter(model: str = OFFLINE, **options: Any) -> Drafter:
    """``offline``, ``debug``, ``prefix:...`` or a transformers hub id / local path -> a Drafter.

    ``options`` go to the backend (device, dtype, revision, batch_size, max_new_tokens for
    transformers); unknown ones raise TypeError so a typo in settings is not silent.
    """
    return backend_class(model).from_name(model, **options)


def drafter_options(model: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The generic drafter settings (revision, device, dtype, batch_size, keep_freed_memory) the chosen backend takes."""
    return backend_class(model).options_from(values)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    installed: bool
    detail: str


def describe_backends() -> list[BackendInfo]:
    """What each backend needs and whether it is installed here (no weights are loaded)."""
    entries = [*BACKENDS.items(), *((f"{p}:MODEL", t) for p, t in PREFIXES.items()), FALLBACK]
    infos = []
    for name, target in entries:
        try:
            cls = _import(target)
        except ImportError as exc:
            infos.append(BackendInfo(name=name, installed=False, detail=f"cannot import {target}: {exc}"))
            continue
        versions = {label: installed_version(pkg) for label, pkg in cls.requires.items()}
        infos.append(BackendInfo(name=name, installed=all(versions.values()), detail=cls.describe_requirements()))
    return infos
