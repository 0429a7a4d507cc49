"""The Graph HTTP client of one account (aiohttp), and `map_errors`, where every failure becomes a ProviderError.

One ClientSession per account, opened on first use, trusting `ca_bundle` alone when one is configured; a
semaphore caps the account's concurrent Graph requests (Outlook allows 4 per app and mailbox). Links Graph
returns (`@odata.nextLink`, `@odata.deltaLink`) are followed verbatim. The client never sleeps and never
retries, with one exception: a 401 means the access token died early (revoked, or the clock moved), so the
request is sent once more with a fresh token; a second 401 is AuthFailed.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
import orjson
import requests
from multidict import CIMultiDictProxy
from yarl import URL

from gateway.config import MicrosoftSettings
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
from providers.microsoft.auth import TokenEndpointDown, TokenError, TokenSource

HTTP_TIMEOUT_S = 60.0
#: Error codes that mean "drop the delta token and start over", whatever the status (compared lowercased).
_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
#: Graph error codes that mean the mailbox itself cannot be reached with these credentials.
_MAILBOX_CODES = frozenset({"errorinvaliduser", "mailboxnotenabledforrestapi", "mailboxnotfound"})
#: msal error codes that a later attempt may get past; every other token error needs new credentials.
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error", "no_response"})


class GraphHTTPError(Exception):
    """A non-2xx Graph answer: status, Graph's error code and message, and the headers (Retry-After)."""

    def __init__(self, status: int, body: bytes, headers: CIMultiDictProxy[str] | dict[str, str]) -> None:
        try:
            error = orjson.loads(body).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            error = None
        error = error if isinstance(error, dict) else {}
        self.status, self.headers = status, headers
        self.code, self.message = str(error.get("code", "")), str(error.get("message", ""))
        super().__init__(f"graph: {status} {self.code} {self.message}".strip())


def retry_after(headers: Any) -> float | None:
    """The Retry-After of a Graph or token-endpoint answer's headers."""
    return retry_after_seconds(headers.get("Retry-After") if headers is not None else None)


def _graph_error(exc: GraphHTTPError) -> ProviderError:
    status, text = exc.status, str(exc)
    if status == 410 or exc.code.lower() in _RESYNC_CODES:
        return CursorExpired(text)
    if status == 429:
        return Throttled(text, retry_after(exc.headers))
    if status >= 500:
        return Unavailable(text, retry_after(exc.headers))
    if status in (401, 403) or exc.code.lower() in _MAILBOX_CODES:
        return AuthFailed(text)
    if status == 404:
        return NotFound(text)
    if status == 412:
        return Conflict(text)
    return ProviderError(text)


def map_errors(exc: BaseException) -> ProviderError:
    """The one place library errors become provider errors (see providers.base for their meaning)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, GraphHTTPError):
        return _graph_error(exc)
    if isinstance(exc, TokenError):  # invalid_grant (revoked/unknown refresh token), invalid_client, ...
        if exc.error in _TRANSIENT_TOKEN_ERRORS:
            return Unavailable(f"microsoft token endpoint: {exc}")
        return AuthFailed(f"microsoft token refused: {exc}")
    if isinstance(exc, TokenEndpointDown):  # a 5xx from the token or discovery endpoint
        return Unavailable(f"microsoft token endpoint: {exc}", retry_after(exc.headers))
    if isinstance(exc, orjson.JSONDecodeError):  # a proxy's error page, a cut-off body
        return Unavailable(f"graph answered with invalid JSON: {exc}")
    if isinstance(exc, (requests.RequestException, aiohttp.ClientError, TimeoutError, OSError, RuntimeError)):
        return Unavailable(f"microsoft unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):  # msal: OIDC discovery refused the authority (unknown tenant, bad URL)
        return AuthFailed(f"microsoft authority refused: {exc}")
    return ProviderError(f"microsoft: {type(exc).__name__}: {exc}")


class GraphClient:
    """Authenticated JSON calls to Graph for one account."""

    def __init__(self, settings: MicrosoftSettings, tokens: TokenSource) -> None:
        self.base = settings.graph_base.rstrip("/")
        self._tokens = tokens
        self._limit = asyncio.Semaphore(max(1, settings.max_concurrency))
        self._ca_bundle = settings.ca_bundle
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            context: ssl.SSLContext | bool = (ssl.create_default_context(cafile=self._ca_bundle)
                                              if self._ca_bundle else True)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context), timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
                json_serialize=lambda value: orjson.dumps(value).decode())
        return self._session

    async def _send(self, method: str, url: URL, token: str, body: Any,
                    headers: dict[str, str]) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **headers}
        async with self._limit:
            async with self._open().request(method, url, json=body, headers=request_headers) as resp:
                return resp.status, await resp.read(), resp.headers

    async def call(self, method: str, path_or_url: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> dict[str, Any] | None:
        """Send one request; the parsed JSON answer (None for 204), or a ProviderError.

        `path_or_url` is a path under graph_base (already quoted) or an absolute link Graph gave us.
        """
        absolute = path_or_url.startswith(("https://", "http://"))
        url = URL(path_or_url if absolute else self.base + path_or_url, encoded=True)
        try:
            token = await self._tokens.get()
            status, content, resp_headers = await self._send(method, url, token, body, headers or {})
            if status == 401:
                token = await self._tokens.get(stale=token)
                status, content, resp_headers = await self._send(method, url, token, body, headers or {})
            if status >= 400:
                raise GraphHTTPError(status, content, resp_headers)
            return orjson.loads(content) if content else None
        except (GraphHTTPError, TokenError, TokenEndpointDown, requests.RequestException, aiohttp.ClientError,
                TimeoutError, OSError, RuntimeError, ValueError) as exc:
            raise map_errors(exc) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
