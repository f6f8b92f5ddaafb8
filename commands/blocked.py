"""Blocked words: refuse prompts that contain them (before anything is charged), and `/admin block|unblock`."""

from __future__ import annotations

import logging

from bot.errors import InvalidRequest
from bot.i18n import t
from bot.moderation import blocked_term
from bot.ports import ServerSettings
from bot.replies import Reply
from commands.context import Invocation, Services

log = logging.getLogger(__name__)
MAX_SERVER_WORDS = 500
MAX_WORD_CHARS = 100


async def check_blocked(services: Services, invocation: Invocation, prompt: str, negative: str | None) -> None:
    """Raise a clear error when the prompt (or, if configured, the negative prompt) has a blocked term."""
    config = services.settings.moderation
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    words = [*config.blocked_words, *server.blocked_words]
    if not words and not config.blocked_patterns:
        return
    texts = [prompt, negative] if config.check_negative and negative else [prompt]
    for text in texts:
        found = blocked_term(text, words, config.blocked_patterns)
        if found is None:
            continue
        kind, term = found
        log.info("prompt from %s:%s refused: blocked %s", invocation.platform, invocation.user_id, kind)
        if kind == "word":
            raise InvalidRequest.of("error.prompt_blocked_word", word=term)
        raise InvalidRequest.of("error.prompt_blocked_pattern")


async def block_words(
    services: Services, server: ServerSettings, action: str, target: object | None, lang: str
) -> Reply:
    """`/admin block <word>` adds a word to this server's list, `unblock` removes it; no word lists them."""
    word = " ".join(str(target or "").split())
    if not word:
        listed = ", ".join(server.blocked_words) or "—"
        return Reply(
            text=t(
                lang,
                "admin.blocked_list",
                words=listed,
                bot_wide=t(lang, "admin.blocked_terms", count=len(services.settings.moderation.blocked_words)),
            ),
            private=True,
        )
    if len(word) > MAX_WORD_CHARS:
        raise InvalidRequest.of("error.admin_word_long", limit=MAX_WORD_CHARS)
    known = {existing.casefold() for existing in server.blocked_words}
    if action == "block":
        if len(server.blocked_words) >= MAX_SERVER_WORDS:
            raise InvalidRequest.of("error.admin_words_full", limit=MAX_SERVER_WORDS)
        if word.casefold() not in known:
            server.blocked_words = [*server.blocked_words, word]
    else:
        server.blocked_words = [w for w in server.blocked_words if w.casefold() != word.casefold()]
    await services.accounts.save_server(server)
    return Reply(text=t(lang, f"admin.{action}ed_word", word=word), private=True)
