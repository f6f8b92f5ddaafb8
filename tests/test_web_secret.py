"""The gallery's signing key: the secret when given, else made once (readable by the bot only) and kept."""

from __future__ import annotations

import stat
from pathlib import Path

from adapters.web.auth import Signer, load_key
from bot.logs import redact
from bot.secret_source import SecretSource


def test_key_is_made_once_private_and_redacted(tmp_path: Path) -> None:
    source = SecretSource(environ={})
    first = load_key(source, tmp_path)
    assert load_key(source, tmp_path) == first  # sessions survive a restart
    assert stat.S_IMODE((tmp_path / "web_secret").stat().st_mode) == 0o600
    assert first.decode() not in redact(f"leak {first.decode()}")  # registered with the log redaction


def test_configured_secret_wins_and_signatures_do_not_cross_purposes(tmp_path: Path) -> None:
    key = load_key(SecretSource(environ={"IMAGEBRIDGE_WEB_SECRET": "s3cret-value-for-tests"}), tmp_path)
    assert key == b"s3cret-value-for-tests" and not (tmp_path / "web_secret").exists()
    signer = Signer(key)
    value = signer.sign("session", {"u": "1"})
    assert signer.unsign("session", value) == {"u": "1"}
    assert signer.unsign("link", value) is None  # a value signed for one use fits no other
    assert Signer(b"other").unsign("session", value) is None
    assert signer.unsign("session", value[:-2] + "xx") is None
