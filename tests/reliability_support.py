"""Shared bench for the reliability suites: `imagebridge run` as a subprocess against loopback simulators."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.telegram import TelegramSimulator
from simulators.telegram_methods import METHODS, Params
from simulators.telegram_state import ApiError

JOB_ID = re.compile(r"job ([0-9a-f]{12})")
BUTTON_JOB = re.compile(r"^[a-z_]+:([0-9a-f]{12})")
Handler = Callable[[TelegramSimulator, Params], Awaitable[Any]]


def write_config(path: Path, data_dir: Path, backend_url: str, sim: TelegramSimulator, extra: str = "") -> Path:
    """A config TOML for `imagebridge run`: one A1111 backend, Telegram against the simulator, fast timings."""
    path.write_text(
        f"""
data_dir = "{data_dir.as_posix()}"
log_level = "INFO"
default_preset = "sd15"

[limits]
retry_backoff_seconds = 0
job_timeout_seconds = 60

[quota]
enabled = true
user_daily = 100000.0
server_daily = 100000.0

[telegram]
enabled = true
api_base_url = "{sim.api_base_url}"
file_base_url = "{sim.file_base_url}"
poll_timeout_seconds = 1
private_progress_interval_seconds = 0.2
group_progress_interval_seconds = 0.2

[backends.local]
kind = "a1111"
url = "{backend_url}"
poll_interval_seconds = 0.1
connect_timeout_seconds = 2

[presets.sd15]
description = "Stable Diffusion 1.5"
backend = "a1111"
checkpoint = "v1-5-pruned-emaonly.safetensors"
steps = 8
max_steps = 50
base_resolution = 512
max_images = 4
{extra}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class BotProcess:
    """`python -m bot.cli --config CFG run` with its stderr in a file; killed with SIGKILL or stopped with SIGTERM."""

    config: Path
    log_dir: Path
    env: dict[str, str]
    runs: int = 0
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, *extra_args: str) -> None:
        self.runs += 1
        log_path = self.log_dir / f"bot-{self.runs}.log"
        self.logs.append(log_path)
        env = {**os.environ, **self.env}
        with log_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(self.config), *extra_args, "run"],
                stdout=stderr,
                stderr=stderr,
                env=env,
                cwd=str(Path(__file__).resolve().parent.parent),
            )

    async def kill(self) -> None:
        """kill -9: no clean shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        await self.wait()

    async def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        await self.wait()

    async def wait(self, within: float = 20.0) -> None:
        process = self.process
        if process is None:
            return
        async with asyncio.timeout(within):
            await asyncio.to_thread(process.wait)
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in self.logs if path.exists())


def read_db(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the bot's database without touching it (read-only URI; WAL readers do not block the writer)."""
    if not path.exists():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return list(connection.execute(sql, params).fetchall())
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def deliveries(sim: TelegramSimulator) -> Counter[str]:
    """How many result photos (with the job's caption or keyboard) each job got, from what the chats show."""
    counted: Counter[str] = Counter()
    for message in sim.messages.values():
        if not message.from_bot or message.photo is None or message.deleted:  # a deleted preview is no result
            continue
        match = JOB_ID.search(message.caption or "")
        ids = {match.group(1)} if match else set()
        ids |= {found.group(1) for data in message.buttons if (found := BUTTON_JOB.match(data))}
        for job_id in ids:
            counted[job_id] += 1
    return counted


def queued_jobs(sim: TelegramSimulator) -> set[str]:
    """Jobs named in any bot message still in the chat: a status message, or the result that replaced it."""
    return {
        m.group(1)
        for message in sim.messages.values()
        if message.from_bot and (m := JOB_ID.search(message.text or message.caption or ""))
    }


@dataclass
class Gate:
    """Holds one Bot API method: calls wait until released; dropped ones fail without any effect."""

    method: str
    held: int = 0
    drop: bool = False
    active: bool = True
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self, monkeypatch: Any) -> None:
        original: Handler = METHODS[self.method.lower()]

        async def gated(sim: TelegramSimulator, params: Params) -> Any:
            if not self.active:
                return await original(sim, params)
            self.held += 1
            self.arrived.set()
            await self.release.wait()
            if self.drop:
                raise ApiError(500, "Internal Server Error: dropped by the test")
            return await original(sim, params)

        monkeypatch.setitem(METHODS, self.method.lower(), gated)
