"""Settings, read from the environment with the DIALWAVE_ prefix."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALWAVE_", extra="ignore")

    database_url: str = "sqlite:///./dialwave.db"
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    log_json: bool = False

    # Import limits: one import at most this big (413 beyond); defaults 100 MB and 2,000,000 rows.
    import_max_bytes: int = 100 * 1024 * 1024
    import_max_rows: int = 2_000_000
    import_batch_rows: int = 5_000
    import_max_errors_listed: int = 1_000
    dnc_import_max_bytes: int = 2 * 1024**3  # a named do-not-call list file (about 180 million numbers)

    idempotency_ttl_hours: int = 24
    call_token_grace_seconds: int = 300  # a call's token still serves this long after the call ended
    json_max_bytes: int = 10 * 1024 * 1024  # a JSON (or form) body bigger than this is a 413, unread
    # Requests a second per API key, bursts of twice that; 429 beyond (an organization may have its own:
    # `dialwave orgs rate`; 0 is no limit).
    rate_limit_per_second: float = 100.0
    # GET /v1/campaigns/{id}/stream: the campaign is looked at this often; a heartbeat after this long quiet.
    stream_poll_seconds: float = 0.5
    stream_heartbeat_seconds: float = 15.0

    # The dispatcher (`dialwave serve` runs it beside the API).
    engine: bool = True
    time_scale: float = 1.0  # simulated carrier only: one real second = this many engine seconds
    # Several processes with a time scale: engine time = epoch + (now - epoch) x scale in every one of them.
    time_scale_epoch: datetime | None = None
    number_attempts_per_24h: int | None = None  # organization-wide cap per number across campaigns
    # SIGTERM (and any stop): claimed leads go back, calls in flight get this long to finish, then the
    # campaigns are left to the other workers (who reconcile what is still up).
    stop_grace_seconds: float = 30.0

    # Carriers: the URL Twilio (and other carriers) reach this server at, for their callbacks.
    public_url: str = "http://127.0.0.1:8080"
    twilio_api_base: str = "https://api.twilio.com"
    telnyx_api_base: str = "https://api.telnyx.com/v2"
    vapi_api_base: str = "https://api.vapi.ai"  # only tests change these
    retell_api_base: str = "https://api.retellai.com"
    sip_host: str = "127.0.0.1"  # the address our SIP stack binds and puts in Via/Contact (reachable by trunks)
    sip_port: int = 5070

    # Webhooks (`dialwave serve` runs the delivery worker beside the API).
    webhooks: bool = True
    webhook_allow_loopback: bool = False  # development and tests: http:// and loopback addresses allowed
    webhook_timeout_seconds: float = 10.0

    # GET /metrics (Prometheus text format, unauthenticated like /healthz: docs/deploy.md "Metrics").
    metrics_enabled: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
