"""The Bot API methods of the Telegram simulator, each strict like the real server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulators.telegram_markup import CANT_PARSE, check_entities, check_markup
from simulators.telegram_state import (
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_DOWNLOAD_BYTES,
    MAX_TEXT,
    MAX_UPLOAD_BYTES,
    ApiError,
    check_photo,
)

if TYPE_CHECKING:
    from simulators.telegram import TelegramSimulator

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
SEND_METHODS = {"sendmessage", "sendphoto", "senddocument", "sendmediagroup"}


@dataclass
class Params:
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def int(self, name: str) -> int:
        value = self.fields.get(name)
        if value is None:
            raise ApiError(400, f"Bad Request: {name} is empty")
        return int(value)

    def upload(self, value: Any) -> bytes:
        """A file sent in this request: a part of its own or `attach://name`."""
        if isinstance(value, str) and value.startswith("attach://"):
            data = self.files.get(value.removeprefix("attach://"))
        else:
            data = None
        if data is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return data


Method = Callable[["TelegramSimulator", Params], Awaitable[Any]]


def _text(value: Any, limit: int, what: str) -> str:
    text = str(value or "")
    if len(text) > limit:
        raise ApiError(400, f"Bad Request: {what} is too long")
    return text


def _plain(params: Params) -> None:
    """The bot sends plain text: formatting (parse_mode, entities other than text_mention) is not modelled here."""
    for name in ("parse_mode", "caption_entities"):
        if params.fields.get(name):
            raise ApiError(400, f"Bad Request: {name} is not modelled by this simulator")


def _markup(value: Any, inline_only: bool = False) -> dict[str, Any] | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, CANT_PARSE)
    check_markup(value, inline_only=inline_only)
    for row in value.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return dict(value)


def _reply_to(params: Params) -> int | None:
    reply = params.fields.get("reply_parameters")
    if isinstance(reply, dict) and "message_id" in reply:
        return int(reply["message_id"])
    value = params.fields.get("reply_to_message_id")
    return None if value is None else int(value)


def _flood(sim: TelegramSimulator, chat_id: int, method: str, count: int = 1) -> None:
    sim.flood.check(chat_id, method, count)


async def get_me(sim: TelegramSimulator, params: Params) -> Any:
    return sim.bot_user


async def delete_webhook(sim: TelegramSimulator, params: Params) -> Any:
    return True


async def get_updates(sim: TelegramSimulator, params: Params) -> Any:
    offset = int(params.fields.get("offset", 0))
    limit = int(params.fields.get("limit", 100))
    return await sim.take_updates(offset, float(params.fields.get("timeout", 0)), limit)


async def set_my_commands(sim: TelegramSimulator, params: Params) -> Any:
    commands = params.fields.get("commands") or []
    if len(commands) > 100:
        raise ApiError(400, "Bad Request: too many commands")
    for command in commands:
        name, description = str(command.get("command", "")), str(command.get("description", ""))
        if not (1 <= len(name) <= 32 and name == name.lower() and name.replace("_", "").isalnum()):
            raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
    sim.commands = list(commands)
    return True


async def send_message(sim: TelegramSimulator, params: Params) -> Any:
    _plain(params)
    chat_id = params.int("chat_id")
    sim.chat(chat_id)
    text = _text(params.fields.get("text"), MAX_TEXT, "message")
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    markup = _markup(params.fields.get("reply_markup"))
    entities = check_entities(text, params.fields["entities"]) if params.fields.get("entities") else []
    _flood(sim, chat_id, "sendMessage")
    message = sim.new_message(chat_id, True, sim.bot_id)
    message.text, message.reply_markup, message.reply_to = text, markup, _reply_to(params)
    message.entities = entities
    return sim.message_json(message)


async def send_photo(sim: TelegramSimulator, params: Params) -> Any:
    _plain(params)
    chat_id = params.int("chat_id")
    sim.chat(chat_id)
    data = params.files.get("photo")
    if data is None:
        data = params.upload(params.fields.get("photo"))
    size = check_photo(data)
    caption = _text(params.fields.get("caption"), MAX_CAPTION, "message caption")
    markup = _markup(params.fields.get("reply_markup"))
    _flood(sim, chat_id, "sendPhoto")
    message = sim.new_message(chat_id, True, sim.bot_id)
    message.photo, message.photo_file = size, sim.store_file(data).file_id
    message.caption, message.reply_markup, message.reply_to = caption or None, markup, _reply_to(params)
    return sim.message_json(message)


async def send_document(sim: TelegramSimulator, params: Params) -> Any:
    _plain(params)
    chat_id = params.int("chat_id")
    sim.chat(chat_id)
    data = params.files.get("document")
    if data is None:
        data = params.upload(params.fields.get("document"))
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "Request Entity Too Large")
    caption = _text(params.fields.get("caption"), MAX_CAPTION, "message caption")
    markup = _markup(params.fields.get("reply_markup"))
    _flood(sim, chat_id, "sendDocument")
    message = sim.new_message(chat_id, True, sim.bot_id)
    message.document = sim.store_file(data, "documents", "png").file_id
    message.caption, message.reply_markup, message.reply_to = caption or None, markup, _reply_to(params)
    return sim.message_json(message)


async def send_media_group(sim: TelegramSimulator, params: Params) -> Any:
    chat_id = params.int("chat_id")
    sim.chat(chat_id)
    media = params.fields.get("media")
    if media is None:
        raise ApiError(400, 'Bad Request: parameter "media" is required')
    if not media:
        raise ApiError(400, "Bad Request: there are no messages to send")
    if len(media) > 10:
        raise ApiError(400, "Bad Request: too many messages to send as an album")
    photos = []
    for item in media:
        if item.get("type") != "photo":
            raise ApiError(400, "Bad Request: only photos are modelled in albums")
        data = params.upload(item.get("media"))
        photos.append((data, check_photo(data), _text(item.get("caption"), MAX_CAPTION, "message caption")))
    _flood(sim, chat_id, "sendMediaGroup", len(photos))
    group_id = secrets.token_hex(6) if len(photos) > 1 else None  # one item is sent as a plain photo
    result = []
    for data, size, caption in photos:
        message = sim.new_message(chat_id, True, sim.bot_id)
        message.photo, message.photo_file, message.media_group_id = size, sim.store_file(data).file_id, group_id
        message.caption, message.reply_to = caption or None, _reply_to(params)
        result.append(sim.message_json(message))
    return result


async def edit_message_text(sim: TelegramSimulator, params: Params) -> Any:
    _plain(params)
    chat_id = params.int("chat_id")
    message = sim.message(chat_id, params.int("message_id"))
    if not message.from_bot:
        raise ApiError(400, "Bad Request: message can't be edited")
    if message.text is None:
        raise ApiError(400, "Bad Request: there is no text in the message to edit")
    text = _text(params.fields.get("text"), MAX_TEXT, "message")
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    markup = _markup(params.fields.get("reply_markup"), inline_only=True)
    if text == message.text and markup == message.reply_markup:
        raise ApiError(400, NOT_MODIFIED)
    _flood(sim, chat_id, "editMessageText")
    message.text, message.reply_markup = text, markup
    message.edits += 1
    return sim.message_json(message)


async def edit_message_caption(sim: TelegramSimulator, params: Params) -> Any:
    _plain(params)
    chat_id = params.int("chat_id")
    message = sim.message(chat_id, params.int("message_id"))
    if not message.from_bot:
        raise ApiError(400, "Bad Request: message can't be edited")
    if message.photo is None and message.document is None:
        raise ApiError(400, "Bad Request: there is no caption in the message to edit")
    caption = _text(params.fields.get("caption"), MAX_CAPTION, "message caption")
    markup = _markup(params.fields.get("reply_markup"), inline_only=True)
    if caption == (message.caption or "") and markup == message.reply_markup:
        raise ApiError(400, NOT_MODIFIED)
    _flood(sim, chat_id, "editMessageCaption")
    message.caption, message.reply_markup = caption or None, markup
    message.edits += 1
    return sim.message_json(message)


async def edit_message_media(sim: TelegramSimulator, params: Params) -> Any:
    chat_id = params.int("chat_id")
    message = sim.message(chat_id, params.int("message_id"))
    if not message.from_bot:
        raise ApiError(400, "Bad Request: message can't be edited")
    media = params.fields.get("media") or {}
    if media.get("type") != "photo":
        raise ApiError(400, "Bad Request: only photos are modelled in editMessageMedia")
    data = params.upload(media.get("media"))
    size = check_photo(data)
    caption = _text(media.get("caption"), MAX_CAPTION, "message caption")
    markup = _markup(params.fields.get("reply_markup"), inline_only=True)
    _flood(sim, chat_id, "editMessageMedia")
    message.text, message.photo, message.photo_file = None, size, sim.store_file(data).file_id
    message.caption, message.reply_markup = caption or None, markup
    message.edits += 1
    return sim.message_json(message)


async def edit_message_reply_markup(sim: TelegramSimulator, params: Params) -> Any:
    chat_id = params.int("chat_id")
    message = sim.message(chat_id, params.int("message_id"))
    if not message.from_bot:
        raise ApiError(400, "Bad Request: message can't be edited")
    markup = _markup(params.fields.get("reply_markup"), inline_only=True)
    if markup == message.reply_markup:
        raise ApiError(400, NOT_MODIFIED)
    _flood(sim, chat_id, "editMessageReplyMarkup")
    message.reply_markup = markup
    message.edits += 1
    return sim.message_json(message)


async def delete_message(sim: TelegramSimulator, params: Params) -> Any:
    message = sim.message(params.int("chat_id"), params.int("message_id"), "delete")
    message.deleted = True
    return True


async def send_chat_action(sim: TelegramSimulator, params: Params) -> Any:
    chat_id = params.int("chat_id")
    sim.chat(chat_id)
    sim.chat_actions.append((chat_id, str(params.fields.get("action"))))
    return True


async def answer_callback_query(sim: TelegramSimulator, params: Params) -> Any:
    query_id = str(params.fields.get("callback_query_id", ""))
    if query_id in sim.callback_answers:
        raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
    _text(params.fields.get("text"), 200, "MESSAGE")
    sim.callback_answers[query_id] = dict(params.fields)
    return True


async def get_chat_member(sim: TelegramSimulator, params: Params) -> Any:
    chat_id, user_id = params.int("chat_id"), params.int("user_id")
    chat = sim.chat(chat_id)
    if sim.member_lookup_seconds:  # a slow answer, as from a busy or distant server
        await asyncio.sleep(sim.member_lookup_seconds)
    admin = user_id in sim.admins.get(chat_id, set()) or chat["type"] == "private"
    status = "administrator" if admin else "member"
    body: dict[str, Any] = {"status": status, "user": sim.user_json(user_id)}
    if admin:
        body.update(
            {
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        )
    return body


async def get_file(sim: TelegramSimulator, params: Params) -> Any:
    stored = sim.files.get(str(params.fields.get("file_id", "")))
    if stored is None:
        raise ApiError(400, "Bad Request: invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD_BYTES:
        raise ApiError(400, "Bad Request: file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": "U" + stored.file_id,
        "file_size": len(stored.data),
        "file_path": stored.path,
    }


METHODS: dict[str, Method] = {
    "getme": get_me,
    "deletewebhook": delete_webhook,
    "getupdates": get_updates,
    "setmycommands": set_my_commands,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "senddocument": send_document,
    "sendmediagroup": send_media_group,
    "editmessagetext": edit_message_text,
    "editmessagecaption": edit_message_caption,
    "editmessagemedia": edit_message_media,
    "editmessagereplymarkup": edit_message_reply_markup,
    "deletemessage": delete_message,
    "sendchataction": send_chat_action,
    "answercallbackquery": answer_callback_query,
    "getchatmember": get_chat_member,
    "getfile": get_file,
}
