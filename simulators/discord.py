"""A Discord REST + gateway simulator on loopback, strict enough to run the real discord.py against.

Point discord.py at it with `patch_discord(url)` (Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from simulators.discord_commands import InvalidCommand, check_commands
from simulators.discord_dms import DirectMessages
from simulators.discord_guilds import SimGuild
from simulators.discord_modals import FormError, check_modal, check_response_type
from simulators.discord_ratelimit import Limited, RateLimits
from simulators.discord_shards import Sharding, owns
from simulators.discord_state import (
    CALLBACK_DEADLINE,
    Recorded,
    SimInteraction,
    SimMessage,
    SimState,
    image_facts,
)
from simulators.discord_wire import SimError, check_choices, check_message, read_body

log = logging.getLogger(__name__)
API = "/api/v10"


class DiscordSimulator:
    """REST under /api/v10, the gateway at /gateway, attachments under /cdn."""

    def __init__(
        self, app_id: str = "1000", *, rate_limits: bool = True, time_scale: float = 1.0, guilds_per_shard: int = 2500
    ) -> None:
        self.state = SimState(app_id)
        self.sharding = Sharding(guilds_per_shard=guilds_per_shard)  # IDENTIFY's `shard`, 4010/4011, /gateway/bot
        self.sessions: dict[web.WebSocketResponse, tuple[int, int] | None] = {}  # socket -> its [shard, count]
        self.closed_with: list[int] = []  # close codes the gateway sent, in order
        self.dms = DirectMessages(self.state.snowflake)  # DM channels; `dms.closed` holds users who refuse DMs
        self.limits = RateLimits(enabled=rate_limits, time_scale=time_scale)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 1
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/{name}", self._cdn)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- gateway ---------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame["op"] == 1:
                await ws.send_json({"op": 11})
            elif frame["op"] == 2:
                shard = Sharding.parse(frame.get("d") or {})
                if self.sharding.too_soon(shard, time.monotonic()):
                    await ws.send_json({"op": 9, "d": False})  # Invalid Session: identify again later
                    continue
                refused = self.sharding.refusal(shard, self.state.guilds)
                if refused is not None:
                    self.closed_with.append(refused[0])
                    await self.state.notify()
                    await ws.close(code=refused[0], message=refused[1].encode())
                    break
                await self._identified(ws, shard)
        self.sessions.pop(ws, None)
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws

    async def _identified(self, ws: web.WebSocketResponse, shard: tuple[int, int] | None) -> None:
        """READY (with the session's shard), then GUILD_CREATE for each guild on that shard (the `guilds` intent)."""
        self._sockets.append(ws)
        self.sessions[ws] = shard
        await ws.send_json({"op": 0, "t": "READY", "s": self._next_seq(), "d": self._ready(shard)})
        for guild in self.state.guilds.values():
            if owns(shard, guild.id):
                event = {"op": 0, "t": "GUILD_CREATE", "s": self._next_seq(), "d": guild.create_event(self._bot_user())}
                await ws.send_json(event)
        await self.state.notify()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _ready(self, shard: tuple[int, int] | None = None) -> dict[str, Any]:
        ready: dict[str, Any] = {
            "v": 10,
            "user": self._bot_user(),
            "guilds": [guild.unavailable() for guild in self.state.guilds.values() if owns(shard, guild.id)],
            "session_id": secrets.token_hex(8),
            "resume_gateway_url": self.url.replace("http", "ws") + "/gateway",
            "application": {"id": self.state.app_id, "flags": 0},
        }
        if shard is not None:
            ready["shard"] = list(shard)
        return ready

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.state.app_id, "username": "imagebridge", "discriminator": "0", "avatar": None, "bot": True}

    @property
    def connected(self) -> bool:
        return bool(self._sockets)

    def shards_connected(self) -> list[tuple[int, int] | None]:
        """The [shard, count] of each open session (None: unsharded)."""
        return [self.sessions.get(ws) for ws in self._sockets]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event to the sessions that own it: its guild's shard, or shard 0 for a DM."""
        guild_id = data.get("guild_id")
        for ws in list(self._sockets):
            if not owns(self.sessions.get(ws), None if guild_id is None else str(guild_id)):
                continue
            await ws.send_json({"op": 0, "t": event, "s": self._next_seq(), "d": data})

    # ---- REST ------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data, kind = self.state.attachments.get(name), self.state.attachment_types.get(name, "image/png")
        if data is None:  # a file the bot uploaded: m<message id>-<index>-<filename>
            message_id, _, rest = name[1:].partition("-")
            message = self.state.messages.get(message_id)
            index = rest.partition("-")[0]
            if message is not None and not message.deleted and index.isdigit() and int(index) < len(message.files):
                data, kind = message.files[int(index)][1], "application/octet-stream"
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type=kind)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        payload, files = await read_body(request)
        record = Recorded(request.method, request.path[len(API) :], payload, files)
        self.state.requests.append(record)
        limit_headers: dict[str, str] = {}
        try:
            try:
                limit_headers = self.limits.check(record.method, record.path)
            except Limited as limited:
                limit_headers = limited.headers
                self.state.retry_after_now = limited.retry_after
                raise SimError(429, 0, "You are being rate limited.") from limited
            if self.state.rate_limit_left > 0 and record.method in ("POST", "PATCH") and "/commands" not in record.path:
                self.state.rate_limit_left -= 1
                if "/callback" not in record.path:
                    raise SimError(429, 0, "You are being rate limited.")
            result = self._route(record, request)
            status, body = (204, None) if result is None else (200, result)
        except SimError as exc:
            status, body = exc.status, {"code": exc.code, "message": exc.message}
            if exc.errors is not None:
                body["errors"] = exc.errors
            if exc.status == 429:
                retry = self.state.retry_after_now or self.state.retry_after
                self.state.retry_after_now = 0.0
                body = {"message": exc.message, "retry_after": retry, "global": False}
        record.status = status
        await self.state.notify()
        headers = {**limit_headers, **({"Via": "1.1 google"} if status == 429 else {})}
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            body=json.dumps(body).encode(), status=status, headers=headers, content_type="application/json"
        )

    def _route(self, rec: Recorded, request: web.Request) -> Any:
        parts = rec.path.strip("/").split("/")
        app = self.state.app_id
        if rec.path == "/users/@me":
            return self._bot_user()
        if rec.path == "/gateway/bot":
            return self.sharding.gateway_bot(self.url.replace("http", "ws") + "/gateway", len(self.state.guilds))
        if rec.path == "/oauth2/applications/@me":
            return {
                "id": app, "name": "imagebridge", "description": "", "icon": None, "bot_public": True,
                "bot_require_code_grant": False, "owner": self._bot_user(), "verify_key": "0" * 64,
                "interactions_endpoint_url": None, "flags": 0,
            }  # fmt: skip
        if parts[0] == "applications" and parts[-1] == "commands" and rec.method == "PUT":
            key = parts[3] if len(parts) == 5 else "global"
            items = rec.payload.get("_list", [])
            try:
                check_commands(items)
            except InvalidCommand as exc:
                raise SimError(400, 50035, f"Invalid Form Body: {exc}") from exc
            self.state.commands[key] = [
                {**c, "type": c.get("type", 1), "description": c.get("description") or "",
                 "id": self.state.snowflake(), "application_id": app}
                for c in items
            ]  # fmt: skip  # a context-menu command reads back with description "" (application-commands.mdx)
            return self.state.commands[key]
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], parts[2], rec)
        if parts[0] == "webhooks":
            return self._webhook(parts[2], parts[3:], rec)
        if parts[0] == "guilds" and parts[2:] == ["roles"] and rec.method == "GET":
            guild = self.state.guilds.get(parts[1])
            if guild is None:
                raise SimError(404, 10004, "Unknown Guild")
            return guild.role_json()
        if rec.path == "/users/@me/channels" and rec.method == "POST":
            channel = self.dms.open(rec.payload)
            if channel is None:
                raise SimError(400, 50035, "Invalid Form Body: recipient_id: Value is not a snowflake.")
            return channel
        if parts[0] == "channels" and parts[2] == "messages":
            return self._channel(parts[1], parts[3:], rec)
        raise SimError(404, 0, f"not simulated: {rec.method} {rec.path}")

    def _callback(self, interaction_id: str, token: str, rec: Recorded) -> Any:
        interaction = self.state.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise SimError(404, 10062, "Unknown interaction")
        if interaction.answered:
            raise SimError(400, 40060, "Interaction has already been acknowledged.")
        if self.state.now() - interaction.created > CALLBACK_DEADLINE:
            interaction.late = True
            raise SimError(404, 10062, "Unknown interaction")
        kind = rec.payload.get("type")
        data = rec.payload.get("data") or {}
        try:
            check_response_type(interaction.kind, kind, interaction.source_message_id is not None)
            if kind == 9:
                check_modal(data)
        except FormError as exc:
            raise SimError.form(exc) from exc
        interaction.answered = True
        result: dict[str, Any] = {"interaction": {"id": interaction_id, "type": interaction.kind}}
        if kind == 8:
            interaction.choices = check_choices(data.get("choices"))
            return None
        if kind == 9:
            interaction.modal = data  # the user now sees it; `submit_modal` sends what they typed
        elif kind in (4, 5):
            check_message(data, rec.files)
            message = self._new_message(interaction.channel_id, data, rec.files)
            message.ephemeral = bool((data.get("flags") or 0) & 64)
            interaction.response_id, interaction.ephemeral = message.id, message.ephemeral
            interaction.loading = kind == 5
            result["interaction"].update(response_message_id=message.id, response_message_ephemeral=message.ephemeral)
            result["resource"] = {"type": kind, "message": message.wire(self.state.app_id)}
        elif kind == 7 and interaction.source_message_id:
            check_message(data, rec.files)
            self._edit(self.state.messages[interaction.source_message_id], data, rec.files)
        elif kind == 6:
            interaction.response_id = interaction.source_message_id
        return result

    def _webhook(self, token: str, rest: list[str], rec: Recorded) -> Any:
        """Followups (POST) and edits of the interaction's messages (receiving-and-responding.mdx, "Create
        Followup Message": right after a DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, a followup edits the loading
        message instead, and keeps its ephemeral state)."""
        if self.state.token_expired(token):
            raise SimError(401, 50027, "Invalid Webhook Token")
        interaction = next(i for i in self.state.interactions.values() if i.token == token)
        if not rest and rec.method == "POST":
            check_message(rec.payload, rec.files)
            loading = self.state.messages.get(interaction.response_id or "") if interaction.loading else None
            interaction.loading = False
            if loading is not None:  # the first followup after a deferral edits the loading message, flags kept
                self._edit(loading, rec.payload, rec.files)
                return loading.wire(self.state.app_id)
            message = self._new_message(interaction.channel_id, rec.payload, rec.files)
            message.ephemeral = bool((rec.payload.get("flags") or 0) & 64)
            return message.wire(self.state.app_id)
        target = interaction.response_id if rest[1] == "@original" else rest[1]
        if rest[1] == "@original" and rec.method in ("PATCH", "DELETE"):
            interaction.loading = False  # the loading message got its content, or is gone
        message = self.state.messages.get(target or "")
        if message is None or message.deleted:
            raise SimError(404, 10008, "Unknown Message")
        return self._modify(message, rec)

    def _channel(self, channel_id: str, rest: list[str], rec: Recorded) -> Any:
        if not rest and rec.method == "POST":
            check_message(rec.payload, rec.files)
            refused = self.dms.refusal(channel_id)
            if refused is not None:
                raise SimError(*refused)
            return self._new_message(channel_id, rec.payload, rec.files).wire(self.state.app_id)
        message = self.state.messages.get(rest[0])
        if message is None or message.deleted or message.ephemeral or message.channel_id != channel_id:
            raise SimError(404, 10008, "Unknown Message")
        return self._modify(message, rec)

    def _modify(self, message: SimMessage, rec: Recorded) -> Any:
        if rec.method == "DELETE":
            message.deleted = True
            return None
        if rec.method == "PATCH":
            check_message(rec.payload, rec.files)
            self._edit(message, rec.payload, rec.files)
        return message.wire(self.state.app_id)

    def _new_message(self, channel_id: str, data: dict[str, Any], files: list[tuple[str, bytes]]) -> SimMessage:
        message = SimMessage(id=self.state.snowflake(), channel_id=channel_id, cdn=self.url)
        self._edit(message, data, files)
        message.edits = 0
        self.state.messages[message.id] = message
        return message

    def _edit(self, message: SimMessage, data: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
        message.edits += 1
        if "content" in data:
            message.content = data["content"] or ""
        if "components" in data:
            message.components = data["components"] or []
        if "attachments" in data or files:
            kept = {str(a.get("id")) for a in data.get("attachments", []) if not str(a.get("id")).isdigit()}
            message.files = [(n, d) for n, d in message.files if n in kept] + files
        message.allowed_mentions = data.get("allowed_mentions", message.allowed_mentions)
        if "embeds" in data:
            message.embeds = list(data["embeds"] or [])

    # ---- injection -------------------------------------------------------------------------------

    def new_interaction(
        self, channel_id: str, source_message_id: str | None = None, kind: int = 2, user_id: str = ""
    ) -> SimInteraction:
        interaction = SimInteraction(
            id=self.state.snowflake(),
            token="tok" + secrets.token_hex(16),
            channel_id=channel_id,
            created=self.state.now(),
            source_message_id=source_message_id,
            kind=kind,
            user_id=user_id,
        )
        self.state.interactions[interaction.id] = interaction
        return interaction

    def add_guild(self, guild_id: str, roles: dict[str, str] | None = None) -> SimGuild:
        """A server the bot is in (before the bot connects), with roles by id: name."""
        guild = self.state.guilds[guild_id] = SimGuild(guild_id, roles=dict(roles or {}))
        return guild

    def add_attachment(self, name: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        """A file a user uploaded: its attachment object (content type and image size as Discord reports them)."""
        facts = image_facts(name, data)
        if content_type is not None:
            facts["content_type"] = content_type
        attachment_id = self.state.snowflake()
        key = f"a{attachment_id}-{name}"  # two uploads may share a file name
        self.state.attachments[key] = data
        self.state.attachment_types[key] = facts["content_type"]
        return {
            "id": attachment_id, "filename": name, "size": len(data),
            "url": f"{self.url}/cdn/{key}", "proxy_url": f"{self.url}/cdn/{key}", **facts,
        }  # fmt: skip
