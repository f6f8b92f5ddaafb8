"""The console adapter: chat commands typed in a terminal, answered in the same terminal."""

from __future__ import annotations

import asyncio
import sys

from adapters.console.outbound import ConsoleOutbound
from bot.models import Destination
from bot.replies import Reply
from commands.context import Invocation, Services
from commands.dispatch import dispatch_button, dispatch_text
from commands.parser import is_command

PROMPT = "imagebridge> "


class ConsoleSession:
    """One local user in one console 'server'."""

    def __init__(self, services: Services, outbound: ConsoleOutbound, user: str = "console") -> None:
        self.services = services
        self.outbound = outbound
        self.destination = Destination(
            platform="console", server_id="local", channel_id="terminal", user_id=user, user_name=user
        )

    def invocation(self) -> Invocation:
        return Invocation(destination=self.destination, is_admin=True, channel_nsfw=True)

    async def handle(self, line: str) -> Reply | None:
        """Run one typed line: a /command, or a button id like `reroll:abc123`."""
        line = line.strip()
        if not line:
            return None
        if is_command(line):
            reply = await dispatch_text(self.services, self.invocation(), line)
        elif ":" in line.split()[0]:
            reply = await dispatch_button(self.services, self.invocation(), line.split()[0])
        else:
            reply = Reply.error("Type a command such as /imagine a red fox, or /help.")
        if reply is not None:
            self.outbound.show(reply)
        return reply

    async def interact(self) -> None:
        """Read commands until end of input or /quit."""
        self.outbound.write("Type /help for commands, /quit to leave. Button ids (e.g. reroll:<job>) work too.")
        while True:
            self.outbound.stream.write(PROMPT)
            self.outbound.stream.flush()
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or line.strip() in ("/quit", "/exit"):
                return
            await self.handle(line)
