"""The single-token change feed face: POST /api/user/contacts/sync_tokens[/{token}].

See gateway/sync/single_feed.py for the semantics and gateway/sync/flat.py for the flat
record. A response carries at most `limit` items (default sync.feed_limit, at most 1000);
`"more": true` says the returned token continues the same pass: call again at once.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import CORE, active_account, json_response, page_size
from gateway.errors import reauth_required, token_expired, token_invalid
from gateway.sync.changes import TokenExpired, TokenInvalid
from providers.base import AuthFailed

routes = web.RouteTableDef()


async def _fresh(request: web.Request, account_id: str) -> None:
    core = request.app[CORE]
    try:
        await core.refresher.ensure_fresh(account_id, core.settings.sync.refresh_wait_s)
    except AuthFailed:
        raise reauth_required() from None


@routes.post("/api/user/contacts/sync_tokens")
async def new_token(request: web.Request) -> web.Response:
    account = await active_account(request)
    await _fresh(request, account.account_id)
    return json_response({"token": await request.app[CORE].single_feed.now(account.account_id)})


@routes.post("/api/user/contacts/sync_tokens/{token}")
async def changes_since(request: web.Request) -> web.Response:
    account = await active_account(request)
    core = request.app[CORE]
    limit = page_size(request, default=core.settings.sync.feed_limit, name="limit")
    token = request.match_info["token"]
    try:
        await core.single_feed.check(account.account_id, token)  # a bad token never triggers a pull
        await _fresh(request, account.account_id)
        page = await core.single_feed.read(account.account_id, token, limit)
    except TokenInvalid:
        raise token_invalid() from None
    except TokenExpired:
        raise token_expired() from None
    return json_response({"token": page.token, "items": page.items, "more": page.more})
