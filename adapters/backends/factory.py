"""Building a backend client from its config section, for every supported kind."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.a1111 import A1111Backend
from adapters.backends.comfyui import ComfyUIBackend
from adapters.backends.horde import HordeBackend
from adapters.backends.openai_images import OpenAIImagesBackend
from adapters.backends.openwebui import OpenWebUIBackend
from adapters.backends.swarmui import SwarmUIBackend
from bot.errors import ConfigError
from bot.ports import Backend
from bot.settings import BackendConfig

log = logging.getLogger(__name__)

A1111_KINDS = {"a1111", "forge", "sdnext"}
# Optional BackendConfig fields this factory reads when present (see the report to the lead).
OPTIONAL_FIELDS: tuple[str, ...] = ("workflow", "node_map", "model", "quality", "sizes", "nsfw", "poll_seconds")
OPTIONAL_FIELDS += ("max_wait_seconds", "img2img_workflow", "img2img_node_map")
OPTIONAL_FIELDS += ("edit_workflow", "edit_node_map", "save_images")
# Open WebUI's `model` is a check against its admin's global setting, never a default: `models` lists, no more.
NO_MODEL_FROM_LIST = {"openwebui"}


def options_for(config: BackendConfig) -> dict[str, Any]:
    """The kind-specific options: the optional fields that are set, else `models[0]` as model (not for Open WebUI)."""
    options: dict[str, Any] = {
        "timeout_seconds": config.timeout_seconds,
        "previews": config.previews,
        "poll_seconds": max(config.poll_interval_seconds, 1.0) if config.kind == "horde" else None,
    }
    for name in OPTIONAL_FIELDS:
        value = getattr(config, name, None)
        if value is not None:
            options[name] = value
    if "model" not in options and config.models and config.kind not in NO_MODEL_FROM_LIST:
        options["model"] = config.models[0]
    return {key: value for key, value in options.items() if value is not None}


def build_backend(
    name: str,
    config: BackendConfig,
    secrets: SecretStr | None,
    *,
    password: SecretStr | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Backend:
    """A client for the backend. `secrets` is its API key (or, for A1111 kinds, its password)."""
    if config.kind in A1111_KINDS:
        return A1111Backend(
            name,
            config.url,
            kind=config.kind,
            username=config.username,
            password=password or secrets,
            timeout_seconds=config.timeout_seconds,
            connect_timeout_seconds=config.connect_timeout_seconds,
            poll_interval_seconds=config.poll_interval_seconds,
            previews=config.previews,
            transport=transport,
        )
    options = options_for(config)
    if config.kind == "comfyui":
        return ComfyUIBackend(name, config.url, secrets, options, transport=transport)
    if config.kind == "openwebui":
        return OpenWebUIBackend(name, config.url, secrets, options, transport=transport)
    if config.kind == "openai":
        return OpenAIImagesBackend(name, config.url, secrets, options, transport=transport)
    if config.kind == "horde":
        return HordeBackend(name, config.url, secrets, options, transport=transport)
    if config.kind == "swarmui":
        return SwarmUIBackend(name, config.url, secrets, options, transport=transport)
    raise ConfigError(f"backends.{name}.kind: {config.kind!r} is not supported")
