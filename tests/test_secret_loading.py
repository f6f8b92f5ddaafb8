"""Every secret through one path (environment, then IMAGEBRIDGE_SECRETS_DIR), and none from undocumented names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import build_backend
from bot.logs import RedactBotToken
from bot.secret_source import SecretSource
from bot.settings import BackendConfig
from simulators.horde import HordeSimulator
from tests.test_backend_services import request


async def test_the_horde_key_comes_from_the_documented_name_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = HordeSimulator(seconds_per_job=0.05, keys={"registered-key", "undocumented-key"})
    config = BackendConfig(kind="horde", url=await sim.start(), poll_seconds=0.1, model="Deliberate")
    monkeypatch.setenv("AI_HORDE_API_KEY", "undocumented-key")
    (tmp_path / "IMAGEBRIDGE_BACKEND_POOL_API_KEY").write_text("registered-key\n", encoding="utf-8")
    anonymous = build_backend("crowd", config, SecretSource(secrets_dir=tmp_path))
    keyed = build_backend("pool", config, SecretSource(secrets_dir=tmp_path))
    try:
        await anonymous.generate("a", request(), None, lambda p: None)
        await keyed.generate("b", request(), None, lambda p: None)
    finally:
        await anonymous.aclose()
        await keyed.aclose()
        await sim.stop()
    assert [job.key for job in sim.jobs.values()] == ["0000000000", "registered-key"]


def test_a_secret_read_is_redacted_from_logs_in_every_encoding() -> None:
    token = SecretSource({"TELEGRAM_TOKEN": "4242:Redact-Me_please"}).get("TELEGRAM_TOKEN")
    assert token is not None
    lines = [
        "GET https://api.telegram.org/file/bot4242%3ARedact-Me_please/photos/1.jpg",
        "token=4242%3ARedact-Me_please&x=1",
        "the secret half Redact-Me_please alone",
    ]
    for line in lines:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s", (line,), None)
        RedactBotToken().filter(record)
        assert "Redact-Me" not in record.getMessage(), line
