"""`make demo`: the gateway on 127.0.0.1:8080 beside seeded provider emulators, ready to curl.

It runs everything in one process on the embedded Redis (its own data directory,
var/demo, emptied at each start): the provider emulators with a seeded mailbox
each, the gateway pointed at them, a demo app and one connected account per
provider. It writes var/demo.json and prints curl commands for the sync flow.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.core import build_core

DEMO_DIR = Path("var")
SEED_COUNT = 250


@dataclass
class Started:
    runner: web.AppRunner
    url: str
    ssl: ssl.SSLContext | bool = True


@dataclass
class Emulator:
    """One provider emulator the demo runs, and how to point the gateway at it."""

    service_type: str
    port: int
    start: Callable[[Settings, int], Awaitable[Started]]


async def start_google(settings: Settings, port: int) -> Started:
    from providers.google.emulator import EmulatorState
    from providers.google.emulator import create_app as google_app

    state = EmulatorState()
    runner = web.AppRunner(google_app(state))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    g = settings.google
    g.api_base, g.token_url, g.authorize_url = f"{url}/", f"{url}/token", f"{url}/o/oauth2/v2/auth"
    g.client_id, g.client_secret = state.client_id, state.client_secret
    return Started(runner, url)


async def start_microsoft(settings: Settings, port: int) -> Started:
    """Graph over HTTPS with a throwaway CA, which the gateway trusts through microsoft.ca_bundle."""
    from providers.microsoft.emulator import EmulatorState
    from providers.microsoft.emulator import create_app as graph_app
    from providers.microsoft.tls import client_context, server_context

    state = EmulatorState()
    context, ca_path = server_context(DEMO_DIR / "demo" / "msgraph-ca.pem")
    runner = web.AppRunner(graph_app(state))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    url = f"https://127.0.0.1:{port}"
    m = settings.microsoft
    m.authority, m.graph_base, m.ca_bundle = f"{url}/common", f"{url}/v1.0", str(ca_path)
    m.client_id, m.client_secret = state.client_id, state.client_secret
    return Started(runner, url, client_context(ca_path))


EMULATORS = [Emulator("google", 8091, start_google), Emulator("office365", 8092, start_microsoft)]


async def _clear_demo_data(settings: Settings) -> None:
    """The demo starts clean: its own embedded Redis directory, or its own key prefix on a server."""
    from gateway.store.connection import open_redis

    handle = open_redis(settings.redis)
    try:
        keys = [k async for k in handle.client.scan_iter(match=f"{settings.redis.key_prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await handle.client.delete(*keys[start:start + 1000])
    finally:
        await handle.aclose()


async def _connect(session: aiohttp.ClientSession, base: str, basic: str, emulator: Started, service: str,
                   user: str) -> dict[str, Any]:
    emulator_url = emulator.url
    async with session.post(f"{emulator_url}/_control/users", json={"user": user}, ssl=emulator.ssl) as resp:
        credentials = (await resp.json())["credentials"]
    async with session.post(f"{emulator_url}/_control/users/{user}/seed", json={"count": SEED_COUNT, "seed": 1},
                            ssl=emulator.ssl) as resp:
        if resp.status != 201:
            raise RuntimeError(f"seeding the {service} emulator failed: {await resp.text()}")
    async with session.post(f"{base}/v1/accounts", headers={"Authorization": f"Basic {basic}"},
                            json={"serviceType": service, "credentials": credentials, "user": user}) as resp:
        account = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"connecting the {service} demo account failed: {account}")
    async with session.post(f"{base}/v1/contacts/sync",
                            headers={"Authorization": f"Bearer {account['accessToken']}"}) as resp:
        await resp.read()  # the first pull, so the demo answers at once
    return {"serviceType": service, "accountId": account["accountId"], "accessToken": account["accessToken"],
            "user": user, "emulatorUrl": emulator_url}


def _print_guide(demo: dict[str, Any]) -> None:
    base, first = demo["baseUrl"], demo["accounts"][0]
    token = first["accessToken"]
    print(f"""
Contacts Gateway demo is running on {base} (Ctrl-C stops it). Everything is in var/demo.json.

  # the account's token (one per connected address book; var/demo.json lists them all)
  TOKEN={token}

  # 1. start a sync: tokens for the updated and the deleted streams
  curl -s -X POST -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync' | python3 -m json.tool

  # 2. page through everything (use the syncUpdatedToken, then each nextPageToken)
  curl -s -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync/updated?deltaToken=<syncUpdatedToken>&pageSize=50'

  # 3. change something at the provider, behind the gateway's back
  curl -s '{first['emulatorUrl']}/_control/users/{first['user']}/contacts' | python3 -m json.tool | head -20
  curl -s -X POST -H 'Content-Type: application/json' -d '{{"name": {{"givenName": "New", "familyName": "Person"}}}}' \\
       '{first['emulatorUrl']}/_control/users/{first['user']}/contacts'

  # 4. the delta: only what changed (use the nextDeltaToken of step 2)
  curl -s -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync/updated?deltaToken=<nextDeltaToken>'

  # read and write with ETags
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"name": {{"givenName": "Ada"}}, "emailAddresses": [{{"address": "ada@example.com", "type": "work"}}]}}' \\
       '{base}/v1/contacts' -i
""", flush=True)


async def run_demo(host: str, port: int) -> None:
    settings = load_settings()
    settings.http.host, settings.http.port = host, port
    if settings.redis.url:
        settings.redis.key_prefix = "demo"
    else:
        settings.redis.embedded_dir = str(DEMO_DIR / "demo")
    settings.sync.refresh_interval_s = 2.0
    await _clear_demo_data(settings)
    started: dict[str, Started] = {}
    for emulator in EMULATORS:
        started[emulator.service_type] = await emulator.start(settings, emulator.port)
    core = build_core(settings)
    app_record, secret = await core.identity.create_app("demo")
    gateway = web.AppRunner(create_app(settings, core=core))
    await gateway.setup()
    try:
        await web.TCPSite(gateway, host, port).start()
    except OSError as exc:
        raise SystemExit(f"Port {port} on {host} is taken ({exc.strerror}); stop what uses it, or run "
                         f"GATEWAY_HTTP__PORT=<port> make demo.") from None
    base = f"http://{host}:{port}"
    basic = base64.b64encode(f"{app_record.client_id}:{secret}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        accounts = [await _connect(session, base, basic, started[e.service_type], e.service_type,
                                   f"demo-{e.service_type}@example.com") for e in EMULATORS]
    demo = {"baseUrl": base, "clientId": app_record.client_id, "clientSecret": secret,
            "signingSecret": app_record.signing_secret, "accounts": accounts}
    DEMO_DIR.mkdir(exist_ok=True)
    (DEMO_DIR / "demo.json").write_text(json.dumps(demo, indent=2) + "\n")
    _print_guide(demo)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.cleanup()
    for emulator in started.values():
        await emulator.runner.cleanup()
    await core.aclose()


def main() -> None:
    from gateway.runtime import tune_gc

    tune_gc()
    host = os.environ.get("GATEWAY_HTTP__HOST", "127.0.0.1")
    port = int(os.environ.get("GATEWAY_HTTP__PORT", "8080"))
    asyncio.run(run_demo(host, port))


if __name__ == "__main__":
    main()
