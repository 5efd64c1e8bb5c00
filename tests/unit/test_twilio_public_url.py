"""The one base URL both Twilio webhooks (status callbacks, SMS) are checked against."""

from __future__ import annotations

from datetime import UTC, datetime

from dialwave.clock import VirtualClock
from dialwave.services.carriers import twilio_public_url
from dialwave.telephony.twilio import TwilioCarrier


def test_the_twilio_carriers_url_comes_first_else_the_configured_one_without_a_trailing_slash() -> None:
    carrier = TwilioCarrier(VirtualClock(datetime(2026, 3, 2, tzinfo=UTC)), "https://engine.example.com/")
    assert twilio_public_url(carrier, "https://settings.example.com") == "https://engine.example.com"
    assert carrier.callback_url("call_1") == f"{twilio_public_url(carrier, '')}/v1/carriers/twilio/status/call_1"
    assert twilio_public_url(None, "https://settings.example.com/") == "https://settings.example.com"
    assert twilio_public_url(None, "https://settings.example.com") == "https://settings.example.com"
