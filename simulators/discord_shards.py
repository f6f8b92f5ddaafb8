"""Gateway sharding in the Discord simulator, as Discord documents it (events/gateway.mdx, "Sharding").

- IDENTIFY may carry `shard: [shard_id, num_shards]`; an id outside 0..num_shards-1 closes the socket with 4010
  "Invalid shard".
- A guild belongs to shard `(guild_id >> 22) % num_shards`: READY lists, and GUILD_CREATE / INTERACTION_CREATE
  (any event carrying a `guild_id`) go to, only the sessions of that shard. DMs go to shard 0 only.
- A session that would hold more guilds than one shard may (2,500 on Discord; `guilds_per_shard` here) is closed
  with 4011 "Sharding required".
- `GET /gateway/bot` answers `url`, the recommended `shards` and `session_start_limit` (`total`, `remaining`,
  `reset_after`, `max_concurrency`); each IDENTIFY uses one session start.
- READY carries the `shard` pair when the IDENTIFY sent one.
- At most `max_concurrency` IDENTIFYs per 5 seconds, in buckets `shard_id % max_concurrency`; one more gets
  opcode 9 Invalid Session (`d: false`). Off unless `identify_window` is set (Discord's is 5 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GUILDS_PER_SHARD = 2500  # Discord's limit for one session
DAILY_SESSION_STARTS = 1000
INVALID_SHARD = (4010, "Invalid shard")
SHARDING_REQUIRED = (4011, "Sharding required")


def shard_of(guild_id: str | int, num_shards: int) -> int:
    """The shard a guild's events go to."""
    return (int(guild_id) >> 22) % num_shards


def guild_on_shard(shard_id: int, num_shards: int, index: int = 0) -> str:
    """A guild id (a snowflake) that lands on `shard_id` of `num_shards`; `index` gives different ones."""
    return str((shard_id + index * num_shards + 1000 * num_shards) << 22)


@dataclass
class Sharding:
    """The gateway's sharding rules and the session-start budget `GET /gateway/bot` reports."""

    guilds_per_shard: int = GUILDS_PER_SHARD
    max_concurrency: int = 1
    session_starts: int = DAILY_SESSION_STARTS
    starts_used: int = 0
    identify_window: float = 0.0  # seconds per bucket between IDENTIFYs; 0: not enforced
    identified_at: dict[int, float] = field(default_factory=dict)  # rate-limit bucket -> last IDENTIFY
    invalid_sessions: int = 0  # IDENTIFYs answered with opcode 9 for coming too soon

    def too_soon(self, shard: tuple[int, int] | None, now: float) -> bool:
        """Whether this IDENTIFY exceeds `max_concurrency` per window (answered with opcode 9)."""
        bucket = (shard[0] if shard else 0) % self.max_concurrency
        last = self.identified_at.get(bucket)
        if self.identify_window > 0 and last is not None and now - last < self.identify_window:
            self.invalid_sessions += 1
            return True
        self.identified_at[bucket] = now
        return False

    @staticmethod
    def parse(identify: dict[str, Any]) -> tuple[int, int] | None:
        """The `[shard_id, num_shards]` an IDENTIFY sent, or None for an unsharded session."""
        shard = identify.get("shard")
        if shard is None:
            return None
        if not (isinstance(shard, list) and len(shard) == 2 and all(isinstance(n, int) for n in shard)):
            return (-1, 0)  # rejected below as an invalid shard
        return shard[0], shard[1]

    def refusal(self, shard: tuple[int, int] | None, guild_ids: Iterable[str]) -> tuple[int, str] | None:
        """The close code and reason for this IDENTIFY, or None when the session may start."""
        self.starts_used += 1
        if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            return INVALID_SHARD
        held = [guild for guild in guild_ids if owns(shard, guild)]
        if len(held) > self.guilds_per_shard:
            return SHARDING_REQUIRED
        return None

    def gateway_bot(self, url: str, guild_count: int) -> dict[str, Any]:
        """The body of `GET /gateway/bot`: recommended shards (one per started 1,000 guilds, fewer if a shard may
        hold fewer, at least one)."""
        return {
            "url": url,
            "shards": max(1, math.ceil(guild_count / min(1000, self.guilds_per_shard))),
            "session_start_limit": {
                "total": self.session_starts,
                "remaining": max(0, self.session_starts - self.starts_used),
                "reset_after": 14_400_000,
                "max_concurrency": self.max_concurrency,
            },
        }


def owns(shard: tuple[int, int] | None, guild_id: str | None) -> bool:
    """Whether a session receives an event of this guild (None: a DM or other guild-less event)."""
    if shard is None:
        return True
    if guild_id is None:
        return shard[0] == 0
    return shard_of(guild_id, shard[1]) == shard[0]
