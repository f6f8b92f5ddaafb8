"""The ops pieces as the composition root wires them: /healthz, /metrics and `imagebridge db backup`."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from commands.dispatch import dispatch_text
from storage.db import Database
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend


async def test_metrics_endpoint_counts_jobs_and_quota_denials(app_factory: AppFactory) -> None:
    app = await app_factory(backend=FakeBackend(), metrics={"port": 0}, quota={"user_daily": 3.0})
    assert app.ops is not None
    ok = await dispatch_text(app.services, invocation(), "/imagine fox --preset sd15 --steps 10")
    denied = await dispatch_text(app.services, invocation(), "/imagine fox --preset sd15 --steps 50")
    assert ok is not None and ok.job_id and denied is not None and "quota" in denied.text
    await asyncio.wait_for(app.engine.finished_event(ok.job_id).wait(), 5)
    async with httpx.AsyncClient(base_url=app.ops.url) as client:
        health = await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    assert health.status_code == 200 and health.json()["backends"] == {"fake": True}
    assert "imagebridge_quota_denials_total 1.0" in metrics
    assert 'imagebridge_jobs_finished_total{state="succeeded"} 1.0' in metrics


def test_db_backup_command(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    (tmp_path / "data").mkdir()

    async def create() -> None:  # the bot's database; `db backup` refuses to create an empty one
        await (await Database.open(tmp_path / "data" / "imagebridge.sqlite3")).close()

    asyncio.run(create())
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "db", "backup", str(tmp_path / "copy.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "copy.sqlite3") as copy:
        assert copy.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
