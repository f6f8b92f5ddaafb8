"""Secrets: a full run with recognisable fake tokens and passwords leaves them in no log, error, repr or row."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.backends.factory import build_backend
from bot.app import build_app
from bot.secret_source import SecretSource
from bot.settings import load_settings
from simulators.a1111 import A1111Simulator
from simulators.telegram import TelegramSimulator
from tests.fakes import png
from tests.postgres_support import read_pg
from tests.reliability_support import BotProcess, deliveries, read_db, write_config

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TOKEN = "777001:SECRET-TG-TOKEN-c4n4ry"
PASSWORD = "SECRET-BACKEND-PW-c4n4ry"
DB_PASSWORD = "SECRET-DB-PW-c4n4ry"  # in the PostgreSQL URL (the test server trusts loopback, so it is not checked)
CANARIES = (TOKEN, TOKEN.split(":", 1)[1], PASSWORD, DB_PASSWORD)


def leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def every_row(db: Path | str) -> str:
    """Every row of every table, of the SQLite file or the PostgreSQL database (URL)."""
    if isinstance(db, str):
        names = read_pg(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return "\n".join(repr(row) for (name,) in names for row in read_pg(db, f"SELECT * FROM {name}"))
    tables = [str(name) for (name,) in read_db(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(repr(row) for table in tables for row in read_db(db, f"SELECT * FROM {table}"))


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """On PostgreSQL the database password in the URL is a secret too."""
    return str(request.param)


async def test_a_full_run_leaks_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, storage: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = TelegramSimulator(token=TOKEN, time_scale=0.02)
    await sim.start()
    sim.add_chat(31)
    backend = A1111Simulator(seconds_per_step=0.01, model_load_seconds=0.01, auth=("bot", PASSWORD))
    url = await backend.start()
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "imagebridge.toml", data_dir, url, sim, extra="")
    config.write_text(config.read_text().replace('kind = "a1111"\n', 'kind = "a1111"\nusername = "bot"\n'))
    # The token from a secrets folder (Docker style: one file per secret), the password from the environment.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "telegram_token").write_text(TOKEN + "\n", encoding="utf-8")
    env = {"IMAGEBRIDGE_SECRETS_DIR": str(secrets_dir), "IMAGEBRIDGE_BACKEND_LOCAL_PASSWORD": PASSWORD}
    pg_url = storage.get("storage", {}).get("url")
    if pg_url:  # the whole URL, password included, from the environment (as .env gives it in compose)
        env["IMAGEBRIDGE_STORAGE__URL"] = pg_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
        monkeypatch.setenv("IMAGEBRIDGE_STORAGE__URL", env["IMAGEBRIDGE_STORAGE__URL"])  # the in-process part
    bot = BotProcess(config=config, log_dir=tmp_path, env=env)
    try:
        bot.start("--log-level", "DEBUG")
        await sim.wait_for(lambda: sim.count("getUpdates") > 0 or not bot.alive(), 30)
        assert bot.alive(), bot.output()[-2000:]
        await sim.send_text(31, 31, "/imagine a canary in a coal mine --steps 4")
        await sim.send_text(31, 31, "/imagine --preset nope")  # an error message, too
        # img2img: the bot downloads the photo from /file/bot<token>/…, a URL PTB percent-encodes.
        await sim.send_photo(31, 31, png(64, 64), caption="/imagine a canary, repainted --steps 4")
        await sim.wait_for(lambda: len(deliveries(sim)) >= 2 and sim.count("sendMessage") >= 2, 30)
        await bot.terminate()
    finally:
        await bot.kill()
        await backend.stop()
        await sim.stop()
    assert any(request.path.endswith("txt2img") for request in backend.requests), "the password was used"
    assert any(request.path.endswith("img2img") for request in backend.requests), "the photo was downloaded"

    # In-process: settings and backend reprs, and the error a failing backend gives.
    settings = load_settings(config)
    secrets = SecretSource({"IMAGEBRIDGE_BACKEND_LOCAL_PASSWORD": PASSWORD, "TELEGRAM_TOKEN": TOKEN})
    client = build_backend(
        "local", settings.backends["local"], None, password=secrets.backend_secret("local", "PASSWORD")
    )
    health = await client.health()  # the simulator is gone: connection refused, with an error text
    await client.aclose()
    app = await build_app(settings, [], backends=[client])
    assert settings.storage.postgres is bool(pg_url)
    texts = [repr(settings), str(settings.model_dump()), repr(client), repr(app.backends), health.detail or ""]
    texts += [repr(app.db), repr(app.stores)]
    texts.append(repr(SecretStr(TOKEN)))
    await app.stop()

    found = {
        "subprocess log": leaks(bot.output()),
        "caplog": leaks(caplog.text),
        "reprs and errors": leaks("\n".join(texts)),
        "database": leaks(every_row(pg_url or data_dir / "imagebridge.sqlite3")),
    }
    assert "/bot<token>/" in bot.output(), "httpx logged Bot API URLs, with the token redacted"
    assert "/file/bot<token>/" in bot.output(), "and the file download's URL"
    assert found == {key: [] for key in found}
