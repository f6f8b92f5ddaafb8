"""The CLI as a user runs it: the demo and a bad config, as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


def test_demo_writes_two_pngs_at_the_preset_size(tmp_path: Path) -> None:
    result = run("demo", "a red fox", "--count", "2", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "out").glob("*.png"))
    assert len(files) == 2
    for path in files:
        with Image.open(path) as img:
            assert img.size == (1024, 1024)  # the sdxl preset, 1:1
            assert "a red fox" in str(img.info.get("parameters"))
        assert str(path) in result.stdout
    assert "Queued #1 in line" in result.stdout and "job " in result.stdout


def test_demo_reports_bad_input_and_exits_non_zero(tmp_path: Path) -> None:
    result = run("demo", "a red fox", "--preset", "nope", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode != 0
    assert "no preset 'nope'" in result.stdout
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_check_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[presets.x]\ncheckpoint = "a"\nsteps = "many"\n', encoding="utf-8")
    result = run("--config", str(bad), "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "presets.x.steps" in result.stderr and "valid integer" in result.stderr


def test_the_demo_edits_an_image_with_gpt_image(tmp_path: Path) -> None:
    Image.new("RGB", (96, 64), (200, 30, 30)).save(tmp_path / "red.png")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", "out"],
        cwd=tmp_path,
        input="/edit make it night --image red.png\n",  # piped: the demo waits for the job, then exits
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert result.returncode == 0, result.stderr
    assert "“make it night” (edited)" in result.stdout and "gpt_edit" in result.stdout
    files = list((tmp_path / "out").glob("*.png"))
    assert len(files) == 1
    with Image.open(files[0]) as img:
        assert img.size == (1536, 1024)  # the reference's 3:2 shape
