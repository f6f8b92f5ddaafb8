"""Discord's per-route rate limits as the REST API announces them (X-RateLimit-* headers, then 429).

Discord does not publish its per-route numbers; the community figure for messages is 5 per 5 s per
channel, and webhook (interaction token) routes behave alike. Buckets here: one per channel for
/channels/{id}/messages…, one per token for /webhooks/{app}/{token}…. Interaction callbacks are not
limited, as on Discord. `time_scale` shrinks the window so tests run fast.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    started: float
    used: int = 0


@dataclass
class RateLimits:
    """Fixed-window buckets; `check` returns headers for the response or raises `Limited`."""

    limit: int = 5
    window: float = 5.0
    time_scale: float = 1.0
    enabled: bool = True
    limited: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @staticmethod
    def bucket_for(method: str, path: str) -> str | None:
        parts = path.strip("/").split("/")
        if method not in ("POST", "PATCH", "DELETE"):
            return None
        if len(parts) >= 3 and parts[0] == "channels" and parts[2] == "messages":
            return f"channel:{parts[1]}"
        if len(parts) >= 3 and parts[0] == "webhooks":
            return f"webhook:{parts[2]}"
        return None

    def check(self, method: str, path: str) -> dict[str, str]:
        key = self.bucket_for(method, path)
        if key is None or not self.enabled:
            return {}
        now = time.monotonic()
        window = self.window * self.time_scale
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.started >= window:
            bucket = self._buckets[key] = _Bucket(started=now)
        reset_after = max(0.001, bucket.started + window - now)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Bucket": hashlib.sha1(key.split(":")[0].encode()).hexdigest()[:16],
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        }
        if bucket.used >= self.limit:
            self.limited += 1
            raise Limited(reset_after, {**headers, "X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user"})
        bucket.used += 1
        headers["X-RateLimit-Remaining"] = str(self.limit - bucket.used)
        return headers


class Limited(Exception):
    def __init__(self, retry_after: float, headers: dict[str, str]) -> None:
        super().__init__(f"rate limited for {retry_after:.3f} s")
        self.retry_after = retry_after
        self.headers = headers
