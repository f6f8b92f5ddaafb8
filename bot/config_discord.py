"""The `[discord]` section. The bot token comes from the DISCORD_TOKEN environment variable, never from here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class DiscordConfig(BaseModel):
    """How the Discord adapter connects, syncs commands and shows progress."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    application_id: str | None = None
    guild_ids: list[str] = Field(default_factory=list, description="sync commands to these guilds; empty = global")
    sync_commands: bool = True
    allow_dms: bool = True
    admin_roles: list[str] = Field(default_factory=list, description="role ids or names with admin rights")
    progress_interval_seconds: float | None = Field(default=None, ge=0, description="default: progress.discord_*")
    token_switch_seconds: float = Field(default=14 * 60, gt=0, description="use the bot token after this age")
    respond_within_seconds: float = Field(default=2.0, gt=0, le=2.8)
    upload_limit_bytes: int = Field(default=DEFAULT_UPLOAD_LIMIT, ge=64 * 1024)
    deliver_attempts: int = Field(default=4, ge=1, le=20)
