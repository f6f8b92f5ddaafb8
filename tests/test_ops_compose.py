"""The Docker files parse and say what the README promises (no Docker engine is needed to check this)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def instructions(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def test_bot_service_always_runs_with_its_data_volume_and_config() -> None:
    services = compose()["services"]
    bot = services["bot"]
    assert "profiles" not in bot
    assert bot["build"] == "."
    assert bot["env_file"] == ".env"
    assert bot["restart"] == "unless-stopped"
    assert "imagebridge-data:/data" in bot["volumes"]
    assert any(volume.endswith(":/config:ro") for volume in bot["volumes"])
    assert "imagebridge-data" in compose()["volumes"]
    assert bot["environment"]["IMAGEBRIDGE_CONFIG"] == "/config/imagebridge.toml"


def test_gpu_backends_sit_behind_profiles_with_an_nvidia_reservation() -> None:
    services = compose()["services"]
    assert services["forge"]["profiles"] == ["forge"]
    assert services["comfyui"]["profiles"] == ["comfyui"]
    for name in ("forge", "comfyui"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert any("./models/" in volume for volume in services[name]["volumes"])
    # The ai-dock Forge image reads FORGE_ARGS and adds --port $FORGE_PORT_LOCAL itself (its README and
    # supervisor-forge.sh); COMMANDLINE_ARGS is the plain webui.sh variable it never reads.
    forge = services["forge"]["environment"]
    assert "COMMANDLINE_ARGS" not in forge
    forge_args = shlex.split(forge["FORGE_ARGS"])
    assert {"--api", "--listen"} <= set(forge_args) and "--port" not in forge_args
    assert services["forge"]["expose"] == [forge["FORGE_PORT_LOCAL"]]
    assert "--listen" in services["comfyui"]["environment"]["CLI_ARGS"]


def test_compose_documents_the_backend_urls_by_service_name() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert 'url = "http://forge:17860"' in text
    assert 'url = "http://comfyui:8188"' in text


def test_dockerfile_runs_as_a_non_root_user_with_a_data_volume() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0")
    assert json.loads(instructions("VOLUME")[0]) == ["/data"]
    env = " ".join(instructions("ENV"))
    assert "IMAGEBRIDGE_DATA_DIR=/data" in env
    assert "IMAGEBRIDGE_CONFIG=/config/imagebridge.toml" in env
    assert any(rest.startswith("pip install .") for rest in instructions("RUN"))
    assert json.loads(instructions("CMD")[0]) == ["imagebridge", "run"]


def test_healthcheck_asks_the_bot_itself() -> None:
    (check,) = instructions("HEALTHCHECK")
    command = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9100/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")  # the one-liner is valid Python


def test_env_example_leaves_every_value_empty_and_secrets_stay_out_of_the_image() -> None:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    assert {"DISCORD_TOKEN", "TELEGRAM_TOKEN"} <= set(values)
    assert any(key.startswith("IMAGEBRIDGE_BACKEND_") and key.endswith("_PASSWORD") for key in values)
    assert any(key.startswith("IMAGEBRIDGE_BACKEND_") and key.endswith("_API_KEY") for key in values)
    assert set(values.values()) == {""}  # "leave empty" as its comments say; an empty secret counts as unset
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".venv", "data"} <= set(ignored)


def test_the_postgres_profile_runs_the_official_image_the_bot_can_use() -> None:
    services = compose()["services"]
    db = services["db"]
    assert db["profiles"] == ["postgres"] and db["image"].endswith("postgres:17}")
    # The official image's documented variables create the user and database; the password is the bot's secret.
    assert db["environment"]["POSTGRES_USER"] == "imagebridge" and db["environment"]["POSTGRES_DB"] == "imagebridge"
    assert "IMAGEBRIDGE_STORAGE_PASSWORD" in db["environment"]["POSTGRES_PASSWORD"]
    assert "imagebridge-postgres:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in db["healthcheck"]["test"][1]
    assert services["bot"]["depends_on"]["db"] == {"condition": "service_healthy", "required": False}
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "IMAGEBRIDGE_STORAGE__URL=\n" in example and "IMAGEBRIDGE_STORAGE_PASSWORD=\n" in example
