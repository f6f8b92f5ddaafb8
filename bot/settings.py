"""Configuration: one TOML file validated with pydantic-settings; secrets only from the environment or files."""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config_discord import DiscordConfig
from bot.config_telegram import TelegramConfig
from bot.errors import ConfigError
from bot.logs import register_secret
from bot.moderation import ModerationConfig
from bot.presets import Preset
from bot.secret_source import no_secrets_in_file
from bot.wildcards import WildcardsConfig

log = logging.getLogger(__name__)
BackendKind = Literal["a1111", "forge", "sdnext", "comfyui", "openwebui", "openai", "horde", "swarmui"]
MAX_DAILY = 1_000_000.0  # the most cost units any daily quota may be (about 5,000 SDXL images)
DailyAmount = Annotated[float, Field(ge=0, le=MAX_DAILY, allow_inf_nan=False)]
BOT_ADMIN = re.compile(r"^(discord|telegram|console):[A-Za-z0-9_.-]+$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendConfig(Section):
    """One backend server. Its password or API key comes from IMAGEBRIDGE_BACKEND_<NAME>_PASSWORD / _API_KEY."""

    kind: BackendKind
    url: str
    username: str | None = None
    enabled: bool = True
    timeout_seconds: float = Field(default=900, gt=0)
    connect_timeout_seconds: float = Field(default=10, gt=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    previews: bool = True
    models: list[str] = Field(default_factory=list, description="extra model names this backend offers")
    model: str | None = None  # openai, openwebui, horde, swarmui: the model to ask for
    workflow: str | None = None  # comfyui: a shipped workflow name or a path to an API-format JSON file
    node_map: dict[str, list[tuple[str, str]]] | None = None  # comfyui: option -> [[node id, input name], ...]
    img2img_workflow: str | None = None  # comfyui: the workflow img2img runs on (else refused if `workflow` is set)
    img2img_node_map: dict[str, list[tuple[str, str]]] | None = None  # comfyui: the node map of img2img_workflow
    edit_workflow: str | None = None  # comfyui: edit by instruction (flux_kontext_edit, qwen_image_edit, or a path)
    edit_node_map: dict[str, list[tuple[str, str]]] | None = None  # comfyui: its map; image1..imageN = references
    quality: str | None = None  # openai
    sizes: dict[str, list[str]] | None = None  # openai: model -> sizes it accepts (LocalAI and friends)
    nsfw: bool | None = None  # horde: allow NSFW workers
    poll_seconds: float | None = Field(default=None, gt=0)  # horde: /check interval
    max_wait_seconds: float | None = Field(default=None, gt=0)  # horde: give up after this long
    save_images: bool | None = None  # swarmui: also keep the images in Swarm's own history (default: not)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class LimitsConfig(Section):
    max_prompt_chars: int = Field(default=2000, ge=10, le=32000)
    max_source_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    max_source_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    job_timeout_seconds: float = Field(default=900, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0)
    max_queued_per_user: int = Field(default=50, ge=1)


class SchedulerConfig(Section):
    affinity: bool = True
    affinity_window: int = Field(default=8, ge=1, le=100)
    max_pass_over: int = Field(default=4, ge=0)
    max_pass_over_seconds: float = Field(default=300, ge=0)


class QuotaConfig(Section):
    enabled: bool = True
    timezone: str = "UTC"
    reset_hour: int = Field(default=0, ge=0, le=23)
    user_daily: DailyAmount = 500.0
    server_daily: DailyAmount = 10000.0
    roles: dict[str, DailyAmount] = Field(default_factory=dict, description="role id or name -> daily limit")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Europe/Berlin'") from exc
        return value


class AccessConfig(Section):
    """Bot-level rights. Chat admins (Manage Server, group administrators) manage their own chat only."""

    bot_admins: list[str] = Field(
        default_factory=list, description='"platform:user_id" with rights everywhere, e.g. "telegram:123"'
    )

    @field_validator("bot_admins")
    @classmethod
    def _platform_user(cls, values: list[str]) -> list[str]:
        for value in values:
            if not BOT_ADMIN.match(value):
                raise ValueError(
                    f'{value!r} is not "platform:user_id" (platform discord, telegram or console; '
                    'the numeric user id, e.g. "telegram:123456789")'
                )
        return values


class ConsoleConfig(Section):
    enabled: bool = False
    user: str = "console"


class ProgressConfig(Section):
    console_interval_seconds: float = Field(default=0.2, ge=0)
    discord_interval_seconds: float = Field(default=1.5, ge=0)
    telegram_private_interval_seconds: float = Field(default=1.0, ge=0)
    telegram_group_interval_seconds: float = Field(default=3.0, ge=0)


class PoolConfig(Section):
    check_interval_seconds: float = Field(default=60.0, gt=0)
    max_consecutive_errors: int = Field(default=3, ge=1)


class MetricsConfig(Section):
    """The optional /healthz and Prometheus /metrics endpoint."""

    port: int | None = Field(default=None, ge=0, le=65535)  # None: no endpoint
    host: str = "127.0.0.1"  # 0.0.0.0 so Prometheus in another container can scrape


class WebConfig(Section):
    """The web gallery and dashboard, served on the [metrics] port under /gallery."""

    enabled: bool = False
    base_url: str = ""  # what users open, e.g. https://bot.example.org (the /gallery links start with it)
    link_minutes: int = Field(default=10, ge=1, le=1440)  # how long a sign-in link stays usable
    session_hours: int = Field(default=24 * 7, ge=1)
    secure_cookies: bool = False  # true when users reach it over https (a proxy in front)
    page_size: int = Field(default=24, ge=1, le=200)


class S3Config(Section):
    """Images in an S3-compatible bucket, path-style (AWS S3, MinIO, Cloudflare R2…). The keys are the secrets
    IMAGEBRIDGE_S3_ACCESS_KEY_ID and IMAGEBRIDGE_S3_SECRET_ACCESS_KEY."""

    endpoint: str = Field(default="", description='e.g. "https://s3.eu-west-1.amazonaws.com", "http://minio:9000"')
    region: str = Field(default="us-east-1", description="the bucket's region (MinIO: us-east-1; R2: auto)")
    bucket: str = Field(default="", description="set to keep images in this bucket instead of images_dir")
    prefix: str = Field(default="", description='keys start with it, e.g. "imagebridge/"')

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)

    @model_validator(mode="after")
    def _endpoint_with_bucket(self) -> S3Config:
        if self.bucket and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError("storage.s3.endpoint: an http(s):// URL is needed when storage.s3.bucket is set")
        return self


class StorageConfig(Section):
    """Where jobs, quotas and history live: SQLite in data_dir (the default) or a PostgreSQL server."""

    url: SecretStr | None = Field(default=None, description='"postgresql://user@host:5432/db"; unset: SQLite')
    pool_size: int = Field(default=10, ge=2, le=100)  # PostgreSQL connections per process
    lease_seconds: float = Field(default=30, ge=1, le=3600)  # PostgreSQL: a dead process's jobs run again after it
    images_dir: Path | None = Field(
        default=None, description="folder for image files; unset: data_dir/images (a shared mount for several hosts)"
    )
    s3: S3Config = Field(default_factory=S3Config)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().strip()
        parts = urlsplit(text)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("only postgresql://… URLs (leave it unset for SQLite in data_dir)")
        if parts.password:  # a URL with a password is a secret: never printed in full
            register_secret(parts.password)
            register_secret(text)
        return SecretStr(text)

    @property
    def postgres(self) -> bool:
        return self.url is not None


class Settings(BaseSettings):
    """The whole configuration. Environment variables IMAGEBRIDGE_<KEY> (nested with __) override the file."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGEBRIDGE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    default_preset: str = ""
    admins: list[str] = Field(default_factory=list, description="deprecated: [access] bot_admins")
    access: AccessConfig = Field(default_factory=AccessConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    quota: QuotaConfig = Field(default_factory=QuotaConfig)
    progress: ProgressConfig = Field(default_factory=ProgressConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    presets: dict[str, Preset] = Field(default_factory=dict)
    wildcards: WildcardsConfig = Field(default_factory=WildcardsConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)  # SIGTERM: how long running jobs may finish
    retention_days: int | None = Field(default=None, ge=1)  # prune finished jobs and images older than this

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        named = {name: preset.model_copy(update={"name": name}) for name, preset in self.presets.items()}
        object.__setattr__(self, "presets", named)
        kinds = {backend.kind for backend in self.backends.values()} | set(self.backends)
        for name, preset in named.items():
            if self.backends and preset.backend not in kinds and not _kind_alias(preset.backend, kinds):
                raise ValueError(
                    f"presets.{name}.backend: {preset.backend!r} is neither a configured backend name nor kind "
                    f"(configured: {', '.join(sorted(kinds))})"
                )
        if self.default_preset and self.default_preset not in named:
            raise ValueError(
                f"default_preset: {self.default_preset!r} is not a preset "
                f"(presets: {', '.join(sorted(named)) or 'none'})"
            )
        return self

    @property
    def bot_admins(self) -> frozenset[str]:
        """`[access] bot_admins`, plus the older top-level `admins` and `[telegram] admin_users`."""
        telegram = (f"telegram:{user_id}" for user_id in self.telegram.admin_users)
        return frozenset([*self.access.bot_admins, *self.admins, *telegram])

    @property
    def first_preset(self) -> str:
        return self.default_preset or next(iter(self.presets), "")


def _kind_alias(kind: str, kinds: set[str]) -> bool:
    """An `a1111` preset may run on Forge or SD.Next: they speak the same API."""
    return kind in {"a1111", "forge", "sdnext"} and bool(kinds & {"a1111", "forge", "sdnext"})


def did_you_mean(loc: tuple[int | str, ...]) -> str:
    """For an unknown key: " (did you mean 'x'?)" from the keys its section does have, found with difflib."""
    model: Any = Settings
    parts = list(loc[:-1])
    while parts and model is not None:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field is not None else None
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is dict and args:  # [backends.<name>], [presets.<name>]: skip the name
            annotation = args[-1]
            if parts:
                parts.pop(0)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        if item["type"] == "extra_forbidden":
            message, shown = "unknown key", did_you_mean(item["loc"])
        lines.append(f"{loc or '<top>'}: {message}{shown}" if loc else f"{message}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into a copy of `base` (tables merge, other values replace)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate the TOML file. Raises ConfigError naming the bad key and what is allowed."""
    data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    no_secrets_in_file(data)
    data = merge(data, overrides or {})
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def config_path(cli_value: str | None) -> Path | None:
    """--config wins, then IMAGEBRIDGE_CONFIG, then ./imagebridge.toml if it exists."""
    if cli_value:
        return Path(cli_value)
    if env := os.environ.get("IMAGEBRIDGE_CONFIG"):
        return Path(env)
    default = Path("imagebridge.toml")
    return default if default.is_file() else None
