"""Discord roles as the config names them: by id (the canonical form), or by name resolved when a server is ready.

`[discord] admin_roles` and `[quota.roles]` may name a role by id or by name. A name is resolved to ids from the
server's role list when the server becomes available (at start, or when the bot joins it) — only in the servers
of `guild_ids` when that is set, since any server's admins can create a role with any name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import discord

log = logging.getLogger(__name__)


class RoleNames:
    """Resolves configured role names per server; `keys(member)` lists a member's roles as ids plus those names."""

    def __init__(self, configured: Iterable[str], guild_ids: Iterable[str] = ()) -> None:
        self.names = sorted({name for name in configured if not name.isdigit()})
        self.guild_ids = {int(guild_id) for guild_id in guild_ids}
        self._aliases: dict[int, dict[int, list[str]]] = {}  # guild id -> role id -> configured names
        if self.names and not self.guild_ids:
            log.warning(
                "role names %s are matched in every server (guild_ids is empty), where any server's admins can make "
                "a role of that name; give role ids instead",
                ", ".join(self.names),
            )

    def learn(self, guild: discord.Guild) -> None:
        """Resolve the configured names against this server's roles (public `Guild.roles`)."""
        if not self.names or (self.guild_ids and guild.id not in self.guild_ids):
            return
        aliases: dict[int, list[str]] = {}
        for name in self.names:
            matches = [role for role in guild.roles if role.name == name and not role.is_default()]
            if len(matches) == 1:
                aliases.setdefault(matches[0].id, []).append(name)
            elif matches:
                log.warning(
                    "role name %r matches %d roles in server %s; none is used, give the role id instead",
                    name,
                    len(matches),
                    guild.id,
                )
        unresolved = sorted(set(self.names) - {name for names in aliases.values() for name in names})
        if unresolved:
            log.info("configured roles not in server %s: %s", guild.id, ", ".join(unresolved))
        self._aliases[guild.id] = aliases

    def keys(self, user: Any) -> list[str]:
        """A member's roles (public `Member.roles`, without @everyone) as ids, each followed by its configured names."""
        roles: list[discord.Role] = list(getattr(user, "roles", []))
        guild = getattr(user, "guild", None)
        aliases = self._aliases.get(guild.id, {}) if guild is not None else {}
        keys: list[str] = []
        for role in roles:
            if role.is_default():
                continue
            keys.append(str(role.id))
            keys.extend(aliases.get(role.id, []))
        return keys
