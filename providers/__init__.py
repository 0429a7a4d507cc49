"""Provider adapters behind one Connector interface (see providers.base).

`factories(settings)` returns the built-in providers by service type; each is
imported lazily, so a deployment only loads the client libraries it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from providers.base import Connector

if TYPE_CHECKING:
    from gateway.config import Settings


@dataclass(frozen=True, slots=True)
class ProviderFactory:
    """How to check a service type's credentials and connect with them.

    `parse_credentials` raises ValueError with a message fit for a 400 response;
    what it returns is what gets encrypted and stored, and later given to `connect`.
    """

    parse_credentials: Callable[[dict[str, Any]], dict[str, Any]]
    connect: Callable[[dict[str, Any]], Connector]


def factories(settings: Settings) -> dict[str, ProviderFactory]:
    """The built-in providers, keyed by the serviceType clients send."""
    out: dict[str, ProviderFactory] = {}
    try:
        from providers.google.connector import GoogleConnector, parse_credentials
    except ImportError:  # the Google package is optional until installed
        pass
    else:
        out["google"] = ProviderFactory(parse_credentials, lambda creds: GoogleConnector(creds, settings.google))
    return out
