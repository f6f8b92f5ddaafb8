"""`/start <payload>`: what a t.me deep link (`https://t.me/<bot>?start=<payload>`) sends when the user presses Start.

`show_<job>` is the link a held private result gives (the user's private chat refused the bot until then): it runs
`/show <job>` there. A bare /start is /help.
"""

from __future__ import annotations

import re

from adapters.telegram.outbound import START_SHOW

# Telegram allows A-Z, a-z, 0-9, _ and - in a start parameter, 64 characters at most.
PAYLOAD = re.compile(rf"^/start(?:@\w+)?\s+{START_SHOW}([A-Za-z0-9_-]{{1,58}})\s*$")


def start_command(text: str) -> str:
    """The command a /start message stands for."""
    match = PAYLOAD.match(text.strip())
    return f"/show {match.group(1)}" if match else "/help"
