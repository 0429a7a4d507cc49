"""Accounts: connect an address book, list and remove them, with the app's Basic credentials."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import CORE, basic_app, json_response, read_json
from gateway.errors import ApiError, not_found
from gateway.identity import Account

routes = web.RouteTableDef()


def account_json(account: Account, core_state: dict[str, str]) -> dict[str, Any]:
    return {
        "accountId": account.account_id,
        "serviceType": account.service_type,
        "status": account.status,
        "user": account.user or None,
        "createdTime": int(account.created),
        "ready": core_state.get("ready") == "1",
    }


@routes.post("/v1/accounts")
async def create_account(request: web.Request) -> web.Response:
    app = await basic_app(request)
    core = request.app[CORE]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "validation_error", "The body must be a JSON object.", field="body")
    unknown = sorted(set(body) - {"serviceType", "credentials", "user"})
    if unknown:
        raise ApiError(400, "validation_error", f"Unknown field '{unknown[0]}'.", field=unknown[0])
    service = body.get("serviceType")
    factory = core.connectors.factories.get(service) if isinstance(service, str) else None
    if factory is None:
        known = ", ".join(sorted(core.connectors.factories)) or "none configured"
        raise ApiError(400, "validation_error", f"serviceType must be one of: {known}.", field="serviceType")
    raw = body.get("credentials")
    if not isinstance(raw, dict):
        raise ApiError(400, "validation_error", "credentials must be a JSON object.", field="credentials")
    try:
        credentials = factory.parse_credentials(raw)
    except ValueError as exc:
        raise ApiError(400, "account.credentials_invalid", str(exc), field="credentials") from None
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise ApiError(400, "validation_error", "user must be a string of at most 256 characters.", field="user")
    created = await core.identity.create_account(app.client_id, service, credentials, user or "")
    return json_response({"accountId": created.account.account_id, "accessToken": created.access_token,
                          "serviceType": service}, status=201)


@routes.get("/v1/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    app = await basic_app(request)
    core = request.app[CORE]
    accounts = await core.identity.accounts_of(app.client_id)
    records = [account_json(a, await core.store.state(a.account_id)) for a in accounts]
    return json_response({"records": records})


async def _owned(request: web.Request) -> Account:
    app = await basic_app(request)
    account = await request.app[CORE].identity.account(request.match_info["id"])
    if account is None or account.client_id != app.client_id:
        raise not_found("No account with this id in your app.")
    return account


@routes.get("/v1/accounts/{id}")
async def get_account(request: web.Request) -> web.Response:
    account = await _owned(request)
    return json_response(account_json(account, await request.app[CORE].store.state(account.account_id)))


@routes.delete("/v1/accounts/{id}")
async def delete_account(request: web.Request) -> web.Response:
    account = await _owned(request)
    core = request.app[CORE]
    await core.connectors.drop(account.account_id)
    await core.identity.delete_account(account)
    return web.Response(status=204)


@routes.post("/v1/accounts/{id}/token")
async def new_token(request: web.Request) -> web.Response:
    """A fresh access token for an account (after the browser flow, or to rotate a leaked one)."""
    account = await _owned(request)
    token = await request.app[CORE].identity.rotate_token(account)
    return json_response({"accountId": account.account_id, "accessToken": token, "serviceType": account.service_type})
