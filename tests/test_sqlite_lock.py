"""One bot process per SQLite database: a second `imagebridge run` (or App) on the same file is refused, saying
who holds it and what to do; a kill -9 leaves no stale lock; `db stats`/`db backup` still work meanwhile.

Before the lock, two processes on one file each recovered the same queued jobs into their own memory, ran
them both, and the second crashed storing an image id the first had stored."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot.app import build_app
from bot.errors import ConfigError
from bot.models import JobState
from commands.dispatch import dispatch_text
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound

ROOT = Path(__file__).resolve().parent.parent


async def test_a_second_app_on_one_sqlite_database_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    seed = await build_app(
        settings,
        [RecordingOutbound()],
        backends=[FakeBackend()],
    )
    ids = []
    for index in range(3):  # queued jobs that a restart recovers
        reply = await dispatch_text(seed.services, invocation(user=f"u{index}"), f"/imagine job {index}")
        assert reply is not None and reply.job_id
        ids.append(reply.job_id)
    await seed.stop()

    first_backend, second_backend = FakeBackend(hold=True), FakeBackend()
    first = await build_app(settings, [RecordingOutbound()], backends=[first_backend])
    await first.start()
    await asyncio.wait_for(first_backend.started.wait(), 5)
    try:
        with pytest.raises(ConfigError) as refused:
            second = await build_app(settings, [RecordingOutbound()], backends=[second_backend])
            await second.start()  # (before the lock: it recovered the same jobs and ran them too)
            await asyncio.wait_for(second_backend.started.wait(), 5)
            await second.stop()
        message = str(refused.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in message
        assert "stop that one first" in message and "PostgreSQL" in message
        assert second_backend.calls == []
    finally:
        first_backend.release.set()
        for job_id in ids:
            await asyncio.wait_for(first.engine.finished_event(job_id).wait(), 5)
        await first.stop()
    third = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])  # released at stop
    try:
        for job_id in ids:
            job = await third.services.store.get(job_id)
            assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 1
    finally:
        await third.stop()


async def _cli(config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "--config", str(config), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}, cwd=config.parent,
    )  # fmt: skip


async def _until_running(process: asyncio.subprocess.Process) -> None:
    """Read the bot's log until it says it runs (it holds the lock by then)."""
    assert process.stderr is not None
    seen = []
    async with asyncio.timeout(60):
        while True:
            line = (await process.stderr.readline()).decode()
            seen.append(line)
            assert line, "the bot stopped before it ran:\n" + "".join(seen)
            if "imagebridge running" in line:
                return


async def _finished(process: asyncio.subprocess.Process) -> tuple[int, str]:
    _, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, errors.decode()


@pytest.mark.slow
async def test_two_real_run_processes_and_a_kill_9(tmp_path: Path) -> None:
    config = tmp_path / "imagebridge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[console]\nenabled = true\n'
        '[backends.local]\nkind = "forge"\nurl = "http://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    first = await _cli(config, "run")
    try:
        await _until_running(first)
        code, errors = await _finished(await _cli(config, "run"))
        assert code == 2, errors
        assert f"pid {first.pid} on {socket.gethostname()}" in errors and "PostgreSQL" in errors
        code, errors = await _finished(await _cli(config, "db", "migrate"))
        assert code == 2 and f"pid {first.pid}" in errors, "no schema change under a running bot"
        code, errors = await _finished(await _cli(config, "db", "stats"))
        assert code == 0, errors
        code, errors = await _finished(await _cli(config, "db", "backup", str(tmp_path / "copy.sqlite3")))
        assert code == 0 and (tmp_path / "copy.sqlite3").is_file(), errors
    finally:
        first.send_signal(signal.SIGKILL)  # no clean shutdown: the lock must die with the process
        await first.wait()
    second = await _cli(config, "run")
    try:
        await _until_running(second)
    finally:
        second.send_signal(signal.SIGTERM)
        await _finished(second)
