"""Console output: a live one-line progress bar, then the image paths, the job id and the button ids."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.i18n import t
from bot.models import Job
from bot.replies import Button, Reply


def typed_id(button: Button) -> str:
    """The id a console user types to press `button`: image numbers count from 1, as the labels do (V1, U1)."""
    base = f"{button.action.value}:{button.job_id}"
    return base if button.index is None else f"{base}:{button.index + 1}"


class ConsoleOutbound:
    """Outbound port for a terminal. Images are copied to `out_dir` when one is given."""

    platform = "console"

    def __init__(self, *, out_dir: Path | None = None, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.out_dir = out_dir
        self.stream = stream or sys.stdout
        self.interval = interval
        self.delivered: dict[str, list[str]] = {}
        self._live = False
        self._above = False  # a progress line sits just above the prompt, to be redrawn in place
        # Set by the session while it waits for a line: output printed meanwhile is followed by the prompt
        # again (with what the user had typed so far), so the prompt never scrolls out of sight.
        self.prompt: Callable[[], str] | None = None

    def min_interval(self, job: Job) -> float:
        return self.interval

    def write(self, text: str) -> None:
        self._end_live()
        self._print(text)
        self._reprompt()

    def _print(self, text: str) -> None:
        if self.prompt is not None:  # clear the prompt line (what was typed is redrawn after the text)
            self.stream.write("\r\x1b[K" if self.stream.isatty() else "\n")
        self._above = False
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def _reprompt(self) -> None:
        if self.prompt is not None:
            self.stream.write(self.prompt())
            self.stream.flush()

    def _end_live(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False

    async def update_status(self, job: Job, reply: Reply) -> None:
        first_line = reply.text.splitlines()[0] if reply.text else ""
        if not self.stream.isatty():
            self._print(first_line)
            self._reprompt()
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        if self.prompt is None:  # redraw one line in place
            self.stream.write("\r" + first_line[:width].ljust(width))
            self._live = True
        else:  # keep the progress line just above the prompt and redraw both
            self.stream.write("\r\x1b[K" + ("\x1b[1A\x1b[K" if self._above else "") + first_line[:width] + "\n")
            self._above = True
            self._reprompt()
        self.stream.flush()

    async def deliver(self, job: Job, reply: Reply) -> bool:
        paths = []
        for image in reply.images:
            source = Path(image.path) if image.path else None
            if self.out_dir is not None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                target = self.out_dir / image.filename
                target.write_bytes(image.read())
                paths.append(str(target))
            elif source is not None:
                paths.append(str(source))
        self.delivered[job.id] = paths
        self.show(reply, [f"  {path}" for path in paths], job.destination.locale)
        return True

    def show(self, reply: Reply, extra: list[str] | None = None, lang: str | None = None) -> None:
        """Print a reply (a result, the queued message, errors, lists) with its button ids, then the prompt."""
        self._end_live()
        self._print(reply.text)
        for line in extra or []:
            self._print(line)
        if reply.buttons:
            self._print(t(lang, "console.buttons"))
        for row in reply.buttons:
            self._print("  " + "  ".join(f"[{button.label}: {typed_id(button)}]" for button in row))
        self._reprompt()
