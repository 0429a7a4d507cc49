"""Provider adapters behind one Connector interface (see providers.base).

`factories(settings)` returns the built-in providers by service type; each is
imported lazily, so a deployment only loads the client libraries it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from providers.base import Connector

if TYPE_CHECKING:
    from gateway.config import Settings


class OAuthFlow(Protocol):
    """A provider's browser consent flow (authorization code), for GET /v1/auth/authorize."""

    async def authorize_url(self, state: str, redirect_uri: str, login_hint: str | None) -> str:
        """The provider's consent page, which redirects back to `redirect_uri` with a code and `state`."""
        ...

    async def exchange(self, code: str, redirect_uri: str) -> dict[str, Any]:
        """Redeem the code; returns credentials as POST /v1/accounts takes them. ValueError when refused."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderFactory:
    """How to check a service type's credentials and connect with them.

    `parse_credentials` raises ValueError with a message fit for a 400 response;
    what it returns is what gets encrypted and stored, and later given to `connect`.
    """

    parse_credentials: Callable[[dict[str, Any]], dict[str, Any]]
    connect: Callable[[dict[str, Any]], Connector]
    oauth: OAuthFlow | None = None


def factories(settings: Settings) -> dict[str, ProviderFactory]:
    """The built-in providers, keyed by the serviceType clients send."""
    out: dict[str, ProviderFactory] = {}
    try:
        from providers.google.connector import GoogleConnector, parse_credentials
        from providers.google.oauth import GoogleOAuth
    except ImportError:  # the Google client libraries are optional
        pass
    else:
        out["google"] = ProviderFactory(parse_credentials, lambda creds: GoogleConnector(creds, settings.google),
                                        GoogleOAuth(settings.google))
    try:
        from providers.microsoft import connector as microsoft
        from providers.microsoft.oauth import MicrosoftOAuth
    except ImportError:  # msal is optional
        pass
    else:
        out["office365"] = ProviderFactory(
            microsoft.parse_credentials, lambda creds: microsoft.MicrosoftConnector(creds, settings.microsoft),
            MicrosoftOAuth(settings.microsoft))
    try:
        from providers.exchange import connector as exchange
    except ImportError:  # exchangelib is optional
        pass
    else:
        out["exchange"] = ProviderFactory(exchange.parse_credentials,
                                          lambda creds: exchange.ExchangeConnector(creds, settings.exchange))
    return out
