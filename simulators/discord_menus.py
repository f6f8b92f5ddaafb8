"""What users do beyond slash commands and buttons: post messages with images, use a message context-menu
command on one, and submit a modal the bot opened. Payloads as Discord sends them (discord-api-docs
interactions/application-commands.mdx "Message Commands", receiving-and-responding.mdx "Modal Submit").

- A message command arrives as APPLICATION_COMMAND (2) with `data = {"id", "name", "type": 3, "target_id",
  "resolved": {"messages": {target_id: message}}}`. The target message comes with its content, attachments and
  embeds even without the message-content intent (events/gateway.mdx, "Message Content Intent").
- A modal submit is MODAL_SUBMIT (5) with `data = {"custom_id", "components"}` echoing the modal's layout;
  a modal opened from a button also carries the button's `message`. Only a modal the bot opened can be
  submitted, and by the user it was opened for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulators.discord import DiscordSimulator
from simulators.discord_events import base_payload, command_id, place, user_json
from simulators.discord_modals import submitted
from simulators.discord_state import SimInteraction, SimMessage

MESSAGE_COMMAND = 3


def user_message(
    sim: DiscordSimulator,
    channel: str,
    user: str,
    content: str = "",
    files: Sequence[tuple[str, bytes] | tuple[str, bytes, str]] = (),
    embeds: Sequence[dict[str, Any]] = (),
) -> SimMessage:
    """A user posts a message with uploads (served by the CDN, as attachment objects) and embeds."""
    message = SimMessage(id=sim.state.snowflake(), channel_id=channel, content=content, author=user_json(user))
    message.attachments = [sim.add_attachment(*upload) for upload in files]
    message.embeds = list(embeds)
    sim.state.messages[message.id] = message
    return message


def image_embed(sim: DiscordSimulator, name: str, data: bytes, *, rich: bool = False) -> dict[str, Any]:
    """An embed showing an image: a link Discord unfurled (type "image": the picture is its `thumbnail`) or a
    bot's rich embed (`image`)."""
    info = sim.add_attachment(name, data)
    media = {
        "url": info["url"],
        "proxy_url": info["proxy_url"],
        "width": info.get("width"),
        "height": info.get("height"),
    }
    if rich:
        return {"type": "rich", "image": media}
    return {"type": "image", "url": info["url"], "thumbnail": media}


async def message_command(
    sim: DiscordSimulator, name: str, message_id: str, *, where: dict[str, Any] | None = None
) -> SimInteraction:
    """A user picks the app's message command `name` in the context menu of a message."""
    message = sim.state.messages[message_id]
    where = where or place()
    interaction = sim.new_interaction(message.channel_id, kind=2, user_id=where["user"])
    data: dict[str, Any] = {
        "id": command_id(sim, name, where["guild"], MESSAGE_COMMAND),
        "name": name,
        "type": MESSAGE_COMMAND,
        "target_id": message.id,
        "resolved": {"messages": {message.id: message.wire(sim.state.app_id)}},
    }
    if where["guild"] is not None and where["guild"] in sim.state.commands:
        data["guild_id"] = where["guild"]
    payload = base_payload(sim, interaction, 2, where)
    payload["data"] = data
    await sim.dispatch("INTERACTION_CREATE", payload)
    return interaction


async def submit_modal(
    sim: DiscordSimulator, opened: SimInteraction, values: dict[str, str], *, where: dict[str, Any] | None = None
) -> SimInteraction:
    """The user fills in and submits the modal the bot answered `opened` with.

    Raises ValueError where the Discord client would not let it be sent: no modal open, another user, a
    required input left empty, a value outside the input's length limits."""
    if opened.modal is None:
        raise ValueError("no modal was opened for this interaction: there is nothing to submit")
    where = where or place(user=opened.user_id or "42")
    if opened.user_id and where["user"] != opened.user_id:
        raise ValueError("a modal is shown only to the user whose interaction opened it")
    components = submitted(opened.modal, values)
    interaction = sim.new_interaction(
        opened.channel_id, source_message_id=opened.source_message_id, kind=5, user_id=where["user"]
    )
    payload = base_payload(sim, interaction, 5, where)
    payload["data"] = {"custom_id": opened.modal["custom_id"], "components": components}
    if opened.source_message_id is not None:
        payload["message"] = sim.state.messages[opened.source_message_id].wire(sim.state.app_id)
    await sim.dispatch("INTERACTION_CREATE", payload)
    return interaction
