"""A strict stand-in for the Telegram Bot API over HTTP, as python-telegram-bot calls it, on aiohttp.

Routes: `POST /bot<token>/<method>` and `GET /file/bot<token>/<path>`. Tests inject user messages,
photos and button presses (`send_text`, `send_photo`, `press`) and read what each chat shows
(`visible`), every call (`calls`) and the flood-control refusals (`flood.refused`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from simulators.telegram_markup import forced_reply_targets
from simulators.telegram_methods import METHODS, Params
from simulators.telegram_state import (
    MAX_TEXT,
    ApiError,
    ChatMessage,
    FloodControl,
    StoredFile,
    command_entities,
    photo_facts,
)
from simulators.telegram_updates import CONFLICT, STAND_IN_USERS, PollLog

log = logging.getLogger(__name__)

JSON_FIELDS = {"reply_markup", "media", "commands", "allowed_updates", "reply_parameters", "scope", "entities"}
INT_FIELDS = {"chat_id", "message_id", "user_id", "offset", "timeout", "limit", "reply_to_message_id"}


class TelegramSimulator:
    """One bot (`token`, `username`) and any number of chats, on loopback."""

    def __init__(
        self, *, token: str = "123456:TEST", username: str = "test_bot", time_scale: float = 1.0, privacy: bool = True
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Imagebridge",
            "username": username,
        }
        self.flood = FloodControl(time_scale=time_scale)
        self.privacy = privacy
        self.language_codes: dict[int, str] = {}  # user id -> the `language_code` their client reports
        self.url = ""
        self.chats: dict[int, dict[str, Any]] = {}
        self.admins: dict[int, set[int]] = {}
        self.messages: dict[tuple[int, int], ChatMessage] = {}
        self.files: dict[str, StoredFile] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[dict[str, Any]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.errors: list[tuple[str, int, str]] = []
        self.changed = asyncio.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_id = 0
        self.member_lookup_seconds = 0.0  # getChatMember answers after this long
        self.polls = PollLog()  # getUpdates offsets: what was returned and confirmed (simulators/telegram_updates.py)
        self._next_message: dict[int, int] = {}
        self.seen_users: set[int] = set()  # users who wrote somewhere: known to Telegram, maybe not in a private chat
        self._runner: web.AppRunner | None = None

    # ---- server ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        runner = web.AppRunner(app, shutdown_timeout=0.05, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = next(s for s in runner.addresses if isinstance(s, tuple))[1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.url}/file/bot"

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        name = request.match_info["method"]
        handler = METHODS.get(name.lower())
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        params = await _read_params(request)
        self.calls.append((name, params.fields))
        try:
            result = await handler(self, params)
        except ApiError as exc:
            self.errors.append((name, exc.code, exc.description))
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        async with self.changed:
            self.changed.notify_all()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404)

    # ---- shared state used by the methods ----------------------------------------------------

    def chat(self, chat_id: int) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None and chat_id in self.seen_users:  # a real user who never started the bot: no private chat
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def new_message(self, chat_id: int, from_bot: bool, user_id: int) -> ChatMessage:
        number = self._next_message.get(chat_id, 1)
        self._next_message[chat_id] = number + 1
        message = ChatMessage(chat_id=chat_id, message_id=number, from_bot=from_bot, user_id=user_id)
        if not from_bot:
            self.seen_users.add(user_id)
        self.messages[(chat_id, number)] = message
        return message

    def message(self, chat_id: int, message_id: int, what: str = "edit") -> ChatMessage:
        message = self.messages.get((chat_id, message_id))
        if message is None or message.deleted:
            raise ApiError(400, f"Bad Request: message to {what} not found")
        return message

    def store_file(self, data: bytes, folder: str = "photos", suffix: str = "jpg") -> StoredFile:
        file_id = "F" + secrets.token_hex(8)
        stored = StoredFile(file_id=file_id, data=data, path=f"{folder}/{file_id}.{suffix}")
        self.files[file_id] = stored
        return stored

    def user_json(self, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_user["id"]:
            return dict(self.bot_user)
        if user_id in STAND_IN_USERS:
            return dict(STAND_IN_USERS[user_id])
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "username": f"user{user_id}",
        }
        if user_id in self.language_codes:
            user["language_code"] = self.language_codes[user_id]
        return user

    def message_json(self, message: ChatMessage, depth: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": self.chat(message.chat_id),
            "from": self.user_json(message.user_id),
        }
        if message.text is not None:
            body["text"] = message.text
            entities = command_entities(message.text) + message.entities
            if entities:
                body["entities"] = sorted(entities, key=lambda entity: int(entity["offset"]))
        if message.caption is not None:
            body["caption"] = message.caption
            if entities := command_entities(message.caption):
                body["caption_entities"] = entities
        if message.photo is not None and message.photo_file is not None:
            stored = self.files[message.photo_file]
            width, height = message.photo
            body["photo"] = [
                {
                    "file_id": stored.file_id,
                    "file_unique_id": "U" + stored.file_id,
                    "width": width,
                    "height": height,
                    "file_size": len(stored.data),
                }
            ]
        if message.document is not None:
            stored = self.files[message.document]
            body["document"] = {
                "file_id": stored.file_id,
                "file_unique_id": "U" + stored.file_id,
                "file_name": stored.path.rsplit("/", 1)[-1],
                "mime_type": stored.mime_type,
                "file_size": len(stored.data),
            }
        body.update(message.on_behalf)
        if message.media_group_id:
            body["media_group_id"] = message.media_group_id
        if message.reply_markup and "inline_keyboard" in message.reply_markup:  # a Message shows inline keyboards only
            body["reply_markup"] = message.reply_markup
        if message.reply_to is not None and depth == 0:
            replied = self.messages.get((message.chat_id, message.reply_to))
            if replied is not None and not replied.deleted:
                body["reply_to_message"] = self.message_json(replied, depth + 1)
        return body

    # ---- what tests do -----------------------------------------------------------------------

    def add_chat(self, chat_id: int, *, title: str = "", admins: tuple[int, ...] = ()) -> None:
        """A private chat (positive id, the user's id) or a supergroup (negative id)."""
        if chat_id > 0:
            self.chats[chat_id] = {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        else:
            self.chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": title or f"group {chat_id}"}
        self.admins[chat_id] = set(admins)

    async def press_start(self, user_id: int, payload: str = "") -> ChatMessage:
        """The user opens the bot (a `t.me/<bot>?start=<payload>` link) and presses Start: their private chat with
        the bot exists from now on, and the bot gets `/start <payload>` in it."""
        if user_id not in self.chats:
            self.add_chat(user_id)
        return await self.send_text(user_id, user_id, f"/start {payload}".strip())

    async def send_text(self, chat_id: int, user_id: int, text: str, reply_to: int | None = None) -> ChatMessage:
        """A user writes in a chat; the bot gets it if privacy mode lets it through."""
        if len(text) > MAX_TEXT:
            raise ValueError(f"Telegram clients cannot send more than {MAX_TEXT} characters")
        message = self.new_message(chat_id, False, user_id)
        message.text, message.reply_to = text, reply_to
        await self._deliver_message(message)
        return message

    async def send_photo(
        self, chat_id: int, user_id: int, data: bytes, caption: str | None = None, *, as_document: bool = False
    ) -> ChatMessage:
        """A user sends a photo (or an image file as a document), optionally with a caption."""
        message = self.new_message(chat_id, False, user_id)
        message.caption = caption
        if as_document:
            message.document = self.store_file(data, "documents", "png").file_id
        else:
            message.photo = photo_facts(data)
            message.photo_file = self.store_file(data).file_id
        await self._deliver_message(message)
        return message

    async def press(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """A user presses an inline button; returns the callback query id."""
        self.seen_users.add(user_id)
        return await self.push_callback(chat_id, user_id, message_id, data)

    async def push_callback(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """A callback_query update with this data on that message; returns the callback query id."""
        query_id = secrets.token_hex(6)
        message = self.message(chat_id, message_id, "press")
        await self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.user_json(user_id),
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": self.message_json(message),
                }
            }
        )
        return query_id

    def forced_reply_for(self, message: ChatMessage) -> set[int] | None:
        """Whose Telegram client opens a reply to this bot message (ForceReply): None for everyone in the chat."""
        replied = self.messages.get((message.chat_id, message.reply_to or 0))
        usernames = {f"user{user}": user for user in self.seen_users}  # user_json names every user user<id>
        return forced_reply_targets(message, replied, usernames)

    def visible(self, chat_id: int) -> list[ChatMessage]:
        """The bot's messages a user in the chat sees now, oldest first."""
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id and m.from_bot and not m.deleted]

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name.lower() == method.lower())

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:
        """Wait until `predicate()` holds after some call, or fail after `within` seconds."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(predicate)

    async def _deliver_message(self, message: ChatMessage) -> None:
        if self.privacy and message.chat_id < 0 and not self._meant_for_bot(message):
            return
        await self._push({"message": self.message_json(message)})

    def _meant_for_bot(self, message: ChatMessage) -> bool:
        text = message.text if message.text is not None else (message.caption or "")
        if text.startswith("/"):
            target = text.split(maxsplit=1)[0].partition("@")[2]
            return target in ("", self.bot_user["username"])
        replied = self.messages.get((message.chat_id, message.reply_to or 0))
        return replied is not None and replied.from_bot

    async def _push(self, update: dict[str, Any]) -> None:
        self._update_id += 1
        update["update_id"] = self._update_id
        self._updates.append(update)
        async with self.changed:
            self.changed.notify_all()

    async def take_updates(self, offset: int, hold: float, limit: int = 100) -> list[dict[str, Any]]:
        """getUpdates: confirm (forget) updates below `offset`; hold until one arrives or `hold` seconds pass."""
        self.polls.confirm(self._updates, offset)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        poll = self.polls.begin()  # a newer getUpdates ends this one with a 409, as a second poller would
        async with self.changed:
            self.changed.notify_all()
        if not self._updates and hold > 0:
            try:
                async with asyncio.timeout(hold), self.changed:
                    await self.changed.wait_for(lambda: bool(self._updates) or not self.polls.current(poll))
            except TimeoutError:
                return []
        if not self.polls.current(poll):
            raise ApiError(409, CONFLICT)
        return self.polls.returned(self._updates[: max(1, min(limit, 100))])


async def _read_params(request: web.Request) -> Params:
    form = await request.post()
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            with value.file:  # aiohttp's temporary file: closed here, not left to the garbage collector
                files[key] = value.file.read()
        elif key in JSON_FIELDS:
            fields[key] = json.loads(str(value))
        elif key in INT_FIELDS:
            fields[key] = int(str(value))
        else:
            fields[key] = str(value)
    return Params(fields=fields, files=files)
