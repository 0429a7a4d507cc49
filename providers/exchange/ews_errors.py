"""exchangelib plumbing of the connector: the fail-fast retry policy, the CA bundle adapter, version names,
and `map_errors`, the one place library errors become provider errors (see providers.base for their meaning).
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from exchangelib.errors import (
    CASError,
    ErrorAccessDenied,
    ErrorChangeKeyRequiredForWriteOperations,
    ErrorConnectionFailed,
    ErrorFolderNotFound,
    ErrorImpersonateUserDenied,
    ErrorInternalServerError,
    ErrorInternalServerTransientError,
    ErrorInvalidIdMalformed,
    ErrorInvalidSyncStateData,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorMailboxMoveInProgress,
    ErrorMailboxStoreUnavailable,
    ErrorNonExistentMailbox,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    MalformedResponseError,
    RateLimitError,
    ResponseMessageError,
    SOAPError,
    TransportError,
    UnauthorizedError,
)
from exchangelib.protocol import BaseProtocol, FailFast
from exchangelib.util import is_xml
from exchangelib.version import VERSIONS, Build, Version
from oauthlib.oauth2 import OAuth2Error

from providers.base import (
    AuthFailed,
    Conflict,
    CursorExpired,
    NotFound,
    ProviderError,
    Throttled,
    Unavailable,
    retry_after_seconds,
)

#: Errors of the whole request, never of one item: a batch GetItem failing so is not retried item by item.
PER_REQUEST: tuple[type[Exception], ...] = (
    ErrorServerBusy, ErrorTimeoutExpired, ErrorInternalServerTransientError, ErrorMailboxStoreUnavailable,
    ErrorMailboxMoveInProgress, ErrorAccessDenied, ErrorNonExistentMailbox, ErrorImpersonateUserDenied,
    ErrorInvalidSyncStateData, ErrorConnectionFailed, ErrorFolderNotFound,
)
_TRANSIENT: tuple[type[Exception], ...] = (
    ErrorInternalServerTransientError, ErrorTimeoutExpired, ErrorInternalServerError, ErrorMailboxStoreUnavailable,
    ErrorMailboxMoveInProgress, ErrorConnectionFailed, MalformedResponseError, SOAPError, RateLimitError, CASError,
)
_AUTH: tuple[type[Exception], ...] = (
    UnauthorizedError, ErrorAccessDenied, ErrorNonExistentMailbox, ErrorImpersonateUserDenied, OAuth2Error,
)


class HttpFailure(Exception):
    """A non-200 HTTP answer (other than a SOAP fault), with its status and Retry-After seconds."""

    def __init__(self, status: int, retry_after: float | None, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status, self.retry_after = status, retry_after


class FailFastPolicy(FailFast):
    """exchangelib's FailFast, except that an HTTP failure leaves as HttpFailure.

    Plain FailFast turns a 503 or a dropped connection into ErrorServerBusy with an invented 10 s back-off
    and loses Retry-After; here the status and the header reach `map_errors` intact. A 500 carrying XML is
    left to exchangelib: that is how Exchange sends SOAP faults such as ErrorServerBusy.
    """

    def raise_response_errors(self, response: Any) -> None:
        status = int(response.status_code)
        if status == 200 or (status == 500 and response.content and is_xml(response.content)):
            return
        raise HttpFailure(status, retry_after_seconds(response.headers.get("Retry-After")), response.text[:200])


def _http_error(exc: HttpFailure) -> ProviderError:
    text = f"exchange: {exc}"
    if exc.status in (401, 403) or "locked out" in text:
        return AuthFailed(text)
    if exc.status == 429:
        return Throttled(text, exc.retry_after)
    if exc.status >= 500 or exc.status in (408, 302):  # 302: Exchange's error-page redirect during outages
        return Unavailable(text, exc.retry_after)
    if exc.status == 404:
        return Unavailable(f"{text} (is ewsUrl right?)")
    return ProviderError(text)


def map_errors(exc: BaseException) -> ProviderError:
    """The one place library errors become provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpFailure):
        return _http_error(exc)
    text = f"exchange: {type(exc).__name__}: {exc}"
    if isinstance(exc, _AUTH):
        return AuthFailed(text)
    if isinstance(exc, ErrorServerBusy):
        # exchangelib re-raises a dropped connection or a timeout as ErrorServerBusy once it has more than one
        # session; those are outages, not throttling.
        if isinstance(exc.__context__, _TRANSIENT):
            return Unavailable(text)
        return Throttled(text, exc.back_off)
    if isinstance(exc, ErrorInvalidSyncStateData):
        return CursorExpired(text)
    if isinstance(exc, ErrorItemNotFound | ErrorInvalidIdMalformed):
        return NotFound(text)
    if isinstance(exc, ErrorIrresolvableConflict | ErrorChangeKeyRequiredForWriteOperations):
        return Conflict(text)
    if isinstance(exc, _TRANSIENT):
        return Unavailable(text)
    if isinstance(exc, ResponseMessageError):
        return ProviderError(text)
    if isinstance(exc, TransportError | requests.RequestException | OSError):
        return Unavailable(text)
    return ProviderError(text)


# --- versions ------------------------------------------------------------------------------------------

def _builds() -> dict[str, Build]:
    """EWS API version names (and product names such as Exchange2019) -> the oldest build speaking them."""
    builds: dict[str, Build] = {}
    for build, api_version, full_name in reversed(VERSIONS):
        builds.setdefault(api_version, build)
        builds.setdefault(full_name.removeprefix("Microsoft Exchange Server ").replace(" ", "_"), build)
    builds["Exchange2019"] = builds["2019"]
    return builds


_BUILDS = _builds()


def server_version(name: str) -> Version:
    """The exchangelib Version for settings.server_version, so exchangelib never guesses (no ConvertId)."""
    build = _BUILDS.get(name) or _BUILDS.get(name.removeprefix("Exchange"))
    if build is None:
        raise ValueError(f"unknown Exchange server_version {name!r}; use one of "
                         f"{', '.join(sorted(n for n in _BUILDS if n.startswith('Exchange')))}")
    return Version(build=build)


# --- HTTP adapter --------------------------------------------------------------------------------------

_ca_bundles: dict[str, str] = {}
_adapter_lock = threading.Lock()


class _WholeResponse(requests.Response):
    """A buffered response that hands its body out whole: exchangelib parses `iter_content()` with requests'
    default chunk size of one byte, which cost ~40% of a sync in Python-level slicing."""

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Any:
        if self._content_consumed and isinstance(self._content, bytes) and not decode_unicode:
            return iter((self._content,))
        return super().iter_content(chunk_size, decode_unicode)


class EwsAdapter(requests.adapters.HTTPAdapter):
    """The HTTP adapter exchangelib uses (its documented `BaseProtocol.HTTP_ADAPTER_CLS` hook).

    It verifies TLS for endpoints registered with `trust_ca_bundle` against their bundle: requests lets
    REQUESTS_CA_BUNDLE (set on this machine) override a session's `verify`, so the bundle is forced here, where
    the environment no longer reaches. Other URLs keep requests' behaviour. Buffered responses are handed
    to exchangelib whole (`_WholeResponse`); streamed ones are left alone.
    """

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        bundle = _ca_bundles.get(request.url or "")
        return super().send(request, stream=stream, timeout=timeout, verify=bundle or verify, cert=cert,
                            proxies=proxies)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        response.__class__ = _WholeResponse
        return response


def install_adapter() -> None:
    """Make exchangelib's new sessions use EwsAdapter (unless something else already replaced the default)."""
    with _adapter_lock:
        if BaseProtocol.HTTP_ADAPTER_CLS is requests.adapters.HTTPAdapter:
            BaseProtocol.HTTP_ADAPTER_CLS = EwsAdapter


def trust_ca_bundle(endpoint: str, ca_bundle: str) -> None:
    """Make exchangelib's sessions to `endpoint` trust `ca_bundle`."""
    with _adapter_lock:
        _ca_bundles[endpoint] = ca_bundle
    install_adapter()
