"""/gallery: a short-lived, one-use sign-in link to the web gallery, shown only to the one who asked."""

from __future__ import annotations

from bot.errors import InvalidRequest
from bot.i18n import t
from bot.replies import Reply
from commands.context import Invocation, Services, language_for


def private_chat(invocation: Invocation) -> bool:
    """Telegram cannot show a message to one member of a group: a link is given in the private chat only.

    A Telegram private chat's id is the user's id; Discord replies are ephemeral and the console has one user.
    """
    destination = invocation.destination
    return destination.platform != "telegram" or destination.channel_id == destination.user_id


async def gallery(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    if services.sign_in is None:
        raise InvalidRequest.of("web.off")
    if not private_chat(invocation):
        raise InvalidRequest.of("web.private_only")
    destination = invocation.destination
    url = await services.sign_in.issue(
        destination.platform, destination.user_id, destination.user_name, destination.server_id
    )
    lang = await language_for(services, invocation)
    return Reply(text=t(lang, "web.link", url=url, minutes=services.settings.web.link_minutes), private=True)
