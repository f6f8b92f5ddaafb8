"""The Telegram Bot API simulator with the faults of the real service that a happy path never shows.

- Basic groups upgraded to supergroups: every call on the old id answers 400 with
  `parameters.migrate_to_chat_id` (PTB raises `ChatMigrated`), and the chats get the service messages.
- The bot removed from a group or blocked by a user: 403 "Forbidden: bot was kicked from the … chat" /
  "bot was blocked by the user" on every call there, and a `my_chat_member` update.
- Answers that are slow (held after the call took effect, for some seconds or until the test lets them
  go) or lost (the connection is dropped after the call took effect): a test sets `slow`, `held` or `lose`
  per method; and calls dropped on the way (the connection breaks before the request reaches the service,
  so it takes no effect): `drop`.
- Button presses with forged callback data (modified clients can send any bytes with a press).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from simulators.telegram import TelegramSimulator
from simulators.telegram_state import ChatMessage

FORBIDDEN_KICKED = "Forbidden: bot was kicked from the {kind} chat"
FORBIDDEN_BLOCKED = "Forbidden: bot was blocked by the user"
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
ANSWERLESS = {"getupdates", "getme", "deletewebhook", "setmycommands"}


class FaultyTelegramSimulator(TelegramSimulator):
    """`TelegramSimulator` plus migration, removal, blocking, slow and lost answers and forged presses."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gone: dict[int, str] = {}  # chat id -> the 403 description the server gives there
        self.migrated: dict[int, int] = {}  # basic group id -> its supergroup id
        self.lose: dict[str, int] = {}  # method (lower case) -> how many next answers are lost
        self.slow: dict[str, float] = {}  # method (lower case) -> seconds each answer is held
        self.slow_chats: dict[int, float] = {}  # chat id -> seconds each answer of a call there is held (more)
        self.held: dict[str, asyncio.Event] = {}  # method (lower case) -> answers wait until the test sets it
        self.lost: list[str] = []  # methods whose answer was lost after they took effect
        self.drop: dict[str, int] = {}  # method (lower case) -> how many next calls break before taking effect
        self.dropped = 0
        self.refused_gone = 0

    # ---- chats that change under the bot ---------------------------------------------------

    def add_group(self, chat_id: int, *, title: str = "") -> None:
        """A basic group (a small negative id): what users create first, before Telegram upgrades it."""
        self.chats[chat_id] = {"id": chat_id, "type": "group", "title": title or f"group {chat_id}"}
        self.admins[chat_id] = set()

    async def upgrade(self, chat_id: int, *, announce: bool = True) -> int:
        """The group becomes a supergroup with a new id (-100…); the old id is dead from now on.

        `announce=False` leaves out the service messages (privacy mode or a missed update): the bot then learns
        of the move only from the 400 answer on its next call there.
        """
        old = self.chat(chat_id)
        new_id = int(f"-100{abs(chat_id)}")
        self.chats[new_id] = {"id": new_id, "type": "supergroup", "title": old.get("title", "")}
        self.admins[new_id] = set(self.admins.get(chat_id, set()))
        self.migrated[chat_id] = new_id
        if not announce:
            return new_id
        service = self.new_message(chat_id, False, 1)
        await self._push({"message": {**self.message_json(service), "migrate_to_chat_id": new_id}})
        moved = self.new_message(new_id, False, 1)
        await self._push({"message": {**self.message_json(moved), "migrate_from_chat_id": chat_id}})
        return new_id

    async def kick(self, chat_id: int, by_user: int = 1) -> None:
        """An admin removes the bot from a group."""
        chat = self.chat(chat_id)
        kind = "supergroup" if chat["type"] == "supergroup" else "group"
        self.gone[chat_id] = FORBIDDEN_KICKED.format(kind=kind)
        await self._member_update(chat_id, by_user, "kicked" if kind == "supergroup" else "left")

    async def block(self, user_id: int) -> None:
        """A user blocks the bot in their private chat."""
        self.chat(user_id)
        self.gone[user_id] = FORBIDDEN_BLOCKED
        await self._member_update(user_id, user_id, "kicked")

    async def press_start(self, user_id: int, payload: str = "") -> ChatMessage:
        """Start (Restart, for a user who blocked the bot) unblocks the bot first: a `my_chat_member` update."""
        if user_id in self.gone:
            await self.add_back(user_id, user_id)
        return await super().press_start(user_id, payload)

    async def add_back(self, chat_id: int, by_user: int = 1) -> None:
        """The bot is added to the group again (or unblocked by the user)."""
        description = self.gone.pop(chat_id, "")
        old = "left" if "kicked from the group chat" in description else "kicked"  # as kick() and block() set it
        await self._member_update(chat_id, by_user, "member", old)

    async def _member_update(self, chat_id: int, by_user: int, status: str, old: str = "member") -> None:
        bot = dict(self.bot_user)
        member: dict[str, Any] = {"status": status, "user": bot}
        if status == "kicked":
            member["until_date"] = 0
        before: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            before["until_date"] = 0
        await self._push(
            {
                "my_chat_member": {
                    "chat": self.chats[chat_id],
                    "from": self.user_json(by_user),
                    "date": int(time.time()),
                    "old_chat_member": before,
                    "new_chat_member": member,
                }
            }
        )

    # ---- forged presses -------------------------------------------------------------------------

    async def press_forged(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """A press with callback data that is not on the message's keyboard (a modified client)."""
        return await self.push_callback(chat_id, user_id, message_id, data)

    def mentions(self, chat_id: int) -> list[str]:
        """The `@username` mentions the server found in the bot's messages in the chat (each one notifies)."""
        found = []
        for message in self.visible(chat_id):
            body = self.message_json(message)
            text = body.get("text") or body.get("caption") or ""
            for entity in body.get("entities", []) + body.get("caption_entities", []):
                if entity["type"] in ("mention", "text_mention"):
                    found.append(_utf16_slice(text, entity["offset"], entity["length"]))
        return found

    def bot_photos(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.visible(chat_id) if m.photo is not None]

    # ---- the faults on the wire ------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        name = request.match_info["method"].lower()
        if self.drop.get(name, 0) > 0 and request.transport is not None:
            self.drop[name] -= 1
            self.dropped += 1
            request.transport.close()  # nothing reached the service: no effect, no answer
            return web.Response(status=503)
        if name not in ANSWERLESS and request.match_info["token"] == self.token:
            refused = await self._refuse_dead_chat(request, name)
            if refused is not None:
                return refused
        response = await super()._method(request)
        if name in ANSWERLESS or response.status != 200:
            return response
        for value in (await request.post()).values():  # read already; a client that gives up must not leak them
            if isinstance(value, web.FileField):
                value.file.close()
        if self.slow.get(name):
            await asyncio.sleep(self.slow[name])
        if self.slow_chats and (chat := str((await request.post()).get("chat_id", ""))).lstrip("-").isdigit():
            await asyncio.sleep(self.slow_chats.get(int(chat), 0.0))
        if (gate := self.held.get(name)) is not None:
            await gate.wait()
        if self.lose.get(name, 0) > 0:
            self.lose[name] -= 1
            self.lost.append(name)
            if request.transport is not None:
                request.transport.close()  # the call took effect; its answer never reaches the client
        return response

    async def _refuse_dead_chat(self, request: web.Request, name: str) -> web.Response | None:
        form = await request.post()
        raw = form.get("chat_id")
        if raw is None:
            return None
        try:
            chat_id = int(str(raw))
        except ValueError:
            return None
        if chat_id in self.migrated:
            code, description = 400, UPGRADED
            body: dict[str, Any] = {"parameters": {"migrate_to_chat_id": self.migrated[chat_id]}}
        elif chat_id in self.gone:
            code, description, body = 403, self.gone[chat_id], {}
            self.refused_gone += 1
        else:
            return None
        self.calls.append((request.match_info["method"], {"chat_id": chat_id}))
        self.errors.append((name, code, description))
        return web.json_response({"ok": False, "error_code": code, "description": description, **body}, status=code)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le")
