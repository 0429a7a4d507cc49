"""The delta-sync face: sync start, then the updated and deleted streams, paged.

A pass begins with a delta token and walks page tokens; its last page carries
the next delta token. Exactly one of nextPageToken / nextDeltaToken is present.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import CORE, active_account, bool_param, json_response, page_size, raw_json, records_page
from gateway.errors import ApiError, reauth_required, token_expired, token_invalid
from gateway.sync.changes import Stream, TokenExpired, TokenInvalid
from providers.base import AuthFailed

routes = web.RouteTableDef()


@routes.post("/v1/contacts/sync")
async def sync_start(request: web.Request) -> web.Response:
    """Tokens for a new sync. Until the first pull has finished, ready is false and tokens are null."""
    account = await active_account(request)
    core = request.app[CORE]
    wait = core.settings.sync.refresh_wait_s if bool_param(request, "awaitReady", True) else 0.0
    try:
        await core.refresher.ensure_fresh(account.account_id, wait)
    except AuthFailed:
        raise reauth_required() from None
    ready = (await core.store.state(account.account_id)).get("ready") == "1"
    updated = deleted = None
    if ready:
        updated, deleted = await core.feed.start(account.account_id)
    return json_response({"syncUpdatedToken": updated, "syncDeletedToken": deleted, "ready": ready})


async def _stream(request: web.Request, stream: Stream) -> web.Response:
    account = await active_account(request)
    core = request.app[CORE]
    delta, page = request.query.get("deltaToken"), request.query.get("pageToken")
    if (delta is None) == (page is None):
        raise ApiError(400, "validation_error", "Give exactly one of deltaToken and pageToken.",
                       field="deltaToken")
    size = page_size(request)
    try:
        if delta is not None:
            await core.feed.cursor(account.account_id, stream, delta)  # reject bad tokens before any pull
            await core.refresher.ensure_fresh(account.account_id, core.settings.sync.refresh_wait_s)
        result = await core.feed.read(account.account_id, stream, page, size, delta_token=delta)
    except TokenInvalid:
        raise token_invalid() from None
    except TokenExpired:
        raise token_expired() from None
    except AuthFailed:
        raise reauth_required() from None
    return raw_json(records_page(result.bodies, nextPageToken=result.next_page_token,
                                 nextDeltaToken=result.next_delta_token))


@routes.get("/v1/contacts/sync/updated")
async def sync_updated(request: web.Request) -> web.Response:
    return await _stream(request, "updated")


@routes.get("/v1/contacts/sync/deleted")
async def sync_deleted(request: web.Request) -> web.Response:
    return await _stream(request, "deleted")
