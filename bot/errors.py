"""Domain exceptions. A `UserError` carries a message written for the person who typed the command."""

from __future__ import annotations

from typing import Self

from bot.i18n import t


class Catalogued:
    """An error whose text may come from the catalogs: `key` and `params` render it in any language."""

    key: str | None
    params: dict[str, object]

    def english(self) -> str:
        return str(self)

    def localized(self, lang: str | None) -> str:
        return t(lang, self.key, **self.params) if self.key else self.english()


class UserError(Catalogued, Exception):
    """Something the user can fix. Adapters show `str(error)` (English) or `localized(lang)` to the user.

    Raise with `Kind.of(key, **params)` so the message can be shown in the user's language.
    """

    def __init__(self, message: str, *, key: str | None = None, params: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.params = params or {}

    @classmethod
    def of(cls, key: str, **params: object) -> Self:
        """An error whose English text comes from the catalog, so every language has it."""
        return cls(t("en", key, **params), key=key, params=params)


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


class AlreadyHandled(UserError):
    """The command message already made its job in another process (a polling hand-over replayed it while the
    old holder still ran it): this handler stays silent."""


class BackendError(Catalogued, Exception):
    """A backend failed. `user_message` (English) is safe to show; `retryable` says whether trying again may help.

    Raise with `BackendError.of(key, **params)` so `localized(lang)` can show it in the user's language.
    """

    def __init__(
        self,
        user_message: str,
        *,
        retryable: bool = False,
        detail: str = "",
        key: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(user_message if not detail else f"{user_message} ({detail})")
        self.user_message = user_message
        self.retryable = retryable
        self.detail = detail
        self.key = key
        self.params = params or {}

    @classmethod
    def of(cls, key: str, *, retryable: bool = False, detail: str = "", **params: object) -> Self:
        """An error whose English text comes from the catalog, so every language has it."""
        return cls(t("en", key, **params), retryable=retryable, detail=detail, key=key, params=params)

    def english(self) -> str:
        return self.user_message  # str() adds the technical detail, which is for logs


class BackendUnavailable(BackendError):
    """The backend cannot be reached at all: the job goes back to the queue, the backend to health checks.

    `mid_job`: it went away while it was running this job (a dropped connection, a closed socket). Such a try
    counts as an attempt, since the job itself may be what brings the backend down; one that never reached
    the backend does not.
    """

    def __init__(
        self,
        user_message: str,
        *,
        detail: str = "",
        key: str | None = None,
        params: dict[str, object] | None = None,
        mid_job: bool = False,
    ) -> None:
        super().__init__(user_message, retryable=True, detail=detail, key=key, params=params)
        self.mid_job = mid_job

    @classmethod
    def of(cls, key: str, *, detail: str = "", **params: object) -> Self:
        """Always retryable, so it takes no `retryable`."""
        return cls(t("en", key, **params), detail=detail, key=key, params=params)

    @classmethod
    def during(cls, running: bool, key: str, *, detail: str = "", **params: object) -> Self:
        """One that may have happened while the backend ran the job (`running`: it did)."""
        return cls(t("en", key, **params), detail=detail, key=key, params=params, mid_job=running)


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and what is allowed."""
