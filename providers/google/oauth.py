"""Google's OAuth 2 authorization-code flow, for connecting an account from a browser.

https://developers.google.com/identity/protocols/oauth2/web-server. `access_type=offline`
and `prompt=consent` make Google return a refresh token, which is what the
connector needs; URLs and the OAuth client come from GoogleSettings.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from gateway.config import GoogleSettings


class GoogleOAuth:
    def __init__(self, settings: GoogleSettings) -> None:
        self.settings = settings

    async def authorize_url(self, state: str, redirect_uri: str, login_hint: str | None) -> str:
        params = {
            "client_id": self.settings.client_id, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": " ".join(self.settings.scopes), "access_type": "offline", "prompt": "consent",
            "state": state,
        }
        if login_hint:
            params["login_hint"] = login_hint
        return str(URL(self.settings.authorize_url).update_query(params))

    async def exchange(self, code: str, redirect_uri: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(self.settings.token_url, data=form) as resp:
                body = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(body, dict) or "refresh_token" not in body:
            detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else resp.status
            raise ValueError(f"Google refused the authorization code: {detail}")
        return {"refreshToken": body["refresh_token"]}
