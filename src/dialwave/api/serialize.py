"""Rows to the public JSON shapes of the v1 API: snake_case fields, prefixed ids, times in ISO 8601
UTC with a Z, write-only secrets replaced by whether they are set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from dialwave.domain.dnc_file import stale
from dialwave.services.campaign_waiting import Waiting
from dialwave.store.repositories.campaigns import counts_of
from dialwave.webhooks.events import call_result_data, iso


def agent_config(config: dict[str, Any]) -> dict[str, Any]:
    """An agent's settings as shown: write-only secrets replaced by whether they are set."""
    out = dict(config)
    out["context_webhook_secret_set"] = bool(out.get("context_webhook_secret"))
    out["context_webhook_secret"] = None
    return out


def agent(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        **agent_config(row["config"]),
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


HOSTED_SECRETS = {
    "livekit": ("api_secret",),
    "telnyx": ("api_key",),
    "vapi": ("api_key", "webhook_secret"),
    "retell": ("api_key",),
}


def phone_number(row: RowMapping) -> dict[str, Any]:
    config = dict(row["config"])
    if config.get("sip"):
        sip = dict(config["sip"])
        sip["password_set"] = bool(sip.pop("password", None))
        config["sip"] = sip
    if config.get("twilio"):
        twilio = dict(config["twilio"])
        twilio["auth_token_set"] = bool(twilio.pop("auth_token", None))
        config["twilio"] = twilio
    for section, keys in HOSTED_SECRETS.items():  # write-only: whether each is set, never the value
        if config.get(section):
            hosted = dict(config[section])
            for key in keys:
                hosted[f"{key}_set"] = bool(hosted.pop(key, None))
            config[section] = hosted
        else:
            config[section] = None
    return {"id": row["id"], **config, "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])}


def campaign(row: RowMapping, waiting: Waiting, webhook_secret: str | None = None) -> dict[str, Any]:
    """`webhook_secret`: the campaign's endpoint was just created; its secret is shown this once."""
    hook = {**row["config"].get("webhook", {}), "endpoint_id": row.get("webhook_endpoint_id")}
    if webhook_secret is not None:
        hook["secret"] = webhook_secret
    return {
        "id": row["id"],
        **row["config"],
        "webhook": hook,
        "status": row["status"],
        "status_reason": row["status_reason"],
        "agent_version_used": row["agent_version_used"],
        "counts": counts_of(row),
        "next_dial_at": iso(waiting.next_dial_at),
        "waiting_reason": waiting.reason,
        "warnings": list(waiting.warnings),
        "abandonment": {
            "window_days": 30,
            "abandoned": waiting.abandonment.abandoned,
            "live_answers": waiting.abandonment.live_answers,
            "rate": round(waiting.abandonment.rate, 6),
        },
        "version": row["version"],
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def lead(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "campaign_id": row["campaign_id"],
        "phone_number": row["phone_number"],
        "variables": row["variables"],
        "timezone": row["timezone"],
        "region": row["region"],
        "agent_overrides": row["agent_overrides"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_outcome": row["last_outcome"],
        "next_attempt_at": iso(row["next_attempt_at"]),
        "reason": row["reason"],
        "retries": row["retries"] or {},
        "finished_at": iso(row["finished_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def call(row: RowMapping) -> dict[str, Any]:
    out = {
        k: row[k]
        for k in (
            "id",
            "campaign_id",
            "lead_id",
            "attempt",
            "from_number",
            "to_number",
            "status",
            "outcome",
            "conversion",
            "caller_id",
            "agent_version",
            "reason",
            "duration_seconds",
            "provider_call_id",
            "sip_code",
            "voicemail_left",
            "abandoned",
            "decision",
        )
    }
    for key in ("started_at", "answered_at", "agent_connected_at", "ended_at", "created_at"):
        out[key] = iso(row[key])
    return out


def consent(row: RowMapping, now: datetime) -> dict[str, Any]:
    expires = row["expires_at"]
    valid = row["revoked_at"] is None and row["captured_at"] <= now and (expires is None or expires > now)
    return {
        "id": row["id"],
        "phone_number": row["phone_number"],
        "scope": row["scope"],
        "source": row["source"],
        "captured_at": iso(row["captured_at"]),
        "evidence": row["evidence"],
        "expires_at": iso(expires),
        "revoked_at": iso(row["revoked_at"]),
        "revoked_channel": row["revoked_channel"],
        "valid": valid,
        "created_at": iso(row["created_at"]),
    }


def dnc_list(row: RowMapping, now: datetime) -> dict[str, Any]:
    return {
        "name": row["name"],
        "source": row["source"],
        "numbers": row["numbers_count"],
        "refreshed_at": iso(row["refreshed_at"]),
        "max_age_days": row["max_age_days"],
        "stale": bool(stale({row["name"]: row}, [row["name"]], now)),
    }


def dnc(row: RowMapping) -> dict[str, Any]:
    return {
        "phone_number": row["phone_number"],
        "reason": row["reason"],
        "source": row["source"],
        "created_at": iso(row["created_at"]),
    }


def endpoint(row: RowMapping, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": row["event_types"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "campaign_id": row["campaign_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery(row: RowMapping, attempts: list[RowMapping]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "endpoint_id": row["endpoint_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "delivered_at": iso(row["delivered_at"]),
        "created_at": iso(row["created_at"]),
        "attempt_log": [
            {
                "attempt": a["attempt"],
                "at": iso(a["at"]),
                "status_code": a["status_code"],
                "error": a["error"],
                "duration_ms": a["duration_ms"],
            }
            for a in attempts[-20:]
        ],
    }


def call_result(row: RowMapping) -> dict[str, Any]:
    return call_result_data(row)


def listing(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"data": items, "next_cursor": next_cursor}


def agent_version(row: RowMapping) -> dict[str, Any]:
    return {"version": row["version"], "snapshot": agent_config(row["snapshot"]), "created_at": iso(row["created_at"])}
