"""Log lines: JSON when asked, each line about a job carrying its id, bot tokens redacted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_logs_json_lines_with_job_ids(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--log-format",
            "json",
            "--log-level",
            "INFO",
            "demo",
            "a fox",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    about_jobs = [line for line in lines if "job" in line["message"]]
    assert about_jobs and all("job_id" in line for line in about_jobs)


def test_token_in_urls_is_redacted() -> None:
    import logging

    from bot.logs import JobContext, JsonLines, RedactBotToken, current_job

    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST %s", ("http://x/bot123456:AAsecretTOKEN/sendPhoto",), None
    )
    marker = current_job.set("abc123def456")
    try:
        for check in (JobContext(), RedactBotToken()):
            check.filter(record)
    finally:
        current_job.reset(marker)
    line = json.loads(JsonLines().format(record))
    assert line["message"] == "POST http://x/bot<token>/sendPhoto" and line["job_id"] == "abc123def456"
