"""The Edit button's prompts: a message that asked a user for an edit instruction, kept so that the answer,
even one given after a restart, edits the image the button was under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EditPrompt:
    """A prompt message (`platform`, `chat_id`, `message_id`) asking `user_id` for the instruction of the Edit
    button `button_id` (`edit:job:index`). Only that user's answer counts."""

    platform: str
    chat_id: str
    message_id: str
    button_id: str
    user_id: str


class EditPrompts(Protocol):
    """Where prompts are remembered (SQLite: storage/edit_prompts.py)."""

    async def remember(self, prompt: EditPrompt) -> None:
        """Keep a prompt just sent (older ones are forgotten after a while)."""
        ...

    async def recall(self, platform: str, chat_id: str, message_id: str) -> EditPrompt | None:
        """The prompt that message is, if it is one."""
        ...
