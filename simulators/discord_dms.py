"""Direct messages in the Discord simulator, as Discord answers them.

`POST /users/@me/channels {"recipient_id": id}` opens (or returns the same) DM channel, type 1, with the user
as its one recipient. Opening always works; sending to a user who does not accept DMs from the server's
members (or has blocked the bot) fails with HTTP 403, code 50007 "Cannot send messages to this user".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CANNOT_SEND = (403, 50007, "Cannot send messages to this user")


class DirectMessages:
    """DM channels by user, and the users whose DMs are closed to the bot."""

    def __init__(self, snowflake: Callable[[], str]) -> None:
        self._snowflake = snowflake
        self.channels: dict[str, str] = {}  # user id -> DM channel id
        self.closed: set[str] = set()  # users who accept no DMs from the bot

    def open(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The DM channel object for `recipient_id`, or None when the body is not one Discord accepts."""
        recipient = str(payload.get("recipient_id") or "")
        if not recipient.isdigit():
            return None
        channel_id = self.channels.setdefault(recipient, self._snowflake())
        user = {"id": recipient, "username": f"user{recipient}", "discriminator": "0", "avatar": None}
        return {"id": channel_id, "type": 1, "last_message_id": None, "recipients": [{**user, "global_name": None}]}

    def refusal(self, channel_id: str) -> tuple[int, int, str] | None:
        """Why a message to this channel is refused: only a DM channel whose user has closed DMs is."""
        for user, dm in self.channels.items():
            if dm == channel_id and user in self.closed:
                return CANNOT_SEND
        return None

    def user_of(self, channel_id: str) -> str | None:
        return next((user for user, dm in self.channels.items() if dm == channel_id), None)
