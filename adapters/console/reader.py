"""Reading typed lines without blocking the event loop or the exit.

A daemon thread reads (with GNU readline's line editing and history when the input is a terminal), so
Ctrl-C or a stop never waits for the user to press Enter: the thread is simply left behind at exit, and
the terminal's settings, which readline changes while it reads, are put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any, TextIO


class LineReader:
    """Lines from `source` as an async stream; `readline()` returns None at the end of input."""

    def __init__(self, source: TextIO, output: TextIO) -> None:
        self.source = source
        self.output = output
        self.interactive = _isatty(source) and _isatty(output)
        self._readline: Any = None
        self._terminal: list[Any] | None = None
        if self.interactive:
            with contextlib.suppress(ImportError):  # not on Windows without pyreadline
                import readline

                self._readline = readline

    def typed(self) -> str:
        """What the user has typed on the current line so far (to redraw it after other output)."""
        return str(self._readline.get_line_buffer()) if self._readline is not None else ""

    async def readline(self, prompt: str) -> str | None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()

        def read() -> None:
            try:
                line: str | None = self._read_one(prompt)
            except (EOFError, OSError, ValueError):
                line = None
            loop.call_soon_threadsafe(_settle, done, line)

        threading.Thread(target=read, name="console-input", daemon=True).start()
        return await done

    def _read_one(self, prompt: str) -> str | None:
        if self._readline is not None:
            return input(prompt) + "\n"  # readline draws the prompt, so it can redraw the line as it is edited
        if self.interactive:  # no prompts in piped output
            self.output.write(prompt)
            self.output.flush()
        line = self.source.readline()
        return line or None

    def __enter__(self) -> LineReader:
        if self.interactive:
            with contextlib.suppress(ImportError, OSError):
                import termios

                self._terminal = termios.tcgetattr(self.source.fileno())
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._terminal is not None:
            with contextlib.suppress(ImportError, OSError):
                import termios

                termios.tcsetattr(self.source.fileno(), termios.TCSADRAIN, self._terminal)


def _settle(future: asyncio.Future[str | None], line: str | None) -> None:
    if not future.done():  # the reader was cancelled (Ctrl-C) while the thread waited
        future.set_result(line)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
