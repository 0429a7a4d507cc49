"""Connecting an account from a browser: the provider's consent page, then back to the app.

GET /v1/auth/authorize sends the user to the provider with a one-time `state`;
the provider redirects to GET /v1/auth/callback, which checks the state, redeems
the code, creates the account and redirects to the app's returnUrl with only
`accountId` and `status`: no secret ever travels in a URL. The app's backend then
gets the account's access token with its own credentials:
POST /v1/accounts/{accountId}/token (HTTP Basic).
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from gateway.api.common import CORE
from gateway.errors import ApiError

routes = web.RouteTableDef()


def _callback_url(request: web.Request) -> str:
    base = request.app[CORE].settings.http.public_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/v1/auth/callback"


def _return_url(raw: str | None) -> URL:
    try:
        url = URL(raw or "")
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ApiError(400, "validation_error", "returnUrl must be an absolute http(s) URL.", field="returnUrl")
    return url


@routes.get("/v1/auth/authorize")
async def authorize(request: web.Request) -> web.Response:
    core = request.app[CORE]
    query = request.query
    client_id = query.get("clientId", "")
    if not client_id or len(client_id) > 64 or not await core.redis.client.exists(core.identity.keys.app(client_id)):
        raise ApiError(400, "validation_error", "clientId must name an app of this gateway.", field="clientId")
    service = query.get("serviceType", "")
    factory = core.connectors.factories.get(service)
    if factory is None or factory.oauth is None:
        able = ", ".join(sorted(k for k, f in core.connectors.factories.items() if f.oauth)) or "none"
        raise ApiError(400, "validation_error", f"serviceType must be one of: {able}.", field="serviceType")
    return_url = _return_url(query.get("returnUrl"))
    state = await core.identity.put_oauth_state(
        {"clientId": client_id, "serviceType": service, "returnUrl": str(return_url)})
    target = await factory.oauth.authorize_url(state, _callback_url(request), query.get("loginHint"))
    raise web.HTTPFound(target)


@routes.get("/v1/auth/callback")
async def callback(request: web.Request) -> web.Response:
    core = request.app[CORE]
    flow = await core.identity.take_oauth_state(request.query.get("state", ""))
    if flow is None:
        raise ApiError(400, "auth.state_invalid", "Unknown, expired or already used state: start again at "
                       "/v1/auth/authorize.")
    back = URL(flow["returnUrl"])
    factory = core.connectors.factories.get(flow["serviceType"])
    code = request.query.get("code")
    if factory is None or factory.oauth is None or not code:
        error = request.query.get("error", "no_code")[:64]
        raise web.HTTPFound(back.update_query(status="error", error=error))
    try:
        credentials = factory.parse_credentials(await factory.oauth.exchange(code, _callback_url(request)))
    except ValueError:
        raise web.HTTPFound(back.update_query(status="error", error="code_exchange_failed")) from None
    created = await core.identity.create_account(flow["clientId"], flow["serviceType"], credentials)
    raise web.HTTPFound(back.update_query(accountId=created.account.account_id, status="success"))
