"""The per-account cap on concurrent Graph requests, seen from the emulator (the peak of requests in flight)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from providers.microsoft.connector import MicrosoftConnector
from providers.microsoft.emulator import EmulatorState, create_app
from tests.providers.microsoft.microsoft_helpers import Control

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: [requests in flight now, peak] for contact requests.
IN_FLIGHT = web.AppKey("in_flight", list)
#: How many requests in flight release them all: a barrier, so a loaded machine cannot hide the peak.
TARGET = web.AppKey("target", list)


@pytest.fixture
def app_factory() -> Callable[[EmulatorState], web.Application]:
    """The emulator, with a middleware counting the contact requests in flight."""

    def make(state: EmulatorState) -> web.Application:
        counter = [0, 0]
        target: list[int] = [0]
        full = asyncio.Event()

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith("/v1.0/me/contacts/"):
                return await handler(request)
            counter[0] += 1
            counter[1] = max(counter)
            if counter[0] >= target[0]:
                full.set()
            try:
                with contextlib.suppress(TimeoutError):  # a capped client never reaches the target: go on
                    await asyncio.wait_for(full.wait(), timeout=5)
                return await handler(request)
            finally:
                counter[0] -= 1

        app = create_app(state)
        app.middlewares.insert(0, count)  # before the fault middleware, so injected delays count as in flight
        app[IN_FLIGHT] = counter
        app[TARGET] = target
        return app

    return make


@pytest.mark.parametrize("cap", [2, 8])
async def test_concurrent_requests_are_capped(cap: int, connect: Callable[..., MicrosoftConnector],
                                              control: Control, emulator: TestServer) -> None:
    connector = connect({"refreshToken": await control.add_user("alice")}, max_concurrency=cap)
    seeded = await control.seed("alice", 8)
    emulator.app[TARGET][0] = cap  # the cap's worth of requests must all be in flight at once
    await control.fault(path="^/v1.0/me/contacts/", delayMs=50, times=8)
    got = await asyncio.gather(*(connector.get(native_id) for native_id in seeded))
    assert [g.native_id for g in got] == seeded
    assert emulator.app[IN_FLIGHT][1] == cap
