"""One live Connector per account per process, built from its decrypted credentials."""

from __future__ import annotations

import asyncio

from gateway.errors import ApiError
from gateway.identity import Identity
from providers import ProviderFactory
from providers.base import Connector


class ConnectorPool:
    def __init__(self, identity: Identity, factories: dict[str, ProviderFactory]) -> None:
        self.identity = identity
        self.factories = factories
        self._live: dict[str, Connector] = {}
        self._lock = asyncio.Lock()

    async def get(self, account_id: str) -> Connector:
        found = self._live.get(account_id)
        if found is not None:
            return found
        async with self._lock:
            found = self._live.get(account_id)
            if found is None:
                account = await self.identity.account(account_id)
                if account is None:
                    raise ApiError(404, "not_found", "The account no longer exists.")
                factory = self.factories.get(account.service_type)
                if factory is None:
                    raise ApiError(503, "provider.not_configured",
                                   f"No provider '{account.service_type}' is configured in this gateway.")
                found = factory.connect(await self.identity.credentials(account_id))
                self._live[account_id] = found
            return found

    async def drop(self, account_id: str) -> None:
        """Forget an account's connector (deleted, or credentials replaced)."""
        connector = self._live.pop(account_id, None)
        if connector is not None:
            await connector.aclose()

    async def aclose(self) -> None:
        for account_id in list(self._live):
            await self.drop(account_id)
