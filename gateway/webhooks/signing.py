"""How notifications are signed, the way Aurinko signs its webhooks.

    X-Gateway-Request-Timestamp: <unix seconds>
    X-Gateway-Signature: hex(HMAC-SHA256(key=app signing secret, msg="v0:" + timestamp + ":" + raw body))

The key is the app's signing secret, shown once by `contacts-gateway apps create`. A consumer
recomputes the digest over the raw bytes it received (before any JSON parsing), compares it in
constant time, and refuses timestamps far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Gateway-Request-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"
VERSION = "v0"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    message = f"{VERSION}:{timestamp}:".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers of one POST of `body`: its timestamp, its signature and the content type."""
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body),
            "Content-Type": "application/json"}


def verify(secret: str, timestamp: str, body: bytes, sig: str, tolerance_s: float = 300.0,
           now: float | None = None) -> bool:
    """What a consumer does: the signature matches and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(signature(secret, timestamp, body), sig)
