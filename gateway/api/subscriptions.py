"""Webhook subscriptions, managed with the app's Basic credentials.

    POST   /v1/subscriptions                   {"accountId", "resource": "/contacts", "notificationUrl"}
    GET    /v1/subscriptions                   the app's subscriptions, paged (pageSize, pageToken)
    GET    /v1/subscriptions/{id}
    DELETE /v1/subscriptions/{id}
    GET    /v1/subscriptions/{id}/deliveries   recent attempts, newest first (pageSize, at most 100)

A subscription of another app, or of an account of another app, is 404 (as is an unknown one).
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import CORE, basic_app, json_response, page_size, read_json
from gateway.errors import ApiError, not_found
from gateway.identity import App
from gateway.webhooks.subscriptions import ID_PATTERN, RESOURCE, Subscription

routes = web.RouteTableDef()
FIELDS = {"accountId", "resource", "notificationUrl"}


def _field(body: dict[str, object], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ApiError(400, "validation_error", f"{name} must be a non-empty string of at most {limit} characters.",
                       field=name)
    return value


@routes.post("/v1/subscriptions")
async def create_subscription(request: web.Request) -> web.Response:
    app = await basic_app(request)
    core = request.app[CORE]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "validation_error", "The body must be a JSON object.", field="body")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiError(400, "validation_error", f"Unknown field '{unknown[0]}'.", field=unknown[0])
    account_id = _field(body, "accountId", 64)
    if body.get("resource") != RESOURCE:
        raise ApiError(400, "validation_error", f"resource must be \"{RESOURCE}\".", field="resource")
    url = _field(body, "notificationUrl", 2048)
    account = await core.identity.account(account_id)
    if account is None or account.client_id != app.client_id:
        raise not_found("No account with this id in your app.")
    checked = await core.webhooks.validate_url(url, app.signing_secret)
    sub = await core.webhooks.create(app, account_id, RESOURCE, checked)
    return json_response(sub.as_json(), status=201)


@routes.get("/v1/subscriptions")
async def list_subscriptions(request: web.Request) -> web.Response:
    app = await basic_app(request)
    limit = page_size(request, default=100, maximum=1000)
    after = request.query.get("pageToken")
    if after is not None and not ID_PATTERN.match(after):
        raise ApiError(400, "validation_error", "pageToken is not one this endpoint returned.", field="pageToken")
    page = await request.app[CORE].webhooks.page(app.client_id, after, limit)
    out: dict[str, object] = {"records": [s.as_json() for s in page.records]}
    if page.next_page_token:
        out["nextPageToken"] = page.next_page_token
    return json_response(out)


async def _owned(request: web.Request) -> tuple[App, Subscription]:
    app = await basic_app(request)
    sub = await request.app[CORE].webhooks.get(app.client_id, request.match_info["id"])
    if sub is None:
        raise not_found("No subscription with this id in your app.")
    return app, sub


@routes.get("/v1/subscriptions/{id}")
async def get_subscription(request: web.Request) -> web.Response:
    _, sub = await _owned(request)
    return json_response(sub.as_json())


@routes.delete("/v1/subscriptions/{id}")
async def delete_subscription(request: web.Request) -> web.Response:
    _, sub = await _owned(request)
    await request.app[CORE].webhooks.delete(sub)
    return web.Response(status=204)


@routes.get("/v1/subscriptions/{id}/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    _, sub = await _owned(request)
    limit = page_size(request, default=20, maximum=100)
    return json_response({"records": await request.app[CORE].webhooks.deliveries(sub, limit)})
