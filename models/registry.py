"""Pick a drafter backend from one setting: ``offline`` or any Hugging Face model id / local path."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from models.base import Drafter

OFFLINE = "offline"


def load_drafter(model: str = OFFLINE, **options) -> Drafter:
    """``offline`` -> the bundled models; anything else is a transformers hub id or local path.

    ``options`` go to the backend (device, dtype, revision, batch_size, max_new_tokens for
    transformers); unknown ones raise TypeError so a typo in settings is not silent.
    """
    if model == OFFLINE:
        from models.offline import OfflineDrafter

        return OfflineDrafter(**options)
    from models.transformers_backend import TransformersDrafter

    return TransformersDrafter(model, **options)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    installed: bool
    detail: str


def installed_version(package: str) -> str | None:
    """The installed distribution's version, or None when it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def describe_backends() -> list[BackendInfo]:
    """What each backend needs and whether it is installed here (nothing is loaded)."""
    from models.offline.backend import COMPONENTS

    parts = {name: installed_version(pkg) for name, pkg in COMPONENTS.items()}
    offline = BackendInfo(
        name=OFFLINE,
        installed=all(parts.values()),
        detail="; ".join(f"{name}: {COMPONENTS[name]} {v or 'MISSING'}" for name, v in parts.items()),
    )
    torch_v, tf_v = installed_version("torch"), installed_version("transformers")
    transformers = BackendInfo(
        name="transformers",
        installed=bool(torch_v and tf_v),
        detail=f"torch {torch_v or 'MISSING'}, transformers {tf_v or 'MISSING'}; "
        "set ALTTEXT_MODEL to a hub id or local path (weights download on first use unless local)",
    )
    return [offline, transformers]
