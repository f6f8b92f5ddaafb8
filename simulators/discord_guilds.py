"""Guilds as the gateway and REST show them to a bot: READY lists them unavailable, then GUILD_CREATE sends each
with its roles (the `guilds` intent), and `GET /guilds/{id}/roles` serves the same roles.

Channels are not modelled: each interaction carries its own channel, as Discord's payload does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimGuild:
    """A server the bot is in. `roles` maps role id to name; @everyone (id = the guild id) is always there."""

    id: str
    name: str = "test server"
    roles: dict[str, str] = field(default_factory=dict)
    owner_id: str = "1"

    def role_json(self) -> list[dict[str, Any]]:
        named = {self.id: "@everyone", **self.roles}
        return [_role(role_id, name, position) for position, (role_id, name) in enumerate(named.items())]

    def unavailable(self) -> dict[str, Any]:
        """How READY lists it."""
        return {"id": self.id, "unavailable": True}

    def create_event(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        """The GUILD_CREATE that follows READY."""
        return {
            "id": self.id, "name": self.name, "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": self.owner_id, "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "roles": self.role_json(),
            "emojis": [], "stickers": [], "features": [], "mfa_level": 0, "application_id": None,
            "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "joined_at": "2025-01-01T00:00:00+00:00", "large": False,
            "unavailable": False, "member_count": 2, "voice_states": [], "channels": [], "threads": [],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "members": [
                {"user": bot_user, "roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False,
                 "mute": False, "flags": 0}
            ],
        }  # fmt: skip


def _role(role_id: str, name: str, position: int) -> dict[str, Any]:
    return {
        "id": role_id, "name": name, "color": 0, "colors": {"primary_color": 0}, "hoist": False, "icon": None,
        "unicode_emoji": None, "position": position, "permissions": "1071698660929", "managed": False,
        "mentionable": False, "flags": 0,
    }  # fmt: skip
