"""Logging: human-readable or JSON lines, each line about a job carrying its id, bot tokens redacted."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, quote_plus

# The job the current task works on; tasks started while it is set (status edits, storing) inherit it.
current_job: ContextVar[str | None] = ContextVar("current_job", default=None)

# A Bot API URL carries the token after /bot, its ':' raw or percent-encoded (PTB's file URLs quote it).
BOT_TOKEN_IN_URL = re.compile(r"/(file/)?bot\d+(?::|%3[Aa])[A-Za-z0-9_-]+")
JOB_IN_TEXT = re.compile(r"\bjob ([0-9a-f]{12})\b")
SHORTEST_SECRET = 6  # shorter values would redact ordinary words
_secret_forms: set[str] = set()
_secrets: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Redact this value from every log line from now on, as written and in the encodings URLs and forms use.

    A bot token `123456:ABC…` is also redacted by its secret half alone (the number before ':' is the bot's id).
    """
    global _secrets
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    _head, colon, tail = value.partition(":")
    if colon:
        forms |= {tail, quote(tail, safe="")}
    _secret_forms.update(form for form in forms if len(form) >= SHORTEST_SECRET)
    if _secret_forms:
        ordered = sorted(_secret_forms, key=len, reverse=True)  # the longest form first: no half-redacted tokens
        _secrets = re.compile("|".join(re.escape(form) for form in ordered))


def redact(text: str) -> str:
    """The text with every registered secret and any Bot API token in a URL replaced."""
    text = BOT_TOKEN_IN_URL.sub(r"/\1bot<token>", text)
    return _secrets.sub("<secret>", text) if _secrets is not None else text


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
    """Redacts secrets from the message and the traceback: httpx logs every request URL at INFO, and Bot API URLs
    carry the bot token (`/bot<token>/method`, `/file/bot<token>/path`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # the redacted text
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
