"""create_app(): the aiohttp application with every face, composed over one Core."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api import accounts, auth_flow, contacts, device_sync, docs, health, subscriptions, sync, sync_tokens
from gateway.api.common import CORE
from gateway.api.middleware import errors_middleware
from gateway.config import Settings
from gateway.core import Core, build_core


def create_app(settings: Settings, core: Core | None = None) -> web.Application:
    """The gateway app. Give `core` to share one (tests, the demo); otherwise it is built at start-up."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=settings.http.max_body_bytes)
    for face in (health, accounts, auth_flow, sync, contacts, sync_tokens, device_sync, subscriptions, docs):
        app.router.add_routes(face.routes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = core is None
        app[CORE] = core if core is not None else build_core(settings)
        yield
        if owned:
            await app[CORE].aclose()

    app.cleanup_ctx.append(lifecycle)
    return app
