"""Logging: human-readable or JSON lines, each line about a job carrying its id, bot tokens redacted."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

# The job the current task works on; tasks started while it is set (status edits, storing) inherit it.
current_job: ContextVar[str | None] = ContextVar("current_job", default=None)

BOT_TOKEN_IN_URL = re.compile(r"/(file/)?bot\d+:[A-Za-z0-9_-]+")
JOB_IN_TEXT = re.compile(r"\bjob ([0-9a-f]{12})\b")


class JobContext(logging.Filter):
    """Adds `job_id` to every record: the record's extra, else the task's current job, else a "job <id>" in the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None) or current_job.get()
        if job_id is None and (found := JOB_IN_TEXT.search(record.getMessage())):
            job_id = found.group(1)
        record.job_id = job_id
        record.job = f" [job {job_id}]" if job_id else ""
        return True


class RedactBotToken(logging.Filter):
    """httpx logs every request URL at INFO; Bot API URLs carry the bot token (`/bot<token>/method`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if BOT_TOKEN_IN_URL.search(message):
            record.msg, record.args = BOT_TOKEN_IN_URL.sub(r"/\1bot<token>", message), None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job_id and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, style: Literal["text", "json"] = "text") -> None:
    """Set up the root logger once for the CLI."""
    handler = logging.StreamHandler()
    if style == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s"))
    handler.addFilter(JobContext())
    handler.addFilter(RedactBotToken())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
