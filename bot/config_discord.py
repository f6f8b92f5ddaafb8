"""The `[discord]` section. The bot token comes from the DISCORD_TOKEN environment variable, never from here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    shard_count: int | None = Field(default=None, description="gateway shards of the whole bot; unset = no sharding")
    shard_ids: list[int] | None = Field(default=None, description="this process's shards; unset = all of them")

    @model_validator(mode="after")
    def _check_shards(self) -> DiscordConfig:
        """Refuse a shard layout Discord would close (4010 "Invalid shard") before anything connects."""
        count, ids = self.shard_count, self.shard_ids
        if count is None:
            if ids is not None:
                raise ValueError("shard_ids needs shard_count (the same total in every process)")
            return self
        if count < 1:
            raise ValueError(f"shard_count must be at least 1 (got {count})")
        if ids is not None:
            if not ids:
                raise ValueError("shard_ids is empty: list this process's shards, or leave it out for all")
            if bad := sorted({i for i in ids if not 0 <= i < count}):
                raise ValueError(f"shard_ids {bad} out of range: ids run from 0 to shard_count - 1 = {count - 1}")
            if len(set(ids)) != len(ids):
                raise ValueError(f"shard_ids lists a shard twice: {ids}")
        return self

    @property
    def sharded(self) -> bool:
        return self.shard_count is not None

    def local_shards(self) -> list[int]:
        """The shards this process connects (none set: the one unsharded connection, shard 0)."""
        if self.shard_count is None:
            return [0]
        return list(self.shard_ids) if self.shard_ids is not None else list(range(self.shard_count))

    @property
    def holds_shard_zero(self) -> bool:
        """Shard 0 gets the DMs; its process alone syncs the commands."""
        return 0 in self.local_shards()
