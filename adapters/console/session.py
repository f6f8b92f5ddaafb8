"""The console adapter: chat commands typed in a terminal, answered in the same terminal."""

from __future__ import annotations

import asyncio
import logging
import sys

from adapters.console.images import read_images, take_paths
from adapters.console.outbound import ConsoleOutbound
from adapters.console.reader import LineReader
from bot.errors import InvalidRequest, UserError
from bot.i18n import t
from bot.models import DeliveryState, Destination
from bot.replies import Reply
from commands.context import Invocation, Services, language_for
from commands.dispatch import dispatch_button, dispatch_text
from commands.parser import is_command
from commands.registry import EDIT, IMAGINE

EDIT_NAMES = {EDIT.name, *EDIT.aliases}
IMAGINE_NAMES = {IMAGINE.name, *IMAGINE.aliases}

PROMPT = "imagebridge> "


def engine_id(typed: str) -> str:
    """A typed button id (`vary:<job>:1`, image numbers from 1) as the engine's id (indexes from 0)."""
    parts = typed.split(":")
    if len(parts) == 3 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) - 1) if int(parts[2]) > 0 else "-1"
    return ":".join(parts)


class ConsoleSession:
    """One local user in one console 'server'. `admin` makes them a chat admin (the operator's terminal)."""

    def __init__(
        self, services: Services, outbound: ConsoleOutbound, user: str = "console", *, admin: bool = False
    ) -> None:
        self.services = services
        self.outbound = outbound
        self.admin = admin
        self.destination = Destination(
            platform="console", server_id="local", channel_id="terminal", user_id=user, user_name=user
        )
        self.jobs: list[str] = []  # jobs this session started, waited for at the end of piped input

    def invocation(self) -> Invocation:
        return Invocation(destination=self.destination, is_admin=self.admin, channel_nsfw=True)

    async def handle(self, line: str) -> Reply | None:
        """Run one typed line: a /command, or a button id like `reroll:abc123` or `vary:abc123:1`."""
        line = line.strip()
        if not line:
            return None
        if is_command(line):
            reply = await self.command(line)
        elif ":" in line.split()[0]:
            reply = await dispatch_button(self.services, self.invocation(), engine_id(line.split()[0]))
        else:
            reply = Reply.error(t(None, "console.not_command"))
        if reply is not None:
            if reply.job_id is not None and reply.job_id not in self.jobs:
                self.jobs.append(reply.job_id)
            self.outbound.show(reply)
        return reply

    async def command(self, line: str) -> Reply | None:
        """A typed command; `--image <path>` options become the images of /edit or /imagine (img2img)."""
        invocation = self.invocation()
        line, paths = take_paths(line)
        name = line.split(maxsplit=1)[0][1:].lower()
        if paths and name in EDIT_NAMES | IMAGINE_NAMES:
            try:
                if name in IMAGINE_NAMES and len(paths) > 1:
                    raise InvalidRequest.of("edit.console_one_image")
                images = await read_images(paths, self.services.settings.limits.max_source_bytes)
            except UserError as exc:
                return Reply.error(exc.localized(await language_for(self.services, invocation)))
            if name in EDIT_NAMES:
                invocation.reference_images = images
            else:
                invocation.source_image = images[0]
        elif paths:
            line = f"{line} --image {paths[0]}"  # the command's own answer: it has no such option
        return await dispatch_text(self.services, invocation, line)

    async def interact(self, reader: LineReader | None = None) -> None:
        """Read commands until /quit or the end of input; at the end of input, wait for this session's jobs."""
        # httpx logs every poll at INFO; between progress redraws in a terminal that is only noise.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        reader = reader or LineReader(sys.stdin, self.outbound.stream)
        self.outbound.write(t(None, "console.welcome"))
        with reader:
            while True:
                self.outbound.prompt = (lambda: PROMPT + reader.typed()) if reader.interactive else None
                line = await reader.readline(PROMPT)
                self.outbound.prompt = None
                if line is None:
                    await self.finish_jobs()
                    return
                if line.strip() in ("/quit", "/exit"):
                    return
                await self.handle(line)

    async def finish_jobs(self) -> None:
        """Wait until every job this session started has been delivered (the input ended first)."""
        pending = [job_id for job_id in self.jobs if await self._unfinished(job_id)]
        if not pending:
            return
        self.outbound.write(t(None, "console.waiting", count=len(pending)))
        await asyncio.gather(*(self.services.jobs.wait_delivered(job_id) for job_id in pending))

    async def _unfinished(self, job_id: str) -> bool:
        job = await self.services.store.get(job_id)
        return job is not None and job.delivery not in (DeliveryState.DELIVERED, DeliveryState.UNDELIVERABLE)
