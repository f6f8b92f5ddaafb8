"""State of the Telegram Bot API simulator: chats, messages, files, updates and flood limits."""

from __future__ import annotations

import io
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

COMMAND = re.compile(r"(?:(?<=\s)|^)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
MENTION = re.compile(r"@[A-Za-z0-9_]+")
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class ApiError(Exception):
    """An error the Bot API answers with `{"ok": false, ...}`."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities as the real server computes them (offsets in UTF-16 units)."""
    entities = []
    for match in COMMAND.finditer(text):
        entities.append({"type": "bot_command", "offset": _utf16(text[: match.start()]), "length": _utf16(match[0])})
    for start, end in mention_spans(text):
        entities.append({"type": "mention", "offset": _utf16(text[:start]), "length": _utf16(text[start:end])})
    return sorted(entities, key=lambda entity: int(entity["offset"]))


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def mention_spans(text: str) -> list[tuple[int, int]]:
    """Where the server sees `@username` (tdlib match_mentions: 2-32 of [A-Za-z0-9_], no word character around)."""
    spans = []
    for match in MENTION.finditer(text):
        start, end = match.span()
        if start > 0 and _word(text[start - 1]):
            continue
        if end < len(text) and _word(text[end]):
            continue
        if 2 <= end - start - 1 <= 32:
            spans.append((start, end))
    return spans


def photo_facts(data: bytes) -> tuple[int, int]:
    """Width and height of an image, or a 400 like the server's when it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception as exc:
        raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from exc


def check_photo(data: bytes) -> tuple[int, int]:
    """Telegram's sendPhoto rules: 10 MB, width + height <= 10000, ratio <= 20."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
    width, height = photo_facts(data)
    if width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    return width, height


@dataclass
class StoredFile:
    file_id: str
    data: bytes
    path: str
    mime_type: str = "image/png"  # what the sending client declared (documents only)


@dataclass
class ChatMessage:
    """One message as users in the chat see it now (edits applied)."""

    chat_id: int
    message_id: int
    from_bot: bool
    user_id: int
    text: str | None = None
    caption: str | None = None
    photo: tuple[int, int] | None = None
    photo_file: str | None = None
    document: str | None = None
    reply_markup: dict[str, Any] | None = None
    media_group_id: str | None = None
    reply_to: int | None = None
    deleted: bool = False
    edits: int = 0
    on_behalf: dict[str, Any] = field(default_factory=dict)  # sender_chat / is_automatic_forward (updates.py)
    entities: list[dict[str, Any]] = field(default_factory=list)  # text_mention entities the bot sent (markup.py)

    @property
    def buttons(self) -> list[str]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [str(button.get("callback_data", "")) for row in rows for button in row]


@dataclass
class FloodControl:
    """Sliding-window limits per chat and per group, scaled by `time_scale` (1.0 = real seconds)."""

    time_scale: float = 1.0
    chat_limit: int = 3
    chat_window: float = 3.0
    group_limit: int = 20
    group_window: float = 60.0
    enabled: bool = True
    _sent: dict[int, deque[float]] = field(default_factory=dict)
    refused: int = 0
    refused_by_method: dict[str, int] = field(default_factory=dict)

    def check(self, chat_id: int, method: str, count: int = 1) -> None:
        """Count `count` messages for the chat (about 1/s, bursts of 3) and, in groups, 20/min; else raise a 429."""
        if not self.enabled:
            return
        now = time.monotonic()
        windows = [(chat_id, self.chat_limit, self.chat_window)]
        if chat_id < 0:
            windows.append((-(10**15) + chat_id, self.group_limit, self.group_window))
        for key, limit, window in windows:
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - window * self.time_scale:
                sent.popleft()
            if sent and len(sent) + count > limit:
                self._refuse(method, sent[0] + window * self.time_scale - now)
        for key, _, _ in windows:
            self._sent[key].extend([now] * count)

    def _refuse(self, method: str, wait: float) -> None:
        self.refused += 1
        self.refused_by_method[method] = self.refused_by_method.get(method, 0) + 1
        retry = round(max(wait, 0.001), 3) if self.time_scale != 1.0 else max(1, round(wait + 0.5))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
