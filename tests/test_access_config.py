"""`[access] bot_admins` and quota numbers are validated at start, with messages that say what is allowed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.errors import ConfigError
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"access": {"bot_admins": ["123456"]}}, 'is not "platform:user_id"'),
        ({"access": {"bot_admins": ["slack:42"]}}, "discord, telegram or console"),
        ({"quota": {"user_daily": math.inf}}, "quota.user_daily"),
        ({"quota": {"server_daily": 1e12}}, "less than or equal to 1000000"),
        ({"quota": {"roles": {"vip": math.nan}}}, "quota.roles.vip"),
    ],
)
def test_bad_access_and_quota_values_stop_start_up(tmp_path: Path, overrides: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(tmp_path, **overrides)
    assert words in str(caught.value)


def test_bot_admins_come_from_access_and_the_older_keys(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, access={"bot_admins": ["discord:1"]}, admins=["console:root"], telegram={"admin_users": [99]}
    )
    assert settings.bot_admins == {"discord:1", "console:root", "telegram:99"}
