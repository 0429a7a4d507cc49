"""Apps (developer API keys) and connected accounts (their Bearer tokens).

Secrets are random with 256 bits of entropy, so a SHA-256 digest is a safe way
to store them and lets a token be looked up by its digest; comparisons are
constant-time. Provider credentials are encrypted at rest with Fernet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from cryptography.fernet import Fernet, InvalidToken

from gateway.store.keys import Keys


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def load_fernet(key: str | None, directory: str) -> Fernet:
    """The configured key, or (development only) one kept in <directory>/secret.key."""
    if key:
        return Fernet(key.encode())
    path = Path(directory) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return Fernet(path.read_bytes().strip())


@dataclass(slots=True)
class App:
    client_id: str
    name: str
    signing_secret: str


@dataclass(slots=True)
class Account:
    account_id: str
    client_id: str
    service_type: str
    status: str
    created: str
    user: str


@dataclass(slots=True)
class NewAccount:
    account: Account
    access_token: str


class Identity:
    def __init__(self, client: aioredis.Redis, keys: Keys, fernet: Fernet) -> None:
        self.redis = client
        self.keys = keys
        self.fernet = fernet

    # -- apps ------------------------------------------------------------------

    async def create_app(self, name: str) -> tuple[App, str]:
        """A new app and its client secret (shown once; only its digest is kept)."""
        client_id = "app_" + secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        signing = secrets.token_urlsafe(32)
        await self.redis.hset(self.keys.app(client_id), mapping={
            "name": name, "secret": digest(secret), "signing": signing, "created": str(int(time.time())),
        })
        return App(client_id, name, signing), secret

    async def check_app(self, client_id: str, secret: str) -> App | None:
        if not client_id or len(client_id) > 64 or not (client_id + secret).isascii():
            return None
        raw = await self.redis.hgetall(self.keys.app(client_id))
        if not raw or not hmac.compare_digest(raw[b"secret"].decode(), digest(secret)):
            return None
        return App(client_id, raw[b"name"].decode(), raw[b"signing"].decode())

    # -- accounts --------------------------------------------------------------

    async def create_account(self, client_id: str, service_type: str, credentials: dict[str, Any],
                             user: str = "") -> NewAccount:
        account_id = "acc_" + secrets.token_hex(10)
        token = "gwt_" + secrets.token_urlsafe(32)
        created = str(int(time.time()))
        sealed = self.fernet.encrypt(orjson.dumps(credentials))
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.account(account_id).account, mapping={
            "app": client_id, "service": service_type, "creds": sealed, "token": digest(token),
            "status": "active", "created": created, "user": user,
        })
        pipe.set(self.keys.access_token(digest(token)), account_id)
        pipe.sadd(self.keys.app_accounts(client_id), account_id)
        pipe.sadd(self.keys.all_accounts, account_id)
        await pipe.execute()
        return NewAccount(Account(account_id, client_id, service_type, "active", created, user), token)

    async def account(self, account_id: str) -> Account | None:
        raw = await self.redis.hgetall(self.keys.account(account_id).account)
        if not raw:
            return None
        return Account(account_id, raw[b"app"].decode(), raw[b"service"].decode(), raw[b"status"].decode(),
                       raw[b"created"].decode(), raw.get(b"user", b"").decode())

    async def account_for_token(self, token: str) -> Account | None:
        if not token or len(token) > 128 or not token.isascii():
            return None
        account_id = await self.redis.get(self.keys.access_token(digest(token)))
        return await self.account(account_id.decode()) if account_id else None

    async def accounts_of(self, client_id: str) -> list[Account]:
        ids = sorted(i.decode() for i in await self.redis.smembers(self.keys.app_accounts(client_id)))
        found = [await self.account(i) for i in ids]
        return [a for a in found if a is not None]

    async def credentials(self, account_id: str) -> dict[str, Any]:
        sealed = await self.redis.hget(self.keys.account(account_id).account, "creds")
        if sealed is None:
            raise KeyError(account_id)
        try:
            return orjson.loads(self.fernet.decrypt(sealed))  # type: ignore[no-any-return]
        except InvalidToken as exc:
            raise RuntimeError("credentials cannot be decrypted: wrong encryption key") from exc

    async def rotate_token(self, account: Account) -> str:
        """A new access token for the account; the previous one stops working."""
        keys = self.keys.account(account.account_id)
        old = await self.redis.hget(keys.account, "token")
        token = "gwt_" + secrets.token_urlsafe(32)
        pipe = self.redis.pipeline(transaction=False)
        if old:
            pipe.delete(self.keys.access_token(old.decode()))
        pipe.set(self.keys.access_token(digest(token)), account.account_id)
        pipe.hset(keys.account, "token", digest(token))
        await pipe.execute()
        return token

    async def put_oauth_state(self, value: dict[str, str], ttl_s: int = 600) -> str:
        state = secrets.token_urlsafe(24)
        await self.redis.set(self.keys.oauth_state(state), orjson.dumps(value), ex=ttl_s)
        return state

    async def take_oauth_state(self, state: str) -> dict[str, str] | None:
        """The flow a state names, once: a replayed callback finds nothing."""
        if not state or len(state) > 64:
            return None
        raw = await self.redis.getdel(self.keys.oauth_state(state))
        return orjson.loads(raw) if raw else None  # type: ignore[no-any-return]

    async def set_status(self, account_id: str, status: str) -> None:
        await self.redis.hset(self.keys.account(account_id).account, "status", status)

    async def delete_account(self, account: Account) -> None:
        """Forget the account: its token, its credentials and its whole mirror."""
        keys = self.keys.account(account.account_id)
        token_hash = await self.redis.hget(keys.account, "token")
        doomed = [k async for k in self.redis.scan_iter(match=f"{keys.base}:*", count=500)]
        pipe = self.redis.pipeline(transaction=False)
        if token_hash:
            pipe.delete(self.keys.access_token(token_hash.decode()))
        pipe.srem(self.keys.app_accounts(account.client_id), account.account_id)
        pipe.srem(self.keys.all_accounts, account.account_id)
        pipe.zrem(self.keys.dirty, account.account_id)
        for key in doomed:
            pipe.delete(key)
        await pipe.execute()
