"""The schema. Alembic migrations in store/migrations mirror this module."""

from __future__ import annotations

import sqlalchemy as sa

from dialwave.store.types import JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

ID = sa.String(40)
DUE = sa.text("status IN ('queued', 'retry_pending')")
LIVE = sa.text("status IN ('pending', 'dialing', 'ringing', 'in_call')")
ANSWERED = sa.text("answered_at IS NOT NULL")
SKIPPED = sa.text("status = 'skipped'")

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("max_concurrency", sa.Integer),  # calls in flight across the organization; null = no cap
    sa.Column("settings", JSONType),  # organization-wide carrier credentials: {"twilio": {account_sid, auth_token}}
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("prefix", sa.String(24), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("name", sa.String(128)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

agent_versions = sa.Table(
    "agent_versions",
    metadata,
    sa.Column("agent_id", ID, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("snapshot", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

phone_numbers = sa.Table(
    "phone_numbers",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "number"),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text),
    sa.Column("agent_id", ID, sa.ForeignKey("agents.id", ondelete="RESTRICT")),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("agent_version_used", sa.Integer),
    # Counters, maintained on write (never counted on read).
    sa.Column("count_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_queued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_in_progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_completed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_retry_pending", sa.Integer, nullable=False, server_default="0"),
    sa.Column("count_cancelled", sa.Integer, nullable=False, server_default="0"),
    # Variable names that every lead of the campaign carries (null while there are no leads).
    sa.Column("lead_common_keys", JSONType),
    # An edit that can make waiting leads dialable earlier was saved at this instant: the engine brings
    # them forward in batches, then clears it.
    sa.Column("replan_from", UTCDateTime()),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("completed_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "name"),
    sa.Index("ix_campaigns_org_status", "organization_id", "status"),
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("campaign_id", ID, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("phone_number", sa.String(20), nullable=False),
    sa.Column("variables", JSONType, nullable=False),
    sa.Column("timezone", sa.String(64)),
    sa.Column("agent_overrides", JSONType),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("region", sa.String(8)),  # ISO 3166-2 (US-TX): pins the calling rules over the area code
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_outcome", sa.String(32)),
    sa.Column("next_attempt_at", UTCDateTime()),  # when it is due: earliest_at moved into windows and legal hours
    # The retry policy's (or a callback's) earliest instant, kept apart from the window arithmetic, so a
    # widened schedule can bring the lead forward without breaking its retry interval. NULL: any time.
    sa.Column("earliest_at", UTCDateTime()),
    sa.Column("retries", JSONType),  # retries used per reason: {"busy": 1}
    sa.Column("reason", sa.String(256)),  # why the lead is where it is (skipped: on the DNC list, ...)
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("campaign_id", "phone_number"),
    sa.Index("ix_leads_dispatch", "campaign_id", "status", "next_attempt_at"),
    sa.Index("ix_leads_org_phone", "organization_id", "phone_number"),
    # The dispatcher's claim: due leads of a campaign in next_attempt_at order.
    sa.Index("ix_leads_due", "campaign_id", "next_attempt_at", postgresql_where=DUE, sqlite_where=DUE),
    sa.Index("ix_leads_org_phone_status", "organization_id", "phone_number", "status"),
    sa.Index("ix_leads_skipped", "campaign_id", "id", postgresql_where=SKIPPED, sqlite_where=SKIPPED),  # audit export
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("campaign_id", ID, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("lead_id", ID, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("from_number", sa.String(20), nullable=False),
    sa.Column("to_number", sa.String(20), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32)),
    sa.Column("conversion", sa.Boolean),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("answered_at", UTCDateTime()),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("provider_call_id", sa.String(128)),
    sa.Column("sip_code", sa.Integer),
    sa.Column("caller_id", ID),  # the phone_number_id that placed it
    sa.Column("agent_version", sa.Integer),
    sa.Column("reason", sa.String(256)),  # the retry decision taken after it
    sa.Column("voicemail_left", sa.Boolean),  # a machine answered and the voicemail message was left (or not)
    sa.Column("agent_connected_at", UTCDateTime()),  # the agent's leg (SIP) or media stream (Twilio) came up
    # A person answered and the agent did not connect within compliance.abandon_after_seconds.
    sa.Column("abandoned", sa.Boolean, nullable=False, server_default=sa.false()),
    # What allowed the dial (zones and local times, rule ids, DNC lists, consent): written with the row.
    sa.Column("decision", JSONType),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("lead_id", "attempt"),  # the attempt's idempotency key
    sa.Index("ix_calls_org_campaign", "organization_id", "campaign_id"),
    sa.Index("ix_calls_org_to_started", "organization_id", "to_number", "started_at"),
    sa.Index("ix_calls_live", "campaign_id", postgresql_where=LIVE, sqlite_where=LIVE),
    sa.Index("ix_calls_campaign_started", "campaign_id", "started_at"),  # recent attempts: pace, chart
    # The campaign's 30-day abandonment rate, read from the index alone.
    sa.Index(
        "ix_calls_campaign_answered",
        "campaign_id",
        "answered_at",
        "outcome",
        "abandoned",
        postgresql_where=ANSWERED,
        sqlite_where=ANSWERED,
    ),
    sa.Index("ix_calls_campaign_id", "campaign_id", "id"),  # the audit export's pages
)

dnc_lists = sa.Table(
    "dnc_lists",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(64)),  # NULL while an import fills it, and after a newer import replaced it
    sa.Column("source", sa.String(256)),  # e.g. "US National DNC Registry"
    sa.Column("max_age_days", sa.Integer),  # campaigns naming it warn when refreshed_at is older
    sa.Column("refreshed_at", UTCDateTime()),
    sa.Column("numbers_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "name"),
)

dnc_list_numbers = sa.Table(
    "dnc_list_numbers",
    metadata,
    # No foreign key: the service deletes a list's numbers before the list (services/dnc_lists.empty), and
    # PostgreSQL's per-row check halved the import's COPY (migration 0014).
    sa.Column("list_id", ID, primary_key=True),
    sa.Column("phone_number", sa.String(20), primary_key=True),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("phone_number", sa.String(20), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),  # marketing | informational | ai_voice
    sa.Column("source", sa.String(256), nullable=False),  # where it was captured: a web form, a call, ...
    sa.Column("captured_at", UTCDateTime(), nullable=False),
    sa.Column("evidence", sa.Text),  # text or a URL
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("revoked_channel", sa.String(32)),  # api | opt_out | dnc | ...
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_consents_org_phone", "organization_id", "phone_number"),
)

dnc_numbers = sa.Table(
    "dnc_numbers",
    metadata,
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("phone_number", sa.String(20), primary_key=True),
    sa.Column("reason", sa.String(256)),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("organization_id", ID, primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer),  # NULL: reserved, the first request is still running
    sa.Column("response_body", sa.Text),
    sa.Column("response_headers", JSONType),  # [[name, value], ...] replayed with the body (content-type, etag)
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)

# -- events and webhooks --------------------------------------------------------------------------------

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    # set: the campaign's own `webhook.url` destination, kept in step with the campaign's config
    sa.Column("campaign_id", ID, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(512)),
    sa.Column("event_types", JSONType),  # null: every event
    sa.Column("secrets", JSONType, nullable=False),  # [{"secret": "whsec_...", "expires_at": iso | null}], newest first
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(256)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_webhook_endpoints_org", "organization_id", "enabled"),
)

UNSENT = sa.text("fanned_out = false")
PENDING = sa.text("status = 'pending'")

# The outbox: written in the transaction of the change that causes the event.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("campaign_id", ID),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the envelope, byte for byte as sent (signatures cover it)
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("fanned_out", sa.Boolean, nullable=False),  # deliveries created for the endpoints of the moment
    sa.Index("ix_events_unsent", "seq", postgresql_where=UNSENT, sqlite_where=UNSENT),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("endpoint_id", ID, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", ID, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, succeeded, failed
    sa.Column("attempts", sa.Integer, nullable=False),  # sends so far (all rounds)
    sa.Column("failures", sa.Integer, nullable=False),  # failed sends in this round (drives the backoff)
    sa.Column("next_attempt_at", UTCDateTime()),  # also the claim's lease: a claimed delivery is due again after it
    sa.Column("last_attempt_at", UTCDateTime()),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.String(512)),
    sa.Column("delivered_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("endpoint_id", "event_id"),
    sa.Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=PENDING, sqlite_where=PENDING),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", ID, sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.String(512)),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),
)

# Keys the server generates once and every process shares (e.g. the call-token key).
server_secrets = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# What the agent runtime reports about a call (POST /v1/calls/{id}/result).
call_results = sa.Table(
    "call_results",
    metadata,
    sa.Column("call_id", ID, sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("to_number", sa.String(20), nullable=False),
    sa.Column("conversion", sa.Boolean),
    sa.Column("disposition", sa.String(64)),
    sa.Column("summary", sa.Text),
    sa.Column("transcript", sa.Text),
    sa.Column("transcript_url", sa.String(2048)),
    sa.Column("opted_out", sa.Boolean, nullable=False),
    sa.Column("callback_at", UTCDateTime()),
    sa.Column("data", JSONType),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_call_results_org_number", "organization_id", "to_number", "created_at"),
)

# Calls holding concurrency across workers (PostgreSQL, engine/slots.py): a row is inserted when a worker
# is granted the start of an attempt and deleted when the call ends. `worker_key` is the session advisory
# lock its worker holds while alive: slots of a dead worker are freed by the worker that takes its
# campaigns over, or swept when nobody does.
dial_slots = sa.Table(
    "dial_slots",
    metadata,
    sa.Column("call_id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("campaign_id", ID, nullable=False),
    sa.Column("caller_id", ID, nullable=False),
    sa.Column("worker_key", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dial_slots_organization_id", "organization_id"),
    sa.Index("ix_dial_slots_campaign_id", "campaign_id"),
)

# A carrier's webhook verified by a process that does not hold the call (several processes on
# PostgreSQL): the process whose engine holds it takes it (LISTEN/NOTIFY, or its poll) and applies it.
carrier_events = sa.Table(
    "carrier_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("call_id", ID, nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_carrier_events_call_id", "call_id"),
    sa.Index("ix_carrier_events_created_at", "created_at"),
)
