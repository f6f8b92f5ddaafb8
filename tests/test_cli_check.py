"""`imagebridge check` as a user runs it (a subprocess) against a Forge simulator that has only SDXL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.app import example_config_path
from simulators.a1111 import A1111Simulator

pytestmark = pytest.mark.backends
ROOT = str(Path(__file__).resolve().parent.parent)


async def test_check_prints_which_preset_runs_where_and_why_not(tmp_path: Path) -> None:
    sim = A1111Simulator(flavour="forge", checkpoints=["sd_xl_base_1.0.safetensors [31e35c80fc]"])
    url = await sim.start()
    config = tmp_path / "imagebridge.toml"
    text = example_config_path().read_text(encoding="utf-8")
    config.write_text(text.replace('url = "http://127.0.0.1:7860"', f'url = "{url}"'), encoding="utf-8")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "--config", str(config), "check",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ROOT},
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    finally:
        await sim.stop()
    lines = out.decode().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split(" ", 1)[0] in ("sd15", "sdxl", "flux")}
    assert rows == {"sd15": ["no"], "sdxl": ["yes"], "flux": ["no"]}, out.decode() + err.decode()
    assert "  sd15 on local: the checkpoint v1-5-pruned-emaonly.safetensors is missing" in lines
    assert "  flux on local: the checkpoint flux1-dev-bnb-nf4-v2.safetensors is missing" in lines
    assert process.returncode == 1  # two presets run nowhere


async def test_a_backend_that_does_not_answer_shows_why_in_its_own_column(tmp_path: Path) -> None:
    config = tmp_path / "imagebridge.toml"
    config.write_text(
        '[backends.local]\nkind = "a1111"\nurl = "http://127.0.0.1:9"\n'
        '[presets.sd15]\nbackend = "a1111"\ncheckpoint = "v1-5-pruned-emaonly.safetensors"\n',
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "check", "--config", str(config),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ROOT},
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    lines = out.decode().splitlines()
    header, row = lines[0].split(), next(line for line in lines if line.startswith("local "))
    assert header[-2:] == ["loaded", "detail"]
    cells = row.split(None, 6)
    assert cells[5] == "-", row  # nothing is loaded on a backend that does not answer
    assert "cannot be reached" in cells[6], row
    assert process.returncode == 1
