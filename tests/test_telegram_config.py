"""The [telegram] section: strict keys, the token only from the environment, allowed chats."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config_telegram import TelegramConfig, token_from_env
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


def test_config_rejects_unknown_keys_and_a_token_in_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        TelegramConfig.model_validate({"enabled": True, "token": "123:abc"})
    with pytest.raises(ValidationError):
        TelegramConfig.model_validate({"api_base_url": "ftp://x"})
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    assert token_from_env() is None
    monkeypatch.setenv("TELEGRAM_TOKEN", " 123:abc ")
    token = token_from_env()
    assert token is not None and token.get_secret_value() == "123:abc" and "abc" not in repr(token)


async def test_chats_outside_allowed_chats_are_ignored(bench: Bench) -> None:
    bench.config = bench.config.model_copy(update={"allowed_chats": [PRIVATE]})
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/imagine@test_bot ignored")
    await bench.imagine(PRIVATE, PRIVATE, "/imagine answered")
    assert bench.sim.visible(GROUP) == []
    assert len(bench.backend.calls) == 1
