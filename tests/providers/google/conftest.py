"""Fixtures for the Google provider: the emulator on 127.0.0.1, its control API, and connectors to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.config import GoogleSettings
from providers.google.connector import GoogleConnector
from providers.google.emulator import EmulatorState, create_app
from tests.providers.google.google_helpers import Control, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    return EmulatorState(clock=clock)


@pytest.fixture
async def emulator(aiohttp_server: Any, state: EmulatorState) -> TestServer:
    server: TestServer = await aiohttp_server(create_app(state), host="127.0.0.1")
    return server


@pytest.fixture
async def control(aiohttp_client: Any, emulator: TestServer) -> Control:
    return Control(await aiohttp_client(emulator))


@pytest.fixture
def google_settings(emulator: TestServer, state: EmulatorState) -> GoogleSettings:
    return GoogleSettings(api_base=str(emulator.make_url("/")), token_url=str(emulator.make_url("/token")),
                          client_id=state.client_id, client_secret=state.client_secret, page_size=10)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-google")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
def make_connector(google_settings: GoogleSettings,
                   executor: ThreadPoolExecutor) -> Iterator[Callable[..., GoogleConnector]]:
    """connector(credentials, **settings overrides) on the test's pool."""

    def make(credentials: dict[str, Any], **overrides: Any) -> GoogleConnector:
        settings = google_settings.model_copy(update=overrides)
        return GoogleConnector(credentials, settings, executor)

    yield make


@pytest.fixture
async def alice(control: Control, make_connector: Callable[..., GoogleConnector]) -> AsyncIterator[GoogleConnector]:
    """A connector for a fresh emulator user "alice"."""
    connector = make_connector({"refreshToken": await control.add_user("alice")})
    yield connector
    await connector.aclose()
