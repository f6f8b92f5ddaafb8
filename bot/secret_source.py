"""Secrets: only from the environment or a secrets folder, never from the config file, and never logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, create_model
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.logs import register_secret

log = logging.getLogger(__name__)
SECRET_KEYS = {"token", "password", "api_key", "apikey", "secret"}


class _Secret(BaseSettings):
    """One secret: pydantic-settings reads it from the init value (the environment) or the secrets folder."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, file_secret_settings)


@cache
def _secret_model(name: str) -> type[_Secret]:
    field = (SecretStr | None, Field(default=None, alias=name))
    return create_model(f"Secret_{name}", __base__=_Secret, value=field)  # type: ignore[arg-type]


class SecretSource:
    """Every secret goes through here: the environment first, then a file named after it in IMAGEBRIDGE_SECRETS_DIR
    (Docker/Kubernetes secrets; the file name in any case), read by pydantic-settings' secrets-directory source.
    Each secret found is registered with the log redaction, so it never reaches a log line."""

    def __init__(self, environ: Mapping[str, str] | None = None, secrets_dir: Path | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        folder = secrets_dir or self._environ.get("IMAGEBRIDGE_SECRETS_DIR")
        self._dir = Path(folder) if folder and Path(folder).is_dir() else None
        if folder and self._dir is None:
            log.warning("IMAGEBRIDGE_SECRETS_DIR %s is not a folder; secrets come from the environment only", folder)

    def get(self, name: str) -> SecretStr | None:
        given = self._environ.get(name, "").strip()
        init: dict[str, Any] = {name: given} if given else {}
        found = _secret_model(name)(_secrets_dir=self._dir, **init).value  # type: ignore[attr-defined]
        if not isinstance(found, SecretStr) or not found.get_secret_value().strip():
            return None
        secret = SecretStr(found.get_secret_value().strip())
        register_secret(secret.get_secret_value())
        return secret

    def backend_secret(self, backend_name: str, what: Literal["PASSWORD", "API_KEY"]) -> SecretStr | None:
        key = backend_name.upper().replace("-", "_")
        return self.get(f"IMAGEBRIDGE_BACKEND_{key}_{what}")


def _find_secret_keys(data: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS and not isinstance(value, dict):
                found.append(here)
            found.extend(_find_secret_keys(value, here))
    return found


def no_secrets_in_file(data: dict[str, Any]) -> None:
    """Refuse a config file that holds a secret: a token, password or key, or a password in the storage URL."""
    secrets = _find_secret_keys(data)
    if secrets:
        raise ConfigError(
            f"{', '.join(secrets)}: secrets may not be written in the config file; set them in the "
            "environment (DISCORD_TOKEN, TELEGRAM_TOKEN, IMAGEBRIDGE_BACKEND_<NAME>_PASSWORD / _API_KEY) "
            "or in files under IMAGEBRIDGE_SECRETS_DIR"
        )
    _no_password_in_storage_url(data)


def _no_password_in_storage_url(data: dict[str, Any]) -> None:
    """A database password is a secret too: the environment or the secrets folder, never the TOML file."""
    storage = data.get("storage")
    url = storage.get("url") if isinstance(storage, dict) else None
    if isinstance(url, str) and urlsplit(url).password:
        raise ConfigError(
            "storage.url: secrets may not be written in the config file; drop the password from the URL and set "
            "IMAGEBRIDGE_STORAGE_PASSWORD (environment or IMAGEBRIDGE_SECRETS_DIR), or give the whole URL in "
            "IMAGEBRIDGE_STORAGE__URL"
        )
