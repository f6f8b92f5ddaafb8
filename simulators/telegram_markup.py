"""Reply markup and mention entities in the Telegram simulator, as the Bot API takes them (core.telegram.org/bots/api).

- `reply_markup` is exactly one of InlineKeyboardMarkup (`inline_keyboard`), ReplyKeyboardMarkup (`keyboard`),
  ReplyKeyboardRemove (`remove_keyboard: true`) or ForceReply (`force_reply: true`, optional
  `input_field_placeholder` of 1-64 characters, optional `selective`). Anything else is refused with
  "Bad Request: can't parse reply keyboard markup JSON object". The edit methods take only an inline keyboard.
- ForceReply makes the clients of its targets open a reply to the message. Not `selective`: everyone in the
  chat. `selective`: only 1) the users @mentioned in the text (an `@username` mention or a `text_mention`
  entity, which is how a user without a username is mentioned) and 2) the sender of the message it replies to.
  Anyone can still reply by hand: ForceReply is a client hint, the server does not restrict who replies.
- Entities the bot sends: only `text_mention` (`offset`/`length` in UTF-16 units inside the text, `user` with
  an `id`) is modelled; other formatting is refused as not modelled.
"""

from __future__ import annotations

from typing import Any

from simulators.telegram_state import ApiError, ChatMessage, mention_spans

CANT_PARSE = "Bad Request: can't parse reply keyboard markup JSON object"
KINDS = ("inline_keyboard", "keyboard", "remove_keyboard", "force_reply")


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_markup(value: dict[str, Any], *, inline_only: bool = False) -> None:
    """Raise ApiError for a markup the server cannot parse, or one the method does not take."""
    kinds = [kind for kind in KINDS if kind in value]
    if len(kinds) != 1 or (inline_only and kinds != ["inline_keyboard"]):
        raise ApiError(400, CANT_PARSE)
    if kinds == ["force_reply"]:
        if value["force_reply"] is not True:
            raise ApiError(400, CANT_PARSE)
        placeholder = value.get("input_field_placeholder")
        if placeholder is not None and not (isinstance(placeholder, str) and 1 <= len(placeholder) <= 64):
            raise ApiError(400, CANT_PARSE)
        if not isinstance(value.get("selective", False), bool):
            raise ApiError(400, CANT_PARSE)


def check_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """The `text_mention` entities of a sent text, checked; ApiError for anything else."""
    if not isinstance(entities, list):
        raise ApiError(400, "Bad Request: can't parse entities JSON object")
    checked = []
    for entity in entities:
        kind = entity.get("type") if isinstance(entity, dict) else None
        if kind != "text_mention":
            raise ApiError(400, f"Bad Request: entities of type {kind!r} are not modelled by this simulator")
        offset, length, user = entity.get("offset"), entity.get("length"), entity.get("user")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 1:
            raise ApiError(400, "Bad Request: can't parse entities: wrong offset or length")
        if offset + length > utf16(text):
            raise ApiError(400, "Bad Request: can't parse entities: entity beyond the end of the text")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ApiError(400, "Bad Request: can't parse entities: text_mention needs a user")
        checked.append({"type": "text_mention", "offset": offset, "length": length, "user": dict(user)})
    return checked


def forced_reply_targets(
    message: ChatMessage, replied: ChatMessage | None, usernames: dict[str, int]
) -> set[int] | None:
    """Whose client opens a reply to this message: None for everyone in the chat, else these user ids."""
    markup = message.reply_markup or {}
    if not markup.get("force_reply"):
        return set()
    if not markup.get("selective"):
        return None
    text = message.text or message.caption or ""
    targets = {int(entity["user"]["id"]) for entity in message.entities if entity["type"] == "text_mention"}
    for start, end in mention_spans(text):
        user = usernames.get(text[start + 1 : end].lower())
        if user is not None:
            targets.add(user)
    if replied is not None and not replied.from_bot:
        targets.add(replied.user_id)
    return targets
