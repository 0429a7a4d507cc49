"""Device sync sessions with acknowledgements (/v2/sync), for mobile and desktop clients.

The device is named by X-Device-UUID (X-Basecrm-Device-UUID is accepted as the same).
See gateway/sync/sessions.py for what a session holds and how acknowledgements work.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from gateway.api.common import CORE, active_account, json_response, read_json
from gateway.errors import ApiError, reauth_required
from gateway.sync.sessions import SessionNotFound, TooManySessions
from providers.base import AuthFailed

routes = web.RouteTableDef()
MAX_ACKS = 1000


def device_of(request: web.Request) -> str:
    raw = request.headers.get("X-Device-UUID") or request.headers.get("X-Basecrm-Device-UUID")
    try:
        return str(uuid.UUID(raw or ""))
    except ValueError:
        raise ApiError(400, "device.uuid_invalid", "Send the device's UUID in the X-Device-UUID header; it must "
                       "stay the same between sessions.", field="X-Device-UUID") from None


def _base(request: web.Request) -> str:
    return (request.app[CORE].settings.http.public_url or f"{request.scheme}://{request.host}").rstrip("/")


@routes.post("/v2/sync/start")
async def start(request: web.Request) -> web.Response:
    account = await active_account(request)
    device = device_of(request)
    core = request.app[CORE]
    try:
        await core.refresher.ensure_fresh(account.account_id, core.settings.sync.refresh_wait_s)
        session = await core.sessions.start(account.account_id, device)
    except AuthFailed:
        raise reauth_required() from None
    except TooManySessions:
        raise ApiError(429, "sync.too_many_sessions", f"This account has {core.settings.sync.max_sessions} active "
                       "sync sessions; finish one or wait for one to expire.", headers={"Retry-After": "60"}) from None
    if session is None:
        return web.Response(status=204)
    queue = {"data": {"name": "main", "pages": session.pages, "total_count": session.total},
             "meta": {"type": "sync_queue", "links": {"self": f"{_base(request)}/v2/sync/{session.id}/queues/main"}}}
    return json_response({"data": {"id": session.id, "queues": [queue]}, "meta": {"type": "sync_session"}},
                         status=201)


@routes.get("/v2/sync/{session}/queues/main")
async def queue(request: web.Request) -> web.Response:
    account = await active_account(request)
    device = device_of(request)
    try:
        page = await request.app[CORE].sessions.next_page(account.account_id, device, request.match_info["session"])
    except SessionNotFound:
        raise ApiError(404, "sync.session_not_found", "No such sync session for this device (it may have "
                       "expired): start a new one with POST /v2/sync/start.") from None
    if page is None:
        return web.Response(status=204)
    meta = {"type": "collection", "count": len(page.items), "count_left": page.count_left, "failed_objects": []}
    return json_response({"items": page.items, "meta": meta})


@routes.post("/v2/sync/ack")
async def ack(request: web.Request) -> web.Response:
    account = await active_account(request)
    device = device_of(request)
    body = await read_json(request)
    keys = body.get("data", {}).get("ack_keys") if isinstance(body, dict) and isinstance(body.get("data"), dict) \
        else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(keys) > MAX_ACKS:
        raise ApiError(400, "validation_error", f'The body must be {{"data": {{"ack_keys": [...]}}}} with at most '
                       f"{MAX_ACKS} string keys.", field="data.ack_keys")
    try:
        await request.app[CORE].sessions.ack(account.account_id, device, keys)
    except ValueError as exc:
        raise ApiError(400, "validation_error", f"Malformed ack key '{exc}'.", field="data.ack_keys") from None
    return web.Response(status=202)
