"""Platform-neutral replies: adapters render these as Discord messages, Telegram messages or console text."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

MAX_BUTTON_ID_BYTES = 64  # Telegram's callback_data limit, the tighter of the two platforms


class Action(StrEnum):
    """What a button does; the id is `action:job_id[:index]`."""

    CANCEL = "cancel"
    REROLL = "reroll"
    VARY = "vary"
    UPSCALE = "upscale"
    DELETE = "delete"
    INFO = "info"
    LORA = "lora"  # `lora:preset:index` from /loras: answers with the --lora text to use
    SETTING = "set"  # `set:key[:index]` from /settings: picks the key's index-th choice, or clears the key
    EDIT = "edit"  # `edit:job:index`: asks for an instruction (Discord modal, Telegram reply prompt), then /edit


@dataclass(frozen=True)
class Button:
    label: str
    action: Action
    job_id: str
    index: int | None = None
    danger: bool = False

    @property
    def id(self) -> str:
        value = f"{self.action.value}:{self.job_id}" + ("" if self.index is None else f":{self.index}")
        if len(value.encode()) > MAX_BUTTON_ID_BYTES:
            raise ValueError(f"button id over {MAX_BUTTON_ID_BYTES} bytes: {value!r}")
        return value


def parse_button_id(value: str) -> tuple[Action, str, int | None]:
    """Split `action:job[:i]`; raises ValueError for anything else."""
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ValueError(f"not a button id: {value!r}")
    action = Action(parts[0])
    index = int(parts[2]) if len(parts) == 3 else None
    if index is not None and not 0 <= index < 100:
        raise ValueError(f"button index out of range: {value!r}")
    return action, parts[1], index


@dataclass(frozen=True)
class ImageAttachment:
    """An image to show: a stored file, or bytes in memory (progress previews)."""

    filename: str
    path: str | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("attachment has neither path nor data")
        with open(self.path, "rb") as handle:
            return handle.read()


class Tone(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    ERROR = "error"


@dataclass
class Reply:
    """A message for the user. `private` replies are shown only to the invoker where the platform can."""

    text: str
    images: list[ImageAttachment] = field(default_factory=list)
    buttons: list[list[Button]] = field(default_factory=list)
    private: bool = False
    tone: Tone = Tone.INFO
    job_id: str | None = None
    remove_message: bool = False  # the message the button was on should go (Delete)
    asks_instruction: str | None = None  # an Edit button id: the adapter asks the user for the instruction

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls(text=text, private=True, tone=Tone.ERROR)


class FileReader(Protocol):
    async def read(self, path: str) -> bytes: ...


async def fetched(reply: Reply, files: FileReader) -> Reply:
    """Attachments kept in a bucket (`s3://…`, storage/images.py) read into memory: adapters read paths as files."""
    if any(image.path and "://" in image.path for image in reply.images):
        reply.images = [
            replace(image, data=await files.read(image.path)) if image.path and "://" in image.path else image
            for image in reply.images
        ]
    return reply
