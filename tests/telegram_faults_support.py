"""A Telegram bench whose simulator has the real service's faults (migration, removal, slow and lost answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.config_telegram import TelegramConfig
from simulators.telegram_faults import FaultyTelegramSimulator
from tests.fakes import FakeBackend
from tests.reliability_support import read_db
from tests.test_telegram_support import GROUP, PRIVATE, Bench


class FaultBench(Bench):
    """`Bench` with `sim` a FaultyTelegramSimulator and a few database reads."""

    sim: FaultyTelegramSimulator

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return read_db(self.data_dir / "imagebridge.sqlite3", sql, params)

    def ledger(self, job_id: str) -> str:
        found = self.rows("SELECT state FROM quota_ledger WHERE job_id = ?", (job_id,))
        return str(found[0][0]) if found else "none"

    def delivery(self, job_id: str) -> str:
        found = self.rows("SELECT delivery FROM jobs WHERE id = ?", (job_id,))
        return str(found[0][0]) if found else "none"


def fault_config(sim: FaultyTelegramSimulator, **changes: Any) -> TelegramConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "api_base_url": sim.api_base_url,
        "file_base_url": sim.file_base_url,
        "private_progress_interval_seconds": 0.02,
        "group_progress_interval_seconds": 0.06,
        "poll_timeout_seconds": 1,
        "admin_users": [99],
        "flood_time_scale": 0.03,
    }
    values.update(changes)
    return TelegramConfig(**values)


@asynccontextmanager
async def fault_bench(data_dir: Path, **overrides: Any) -> AsyncIterator[FaultBench]:
    """A FaultBench on a fresh faulty simulator with a private chat and a group; `overrides` go to the settings."""
    sim = FaultyTelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    sim.add_chat(GROUP, title="artists", admins=(1,))
    quota = {"enabled": True, "user_daily": 100000.0, "server_daily": 100000.0}
    bench = FaultBench(
        sim=sim,
        backend=FakeBackend(),
        data_dir=data_dir,
        config=fault_config(sim),
        overrides={"quota": quota, **overrides},
    )
    try:
        yield bench
    finally:
        await bench.close()
        await sim.stop()


@pytest.fixture
async def fbench(tmp_path: Path) -> AsyncIterator[FaultBench]:
    async with fault_bench(tmp_path / "data") as bench:
        yield bench
