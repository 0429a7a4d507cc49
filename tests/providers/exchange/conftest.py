"""Fixtures for the Exchange provider: the EWS emulator on 127.0.0.1, its control API, connectors to it.

Each connector gets the test's own small thread pool (not the process-wide one), so tests can size it.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.config import ExchangeSettings
from providers.exchange.connector import ExchangeConnector
from providers.exchange.emulator import EmulatorState, create_app
from tests.providers.exchange.ews_helpers import Control


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState()


@pytest.fixture
async def emulator(aiohttp_server: Any, state: EmulatorState) -> TestServer:
    server: TestServer = await aiohttp_server(create_app(state), host="127.0.0.1")
    return server


@pytest.fixture
async def control(aiohttp_client: Any, emulator: TestServer) -> Control:
    return Control(await aiohttp_client(emulator))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-exchange")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def make_connector(executor: ThreadPoolExecutor) -> AsyncIterator[Callable[..., ExchangeConnector]]:
    """connector(credentials, executor=None, **settings overrides); every connector made is closed afterwards."""
    made: list[ExchangeConnector] = []

    def make(credentials: dict[str, Any], pool: ThreadPoolExecutor | None = None,
             **overrides: Any) -> ExchangeConnector:
        settings = ExchangeSettings(page_size=10).model_copy(update=overrides)
        connector = ExchangeConnector(credentials, settings, pool or executor)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
async def alice(control: Control, make_connector: Callable[..., ExchangeConnector]) -> ExchangeConnector:
    """A connector (page size 10) for a fresh emulator mailbox "alice"."""
    return make_connector(await control.add_user("alice"))



@pytest.fixture
def collect_garbage() -> Iterator[None]:
    """Collect garbage at teardown, after the servers a test started are closed, so that what they leak is
    reported (and filtered) within that test rather than in whichever test the collector next runs in."""
    yield
    gc.collect()
