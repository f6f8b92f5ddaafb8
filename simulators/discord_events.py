"""Gateway INTERACTION_CREATE payloads: slash commands, autocomplete and button clicks, as Discord sends them."""

from __future__ import annotations

from typing import Any

from simulators.discord import DiscordSimulator
from simulators.discord_state import UPLOAD_LIMIT, SimInteraction

MANAGE_GUILD = 1 << 5
BASIC = (1 << 10) | (1 << 11) | (1 << 15)  # view channel, send messages, attach files


def user_json(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": f"user{user_id}", "discriminator": "0", "avatar": None, "global_name": None}


def base_payload(
    sim: DiscordSimulator, interaction: SimInteraction, kind: int, place: dict[str, Any]
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": interaction.id, "type": kind, "token": interaction.token, "version": 1,
        "application_id": sim.state.app_id, "channel_id": interaction.channel_id,
        "attachment_size_limit": UPLOAD_LIMIT, "locale": "en-US", "app_permissions": str(BASIC),
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
    }  # fmt: skip
    guild, user = place["guild"], place["user"]
    if guild is None:
        payload["user"] = user_json(user)
        payload["channel"] = {"id": interaction.channel_id, "type": 1, "recipients": [user_json(user)]}
        payload["context"] = 1
        return payload
    perms = BASIC | (MANAGE_GUILD if place["admin"] else 0)
    payload["guild_id"] = guild
    payload["member"] = {
        "user": user_json(user), "roles": place["roles"], "flags": 0, "joined_at": "2025-01-01T00:00:00+00:00",
        "permissions": str(perms), "deaf": False, "mute": False,
    }  # fmt: skip
    payload["channel"] = {
        "id": interaction.channel_id, "type": 0, "guild_id": guild, "name": "general", "position": 0,
        "nsfw": place["nsfw"], "permission_overwrites": [], "parent_id": None,
    }  # fmt: skip
    return payload


def place(
    user: str = "42", guild: str | None = "500", admin: bool = False, nsfw: bool = False, roles: list[str] | None = None
) -> dict[str, Any]:
    return {"user": user, "guild": guild, "admin": admin, "nsfw": nsfw, "roles": roles or []}


async def slash(
    sim: DiscordSimulator,
    name: str,
    options: dict[str, Any] | None = None,
    *,
    channel: str = "700",
    where: dict[str, Any] | None = None,
    attachment: tuple[str, bytes] | None = None,
    autocomplete: str | None = None,
    files: dict[str, tuple[str, bytes] | tuple[str, bytes, str]] | None = None,
) -> SimInteraction:
    """Send a slash command (or, with `autocomplete=option`, an autocomplete request) through the gateway.

    `attachment` fills the `image` option; `files` fills attachment options by name with (filename, bytes[,
    content type]): each becomes an ATTACHMENT (11) option whose value is the id of an entry in
    `resolved.attachments`, as Discord sends a command with uploads."""
    where = where or place()
    if where["guild"] is None and sim.state.commands and not _offered(sim, name, "global"):
        # Discord offers a guild's commands only in that guild: a DM has the global ones only.
        raise ValueError(f"/{name} is not a global command, so Discord does not offer it in a DM")
    _check_offered(sim, name, where["guild"], [*(options or {}), *(files or {}), *(["image"] if attachment else [])])
    interaction = sim.new_interaction(channel, kind=4 if autocomplete else 2, user_id=where["user"])
    wire_options = [{"name": k, "type": _option_type(v), "value": v} for k, v in (options or {}).items()]
    if autocomplete:
        for option in wire_options:
            option["focused"] = option["name"] == autocomplete
    data: dict[str, Any] = {"id": command_id(sim, name, where["guild"]), "name": name, "type": 1}
    uploads = dict(files or {})
    if attachment is not None:
        uploads["image"] = attachment
    resolved: dict[str, Any] = {}
    for option_name, upload in uploads.items():
        info = sim.add_attachment(*upload)
        wire_options.append({"name": option_name, "type": 11, "value": info["id"]})
        resolved[info["id"]] = info
    if resolved:
        data["resolved"] = {"attachments": resolved}
    data["options"] = wire_options
    if where["guild"] is not None and where["guild"] in sim.state.commands:
        data["guild_id"] = where["guild"]
    payload = base_payload(sim, interaction, interaction.kind, where)
    payload["data"] = data
    await sim.dispatch("INTERACTION_CREATE", payload)
    return interaction


async def click(
    sim: DiscordSimulator, message_id: str, custom_id: str, *, where: dict[str, Any] | None = None
) -> SimInteraction:
    """Press a button on a message."""
    message = sim.state.messages[message_id]
    where = where or place()
    interaction = sim.new_interaction(message.channel_id, source_message_id=message_id, kind=3, user_id=where["user"])
    payload = base_payload(sim, interaction, 3, where)
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    payload["message"] = message.wire(sim.state.app_id)
    await sim.dispatch("INTERACTION_CREATE", payload)
    return interaction


def _offered(sim: DiscordSimulator, name: str, scope: str) -> bool:
    return any(command["name"] == name for command in sim.state.commands.get(scope, []))


def _option_type(value: Any) -> int:
    """Discord's option types as the values arrive: BOOLEAN 5, INTEGER 4, STRING 3."""
    if isinstance(value, bool):
        return 5
    return 4 if isinstance(value, int) else 3


def _check_offered(sim: DiscordSimulator, name: str, guild: str | None, given: list[str]) -> None:
    """The Discord client sends only options the registered command has (no fourth file where it takes three)."""
    for key in (guild or "global", "global"):
        for command in sim.state.commands.get(key, []):
            if command["name"] == name and command.get("type", 1) == 1:
                offered = {option["name"] for option in command.get("options") or []}
                if unknown := [option for option in given if option not in offered]:
                    raise ValueError(f"/{name} has no option {unknown}: the Discord client cannot send it")
                return


def command_id(sim: DiscordSimulator, name: str, guild: str | None, kind: int = 1) -> str:
    for key in (guild or "global", "global"):
        for command in sim.state.commands.get(key, []):
            if command["name"] == name and command.get("type", 1) == kind:
                return str(command["id"])
    return "1"
