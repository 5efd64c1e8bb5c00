"""What an attempt hands to the carrier (and on to the agent runtime): the rendered system prompt and
opening message, and the variables. Agent snapshot < campaign overrides < lead overrides; campaign
defaults < lead variables. Pure."""

from __future__ import annotations

from typing import Any

from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.templates import render
from dialwave.records import record


@record  # built for every dial
class Handoff:
    system_prompt: str
    opening_message: str
    variables: dict[str, Any]
    voicemail_message: str | None = None  # rendered; set when a machine answer is to get a message


def handoff(
    agent: dict[str, Any],
    config: CampaignConfig,
    variables: dict[str, Any],
    lead_overrides: dict[str, Any] | None,
    *,
    prompts: bool = True,
) -> Handoff:
    """`prompts=False` (a forecast: no agent runtime reads them): the prompt and opening message are
    left empty; the voicemail message, which decides how long a simulated machine answer lasts, is not."""
    values = {**config.dynamic_variables, **variables}
    lead_overrides = lead_overrides or {}
    campaign = config.agent_overrides
    prompt = lead_overrides.get("system_prompt") or campaign.system_prompt or agent.get("system_prompt") or ""
    opening = lead_overrides.get("opening_message") or campaign.opening_message or agent.get("opening_message") or ""
    machine = config.machine_detection
    voicemail = None
    if machine.enabled and machine.on_voicemail == "leave_message" and machine.voicemail_message:
        voicemail = render(machine.voicemail_message, values)
    if not prompts:
        return Handoff("", "", values, voicemail)
    return Handoff(render(prompt, values), render(opening, values), values, voicemail)
