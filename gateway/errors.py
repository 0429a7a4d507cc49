"""The API's errors: every one renders as JSON {"code", "message", "requestId"}.

Codes follow Aurinko's where it has one (syncToken.invalid, syncToken.expired);
the rest are short dotted names. The core raises these; the middleware renders them.

    ApiError(status, code)
     ├─ 400 bad_request, invalid_json, validation_error, syncToken.invalid, account.credentials_invalid
     ├─ 401 unauthorized, account.reauth_required
     ├─ 404 not_found          405 method_not_allowed      410 syncToken.expired
     ├─ 412 precondition_failed (+ currentEtag)            413 payload_too_large
     ├─ 428 precondition_required                          429 rate_limited
     └─ 503 provider.unavailable (+ Retry-After), not_ready
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def bad_request(message: str, code: str = "bad_request", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def not_found(message: str = "No such resource.") -> ApiError:
    return ApiError(404, "not_found", message)


def token_invalid() -> ApiError:
    return ApiError(400, "syncToken.invalid", "The token is unknown, malformed, or belongs to another account "
                    "or stream. Start a new sync with POST /v1/contacts/sync.")


def token_expired() -> ApiError:
    return ApiError(410, "syncToken.expired", "The token is older than the deletions the gateway keeps. "
                    "Start over with POST /v1/contacts/sync.")


def precondition_failed(current_etag: str | None) -> ApiError:
    return ApiError(412, "precondition_failed", "The contact changed since the ETag you sent. "
                    "GET it again, reapply your change, and send the new ETag.", currentEtag=current_etag)


def provider_unavailable(retry_after: float | None, detail: str) -> ApiError:
    wait = max(1, int(retry_after or 5))
    return ApiError(503, "provider.unavailable", f"The address book provider is not answering: {detail}. "
                    f"Retry after {wait} s.", headers={"Retry-After": str(wait)})


def reauth_required() -> ApiError:
    return ApiError(401, "account.reauth_required", "The provider rejected this account's credentials. "
                    "Reconnect the account (POST /v1/accounts or /v1/auth/authorize).")
