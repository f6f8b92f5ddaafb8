from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import example_config_path
from bot.errors import ConfigError
from bot.secret_source import SecretSource
from bot.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "imagebridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_ships_the_three_presets() -> None:
    settings = load_settings(example_config_path())
    assert set(settings.presets) >= {"sd15", "sdxl", "flux"}
    flux = settings.presets["flux"]
    assert (flux.scheduler, flux.cfg_scale, flux.distilled_cfg_scale) == ("Simple", 1.0, 3.5)
    assert "ae.safetensors" in flux.override_settings["forge_additional_modules"]
    assert settings.presets["sdxl"].name == "sdxl"


def test_bad_value_names_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, '[presets.x]\ncheckpoint = "a"\nsteps = 30\nmax_steps = 20\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert "presets.x" in str(error.value) and "max_steps" in str(error.value)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.max_prompt_chrs"):
        load_settings(write(tmp_path, "[limits]\nmax_prompt_chrs = 10\n"))


def test_bad_backend_kind_lists_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, '[backends.gpu]\nkind = "midjourney"\nurl = "http://x"\n'))
    assert "backends.gpu.kind" in str(error.value) and "'a1111'" in str(error.value)


def test_resolution_must_be_a_multiple_of_64(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple of 64"):
        load_settings(write(tmp_path, '[presets.x]\ncheckpoint = "a"\nbase_resolution = 1000\n'))


def test_secrets_in_the_file_stop_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.gpu]\nkind = "a1111"\nurl = "http://x"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert "backends.gpu.password" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_unknown_time_zone(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"quota\.timezone"):
        load_settings(write(tmp_path, '[quota]\ntimezone = "Mars/Olympus"\n'))


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBRIDGE_QUOTA__USER_DAILY", "42")
    assert load_settings(write(tmp_path, "[quota]\nuser_daily = 7\n")).quota.user_daily == 42


def test_secrets_from_environment_and_files(tmp_path: Path) -> None:
    (tmp_path / "IMAGEBRIDGE_BACKEND_GPU_API_KEY").write_text("from-file\n")
    secrets = SecretSource({"IMAGEBRIDGE_BACKEND_GPU_PASSWORD": "pw"}, secrets_dir=tmp_path)
    password = secrets.backend_secret("gpu", "PASSWORD")
    assert isinstance(password, SecretStr) and password.get_secret_value() == "pw"
    assert "pw" not in repr(password)
    key = secrets.backend_secret("gpu", "API_KEY")
    assert key is not None and key.get_secret_value() == "from-file"
    assert secrets.backend_secret("other", "PASSWORD") is None
