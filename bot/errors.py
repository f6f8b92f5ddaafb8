"""Domain exceptions. A `UserError` carries a message written for the person who typed the command."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix. Adapters show `str(error)` to the user, nothing else."""


class InvalidRequest(UserError):
    """The command's input is out of range, malformed or unknown."""


class QuotaExceeded(UserError):
    """The job would take the user or server over a daily limit."""


class PresetNotAllowed(UserError):
    """The preset exists but may not be used here (NSFW, channel allowlist)."""


class NotPermitted(UserError):
    """The user may not do this (admin only, someone else's job, banned)."""


class NotFound(UserError):
    """The job or image does not exist, or is not visible to this user."""


class BackendError(Exception):
    """A backend failed. `user_message` is safe to show; `retryable` says whether trying again may help."""

    def __init__(self, user_message: str, *, retryable: bool = False, detail: str = "") -> None:
        super().__init__(user_message if not detail else f"{user_message} ({detail})")
        self.user_message = user_message
        self.retryable = retryable
        self.detail = detail


class BackendUnavailable(BackendError):
    """The backend cannot be reached at all: the job goes back to the queue, the backend to health checks."""

    def __init__(self, user_message: str, *, detail: str = "") -> None:
        super().__init__(user_message, retryable=True, detail=detail)


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and what is allowed."""
