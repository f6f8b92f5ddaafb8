"""What to tell the operator when Discord refuses the gateway layout (close codes 4010 and 4011)."""

from __future__ import annotations

import asyncio
import logging

import discord

from bot.config_discord import DiscordConfig

log = logging.getLogger(__name__)

INVALID_SHARD = 4010
SHARDING_REQUIRED = 4011


async def recommended_shards(token: str) -> int | None:
    """`shards` from `GET /gateway/bot` (a fresh HTTP client: the failed one is closed), or None."""
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(token)
        shards, _, _ = await http.get_bot_gateway()
        return int(shards)
    except Exception:  # only advice: the refusal itself is already logged
        return None
    finally:
        await http.close()


async def explain_refusal(error: BaseException, config: DiscordConfig, token: str) -> str | None:
    """A log line naming the setting to change, for a gateway close Discord gives for a shard layout."""
    if not isinstance(error, discord.ConnectionClosed):
        return None
    if error.code == SHARDING_REQUIRED:
        shards = await recommended_shards(token)
        figure = f"shard_count = {shards}" if shards else "shard_count (about one shard per 1,000 servers)"
        current = f"shard_count = {config.shard_count}" if config.sharded else "no sharding"
        return (
            f"Discord refused the connection: 4011 Sharding required (the bot is in more servers than one gateway "
            f"session may hold, 2,500 at most; configured: {current}). Set [discord] {figure} in every process "
            "and give each process its own shard_ids."
        )
    if error.code == INVALID_SHARD:
        return (
            f"Discord refused the connection: 4010 Invalid shard (configured shard_ids {config.local_shards()} of "
            f"shard_count {config.shard_count}). Every process must use the same shard_count, and ids below it."
        )
    return None
