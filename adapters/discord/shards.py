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


async def raise_refusal(error: BaseException, config: DiscordConfig, token: str) -> None:
    """For a gateway close Discord gives for a shard layout (4010, 4011), RuntimeError naming what to change."""
    if not isinstance(error, discord.ConnectionClosed):
        return
    if error.code == SHARDING_REQUIRED:
        shards = await recommended_shards(token)
        raise RuntimeError(
            "Discord refused the connection: 4011 Sharding required (the bot is in more servers than one gateway "
            f"session may hold, 2,500 at most; configured shard_count: {config.shard_count}). Set [discord] "
            f"shard_count = {shards or '<about one per 1,000 servers>'} in every process and give each process "
            "its own shard_ids."
        )
    if error.code == INVALID_SHARD:
        raise RuntimeError(
            f"Discord refused the connection: 4010 Invalid shard (configured shard_ids {config.local_shards()} of "
            f"shard_count {config.shard_count}). Every process must use the same shard_count, and ids below it."
        )
