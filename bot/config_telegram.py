"""The `[telegram]` section. The bot token is a secret: TELEGRAM_TOKEN (environment or secrets folder), never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bot.secret_source import SecretSource

TOKEN_ENV = "TELEGRAM_TOKEN"


class TelegramConfig(BaseModel):
    """Telegram bot settings; `api_base_url` / `file_base_url` point at a self-hosted Bot API server or a simulator."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    allowed_chats: list[int] = Field(default_factory=list, description="chat ids the bot answers in; empty = all")
    allowed_users: list[int] = Field(default_factory=list, description="user ids the bot answers; empty = all")
    admin_users: list[int] = Field(default_factory=list, description="deprecated: [access] bot_admins telegram:<id>")
    # None: use [progress] telegram_private_interval_seconds / telegram_group_interval_seconds (1 s / 3 s).
    private_progress_interval_seconds: float | None = Field(default=None, ge=0)
    group_progress_interval_seconds: float | None = Field(default=None, ge=0)
    poll_timeout_seconds: int = Field(default=10, ge=0, le=50, description="getUpdates long-poll timeout")
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="getFile limit (20 MB)")
    max_send_attempts: int = Field(default=30, ge=1, description="tries per result message across 429s")
    # A send whose answer comes too late is sent again (a duplicate): uploads get far longer than other calls.
    read_timeout_seconds: float = Field(default=30.0, gt=0, description="answer timeout of ordinary calls")
    upload_timeout_seconds: float = Field(default=120.0, gt=0, description="answer timeout of photo uploads")
    album_wait_seconds: float = Field(
        default=1.0, ge=0, le=10, description="/edit on an album: wait this long after its last item for more"
    )
    flood_time_scale: float = Field(
        default=1.0, gt=0, le=1, description="shrinks the bot's own flood-limit windows (1 = Telegram's; simulators)"
    )

    @field_validator("api_base_url", "file_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def token_from_env() -> SecretStr | None:
    """The bot token from TELEGRAM_TOKEN (the environment, else IMAGEBRIDGE_SECRETS_DIR), or None when not set."""
    return SecretSource().get(TOKEN_ENV)
