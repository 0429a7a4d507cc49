"""Access tokens for one Microsoft 365 account through msal (ConfidentialClientApplication), unmodified.

Delegated accounts redeem their refresh token (`acquire_token_by_refresh_token`) and keep the rotated one
Entra sends back, in memory: the stored credential stays valid, as Entra does not revoke a refresh token when
it rotates it. App-only accounts use the client credentials flow of the gateway's own app registration for
their tenant (`acquire_token_for_client`, which msal answers from its cache while the token lives).

msal blocks (requests), so every msal call runs in a worker thread (`asyncio.to_thread`); the app object is
built there too, on first use, because building it fetches the authority's OpenID configuration. msal gets
its own `requests.Session` with `verify=ca_bundle` and `trust_env=False`: REQUESTS_CA_BUNDLE (set on our
machines) would otherwise override `verify`. Hosts other than Microsoft's clouds (the emulator) need
instance discovery off, or msal asks login.microsoftonline.com whether the authority is valid.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from requests.structures import CaseInsensitiveDict

from gateway.config import MicrosoftSettings

HTTP_TIMEOUT_S = 30.0
#: Renew an access token this long before Entra says it expires (at most a tenth of its lifetime).
EXPIRY_MARGIN_S = 300.0


class TokenEndpointDown(Exception):
    """The identity platform answered 5xx (msal raises MsalServiceError); `headers` are of that answer."""

    def __init__(self, message: str, headers: Any) -> None:
        super().__init__(message)
        self.headers = headers


class _RecordingSession(requests.Session):
    """msal's HTTP session; it remembers the last response's headers (msal's exceptions drop Retry-After)."""

    last_headers: CaseInsensitiveDict[str] | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(*args, **kwargs)
        self.last_headers = CaseInsensitiveDict(response.headers)  # a copy: the response would pin its socket
        return response


class TokenError(Exception):
    """msal answered with an error dict instead of tokens; `result` is that dict."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(f"{result.get('error')}: {result.get('error_description')}")
        self.result = result

    @property
    def error(self) -> str:
        return str(self.result.get("error", ""))


def build_msal_app(settings: MicrosoftSettings,
                   authority: str) -> tuple[msal.ConfidentialClientApplication, _RecordingSession]:
    """The msal app and its HTTP session (blocking: msal fetches the authority's OpenID configuration)."""
    session = _RecordingSession()
    session.trust_env = False  # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would override verify
    session.verify = settings.ca_bundle or True
    microsoft_cloud = urlsplit(authority).hostname in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
    try:
        app = msal.ConfidentialClientApplication(
            settings.client_id, client_credential=settings.client_secret, authority=authority,
            http_client=session, timeout=HTTP_TIMEOUT_S, instance_discovery=None if microsoft_cloud else False)
    except BaseException:
        session.close()  # msal refused the authority: nobody else will close its connection
        raise
    return app, session


def authority_for(authority: str, tenant: str | None) -> str:
    """The configured authority with its tenant segment replaced by `tenant` (when given)."""
    base = authority.rstrip("/")
    return f"{base.rsplit('/', 1)[0]}/{tenant}" if tenant else base


class TokenSource:
    """Bearer tokens for one account: delegated (a refresh token) or app-only (refresh_token None)."""

    def __init__(self, settings: MicrosoftSettings, refresh_token: str | None, tenant: str | None) -> None:
        self._settings = settings
        self._refresh_token = refresh_token
        self._authority = authority_for(settings.authority, tenant)
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: _RecordingSession | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def refresh_token(self) -> str | None:
        """The newest refresh token Entra gave this account (None for app-only)."""
        return self._refresh_token

    def _fresh(self, stale: str | None) -> str | None:
        if self._token is not None and self._token != stale and time.monotonic() < self._expires_at:
            return self._token
        return None

    async def get(self, stale: str | None = None) -> str:
        """A live access token. `stale` is one Graph just refused (401): a new one is fetched in its place.

        Concurrent callers wait for one fetch instead of each asking Entra.
        """
        token = self._fresh(stale)
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh(stale)
            if token is None:
                try:
                    result = await asyncio.to_thread(self._acquire, stale is not None and stale == self._token)
                except msal.exceptions.MsalServiceError as exc:
                    headers = self._http.last_headers if self._http is not None else None
                    raise TokenEndpointDown(str(exc), headers) from exc
                token = self._keep(result)
            return token

    def _keep(self, result: dict[str, Any]) -> str:
        if "access_token" not in result:
            raise TokenError(result)
        lifetime = float(result.get("expires_in") or 0)
        self._token = str(result["access_token"])
        self._expires_at = time.monotonic() + lifetime - min(EXPIRY_MARGIN_S, lifetime / 10)
        if self._refresh_token is not None and result.get("refresh_token"):
            self._refresh_token = str(result["refresh_token"])
        return self._token

    def _build(self) -> msal.ConfidentialClientApplication:
        app, self._http = build_msal_app(self._settings, self._authority)
        return app

    def _acquire(self, force: bool) -> dict[str, Any]:
        """Ask msal for tokens (runs in a worker thread); `force` drops a cached app-only token first."""
        if self._app is None:
            self._app = self._build()
        if self._refresh_token is None:
            if force:
                self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=list(self._settings.app_scopes))
        else:
            result = self._app.acquire_token_by_refresh_token(self._refresh_token,
                                                              scopes=list(self._settings.delegated_scopes))
        return dict(result or {"error": "no_response", "error_description": "msal returned nothing"})

    def close(self) -> None:
        """Close msal's HTTP session (its pooled connections)."""
        if self._http is not None:
            self._http.close()
            self._http = None
