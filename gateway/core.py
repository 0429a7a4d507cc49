"""The core every API face and the worker share: store, identity, mirror, feed, refresher, writer, webhooks."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.identity import Identity, load_fernet
from gateway.store.connection import RedisHandle, open_redis
from gateway.store.keys import Keys
from gateway.store.redis_store import RedisStore
from gateway.sync.changes import ChangeFeed
from gateway.sync.connectors import ConnectorPool
from gateway.sync.mirror import Mirror
from gateway.sync.refresh import Refresher
from gateway.sync.retry import RetryPolicy
from gateway.sync.sessions import DeviceSessions
from gateway.sync.single_feed import SingleTokenFeed
from gateway.sync.writes import Writer
from gateway.webhooks.subscriptions import Subscriptions
from providers import ProviderFactory, factories


@dataclass
class Core:
    settings: Settings
    redis: RedisHandle
    store: RedisStore
    identity: Identity
    mirror: Mirror
    feed: ChangeFeed
    connectors: ConnectorPool
    refresher: Refresher
    writer: Writer
    single_feed: SingleTokenFeed
    sessions: DeviceSessions
    webhooks: Subscriptions

    async def aclose(self) -> None:
        await self.refresher.aclose()
        await self.connectors.aclose()
        await self.redis.aclose()


def build_core(settings: Settings, extra_factories: dict[str, ProviderFactory] | None = None,
               redis: RedisHandle | None = None) -> Core:
    """Wire the core from settings; `extra_factories` adds providers (tests add a fake one)."""
    handle = redis or open_redis(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    store = RedisStore(handle.client, keys)
    identity = Identity(handle.client, keys, load_fernet(settings.security.encryption_key,
                                                         settings.redis.embedded_dir))
    sync = settings.sync
    policy = RetryPolicy(sync.provider_retries, sync.provider_backoff_s, sync.provider_backoff_max_s)
    mirror = Mirror(store, sync.apply_batch)
    feed = ChangeFeed(store, delta_ttl_s=2 * sync.tombstone_retention_s, page_ttl_s=sync.page_token_ttl_s)
    connectors = ConnectorPool(identity, {**factories(settings), **(extra_factories or {})})
    refresher = Refresher(store, mirror, connectors, identity, sync, policy)
    writer = Writer(store, mirror, connectors, sync, policy)
    single_feed = SingleTokenFeed(store, delta_ttl_s=2 * sync.tombstone_retention_s,
                                  page_ttl_s=sync.page_token_ttl_s)
    sessions = DeviceSessions(store, sync.session_idle_s, sync.max_sessions, sync.session_page_size)
    webhooks = Subscriptions(handle.client, keys, settings.webhooks)
    return Core(settings, handle, store, identity, mirror, feed, connectors, refresher, writer, single_feed,
                sessions, webhooks)
