"""Console output: a live one-line progress bar, then the image paths and the job id."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from bot.models import Job
from bot.replies import Reply


class ConsoleOutbound:
    """Outbound port for a terminal. Images are copied to `out_dir` when one is given."""

    platform = "console"

    def __init__(self, *, out_dir: Path | None = None, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.out_dir = out_dir
        self.stream = stream or sys.stdout
        self.interval = interval
        self.delivered: dict[str, list[str]] = {}
        self._live = False

    def min_interval(self, job: Job) -> float:
        return self.interval

    def write(self, text: str) -> None:
        self._end_live()
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def _end_live(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False

    async def update_status(self, job: Job, reply: Reply) -> None:
        first_line = reply.text.splitlines()[0] if reply.text else ""
        if self.stream.isatty():
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + first_line[:width].ljust(width))
            self._live = True
        else:
            self.stream.write(first_line + "\n")
        self.stream.flush()

    async def deliver(self, job: Job, reply: Reply) -> bool:
        self._end_live()
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
        self.write(reply.text)
        for path in paths:
            self.write(f"  {path}")
        return True

    def show(self, reply: Reply) -> None:
        """Print a command's reply (queued message, errors, lists)."""
        self.write(reply.text)
        for row in reply.buttons:
            labels = " ".join(f"[{button.label}: {button.id}]" for button in row)
            self.write(f"  {labels}")
