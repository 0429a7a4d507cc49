"""Fixtures for the Microsoft provider: the HTTPS emulator on 127.0.0.1, its control API, connectors to it."""

from __future__ import annotations

import gc
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.config import MicrosoftSettings
from providers.microsoft.connector import MicrosoftConnector
from providers.microsoft.emulator import EmulatorState, create_app
from providers.microsoft.tls import client_context, server_context
from tests.providers.microsoft.microsoft_helpers import Control, FakeClock


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """The emulator's server context and the CA file the gateway trusts (one throw-away CA per run)."""
    return server_context(tmp_path_factory.mktemp("msgraph-ca") / "ca.pem")


@pytest.fixture
def ca_file(tls: tuple[ssl.SSLContext, Path]) -> Path:
    return tls[1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    return EmulatorState(clock=clock)


@pytest.fixture
def app_factory() -> Callable[[EmulatorState], aiohttp.web.Application]:
    """How the emulator app is made; a test may wrap it (to add a middleware) by overriding this."""
    return create_app


@pytest.fixture
async def emulator(aiohttp_server: Any, state: EmulatorState, tls: tuple[ssl.SSLContext, Path],
                   app_factory: Callable[[EmulatorState], aiohttp.web.Application]) -> TestServer:
    server: TestServer = await aiohttp_server(app_factory(state), host="127.0.0.1", ssl=tls[0])
    return server


@pytest.fixture
async def http(emulator: TestServer, ca_file: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTPS client of the emulator that trusts its CA (for raw Graph and control calls)."""
    async with aiohttp.ClientSession(base_url=str(emulator.make_url("/")),
                                     connector=aiohttp.TCPConnector(ssl=client_context(ca_file))) as session:
        yield session


@pytest.fixture
def control(http: aiohttp.ClientSession) -> Control:
    return Control(http)  # type: ignore[arg-type]  (a ClientSession with base_url serves as a TestClient)


@pytest.fixture
def ms_settings(emulator: TestServer, state: EmulatorState, ca_file: Path) -> MicrosoftSettings:
    origin = str(emulator.make_url("/")).rstrip("/")
    return MicrosoftSettings(authority=f"{origin}/common", graph_base=f"{origin}/v1.0", client_id=state.client_id,
                             client_secret=state.client_secret, ca_bundle=str(ca_file), page_size=10)


@pytest.fixture
async def connect(ms_settings: MicrosoftSettings) -> AsyncIterator[Callable[..., MicrosoftConnector]]:
    """connect(credentials, **settings overrides); every connector made is closed at teardown."""
    made: list[MicrosoftConnector] = []

    def make(credentials: dict[str, Any], **overrides: Any) -> MicrosoftConnector:
        made.append(MicrosoftConnector(credentials, ms_settings.model_copy(update=overrides)))
        return made[-1]

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
async def alice(control: Control, connect: Callable[..., MicrosoftConnector]) -> MicrosoftConnector:
    """A delegated connector for a fresh emulator user "alice"."""
    return connect({"refreshToken": await control.add_user("alice")})


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test() -> Iterator[None]:
    """Collect cycles at the end of each test, so a socket left unclosed is reported by the test that left it.

    Without this, a ResourceWarning from a connection abandoned in one test (msal's requests session, the
    TLS emulator) could surface at a random later garbage collection and fail an innocent test.
    """
    yield
    gc.collect()
