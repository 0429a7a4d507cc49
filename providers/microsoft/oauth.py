"""Microsoft's authorization-code flow (delegated access), for connecting an account from a browser.

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow. The consent URL is
built from the authority; msal redeems the code; `offline_access` is asked for so Entra returns a refresh token,
which is what the connector keeps. Authority, scopes and the CA bundle come from MicrosoftSettings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from yarl import URL

from gateway.config import MicrosoftSettings
from providers.microsoft.auth import build_msal_app


class MicrosoftOAuth:
    def __init__(self, settings: MicrosoftSettings) -> None:
        self.settings = settings

    def _scopes(self) -> list[str]:
        # msal adds offline_access, openid and profile itself, and refuses them when given
        return [s for s in self.settings.delegated_scopes if s not in ("offline_access", "openid", "profile")]

    async def authorize_url(self, state: str, redirect_uri: str, login_hint: str | None) -> str:
        """The v2.0 authorize endpoint of the authority, built here: no discovery round trip needed."""
        params = {"client_id": self.settings.client_id, "response_type": "code", "redirect_uri": redirect_uri,
                  "response_mode": "query", "scope": " ".join([*self._scopes(), "offline_access"]),
                  "state": state, "prompt": "consent"}
        if login_hint:
            params["login_hint"] = login_hint
        return str(URL(f"{self.settings.authority.rstrip('/')}/oauth2/v2.0/authorize").update_query(params))

    async def exchange(self, code: str, redirect_uri: str) -> dict[str, Any]:
        def redeem() -> dict[str, Any]:
            app, session = build_msal_app(self.settings, self.settings.authority)
            try:
                return dict(app.acquire_token_by_authorization_code(code, self._scopes(), redirect_uri=redirect_uri))
            finally:
                session.close()

        result = await asyncio.to_thread(redeem)
        if "refresh_token" not in result:
            raise ValueError(f"Microsoft refused the authorization code: {result.get('error_description')}")
        return {"refreshToken": result["refresh_token"]}
