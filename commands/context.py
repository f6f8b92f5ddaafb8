"""What a use case gets: the services it may call and who invoked it from where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.edit_prompts import EditPrompts
from bot.errors import NotPermitted
from bot.i18n import language
from bot.jobs import Jobs
from bot.models import Destination, StoredImage, utcnow
from bot.ports import AccountStore, ImageFiles, Inbox, JobStore, UserPrefs, UserSettingsStore
from bot.settings import Settings


class SignInLinks(Protocol):
    """The web gallery's sign-in links (adapters/web), when the gallery is enabled."""

    async def issue(self, platform: str, user_id: str, user_name: str, server_id: str) -> str:
        """A short-lived, one-use sign-in URL for this user, who thereby belongs to this chat."""
        ...


class Store(JobStore, Protocol):
    async def delete_images(self, job_id: str) -> list[StoredImage]:
        """Remove a job's result images; returns them so their files can be removed."""
        ...

    async def stats(self, platform: str, server_id: str, since: datetime) -> list[tuple[str, int, float]]:
        """(user id, images, cost) of the jobs that succeeded on a server since a moment, most cost first."""
        ...


@dataclass
class Services:
    """Everything the commands need, built once by the composition root."""

    settings: Settings
    jobs: Jobs  # the job queue, through its port: never the engine's internals
    store: Store
    files: ImageFiles
    accounts: AccountStore
    clock: Callable[[], datetime] = utcnow
    on_quota_denied: Callable[[], None] = lambda: None  # metrics
    inbox: Inbox | None = None  # platform adapters keep received commands here until handled
    user_settings: UserSettingsStore | None = None  # /settings; None: every user has the defaults
    sign_in: SignInLinks | None = None  # /gallery links; None when [web] is off
    edit_prompts: EditPrompts | None = None  # the Edit button's reply prompts (Telegram); None: not remembered


@dataclass
class Invocation:
    """Who asked, where, and with what rights. Built by the adapter from the platform event."""

    destination: Destination
    is_admin: bool = False
    roles: list[str] = field(default_factory=list)
    channel_nsfw: bool = False
    source_image: bytes | None = None
    locale: str | None = None  # the platform's language code for this user (Telegram) or interaction (Discord)
    labels: dict[str, str] = field(default_factory=dict)  # option name → as the user typed it ("--n")
    reference_images: list[bytes] = field(default_factory=list)  # /edit: the images it refers to, in order
    private: bool | None = None  # --private / private:False for this command; None: the user's /settings

    def label(self, option: str) -> str:
        """The option as the user named it, for messages (`--n`; the option's own name on slash commands)."""
        return self.labels.get(option, option)

    @property
    def platform(self) -> str:
        return self.destination.platform

    @property
    def user_id(self) -> str:
        return self.destination.user_id


def is_admin(services: Services, invocation: Invocation) -> bool:
    """Admins of this chat (its platform admins) and the bot's admins: who may use /admin here."""
    return invocation.is_admin or is_bot_admin(services, invocation)


async def language_for(services: Services, invocation: Invocation) -> str:
    """The user's /settings language, else the server's (/admin language), else the user's platform language."""
    prefs = await prefs_for(services, invocation)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    return prefs.language or server.language or language(invocation.locale)


async def prefs_for(services: Services, invocation: Invocation) -> UserPrefs:
    """The invoker's /settings on this server (all unset where settings are not wired)."""
    here = invocation.destination
    if services.user_settings is None:
        return UserPrefs(platform=here.platform, server_id=here.server_id, user_id=here.user_id)
    return await services.user_settings.get(here.platform, here.server_id, here.user_id)


def is_bot_admin(services: Services, invocation: Invocation) -> bool:
    """Admins everywhere (`[access] bot_admins`): see every job, are not limited by quotas, may raise them."""
    return f"{invocation.platform}:{invocation.user_id}" in services.settings.bot_admins


def administers(services: Services, invocation: Invocation, queue_key: str) -> bool:
    """Whether the invoker may act as an admin on something that belongs to this server."""
    return is_bot_admin(services, invocation) or (invocation.is_admin and invocation.destination.queue_key == queue_key)


async def require_not_banned(services: Services, invocation: Invocation) -> None:
    record = await services.accounts.user(invocation.platform, invocation.user_id)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    if record.banned or invocation.user_id in server.banned:
        raise NotPermitted.of("error.banned")
