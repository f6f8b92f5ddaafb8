"""AWS Signature Version 4 for S3 requests (the Authorization header), as the AWS docs define it.

Canonical request = method, URI-encoded path, canonical query, canonical headers, signed header names, payload
hash; string to sign = algorithm, timestamp, scope, SHA-256 of the canonical request; the key is an HMAC chain
over the date, region and service from "AWS4" + secret. The payload hash is also sent as x-amz-content-sha256,
which S3 requires. Checked against the AWS docs' example (tests/test_s3_images.py).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def uri_encode(text: str, *, slash: bool) -> str:
    """RFC 3986 encoding: unreserved characters (A-Z a-z 0-9 - _ . ~) stay, '/' stays only in paths."""
    return quote(text, safe="/~" if slash else "~")


def canonical_request(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], payload_hash: str
) -> tuple[str, str]:
    """(canonical request, signed header names)."""
    names = sorted(name.lower() for name in headers)
    values = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{values[name]}\n" for name in names)
    signed = ";".join(names)
    canonical_query = "&".join(
        f"{uri_encode(key, slash=False)}={uri_encode(value, slash=False)}" for key, value in sorted(query.items())
    )
    request = "\n".join(
        [method, uri_encode(path, slash=True), canonical_query, canonical_headers, signed, payload_hash]
    )
    return request, signed


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def authorization(
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    when: datetime,
    query: dict[str, str] | None = None,
    service: str = "s3",
) -> str:
    """The Authorization header for a request whose `headers` (host, x-amz-date, x-amz-content-sha256…) are final."""
    day, stamp = when.strftime("%Y%m%d"), when.strftime("%Y%m%dT%H%M%SZ")
    request, signed = canonical_request(method, path, query or {}, headers, payload_hash)
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, day, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={access_key}/{scope},SignedHeaders={signed},Signature={signature}"
