"""Figures the pages show, computed from what the services answer (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from dialwave.web.core import when

FINISHED_LEADS = ("completed", "failed", "skipped", "cancelled")


def state_view(state: dict[str, Any]) -> dict[str, Any]:
    """A campaign's progress, pace and concurrency in use, as text (the live pages send these too)."""
    counts, live, pacing = state["counts"], state["live"], state["pacing"]
    done = sum(counts[k] for k in FINISHED_LEADS)
    total = counts["total"]
    progress = round(100 * done / total) if total else 0
    per_minute = pacing["attempts_per_second"] * 60
    return {
        "done": done,
        "progress": progress,
        "progress_text": f"{progress}% ({done} of {total} leads done)",
        "pace": f"{live['attempts_last_minute']}/min",
        "pace_limit": f"at most {per_minute:g}/min",
        "concurrency": f"{live['in_flight']} of {pacing['max_concurrency']}",
        "next_dial": when(state.get("next_dial_at")),
        "waiting": state.get("waiting_reason") or ("dialing" if state["status"] == "active" else "—"),
    }


CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM, CHART_LEFT = 720, 200, 12, 28, 36


def chart(minutes: list[dict[str, Any]]) -> dict[str, Any]:
    """An SVG bar chart of attempts (and those answered) per minute: the geometry of each bar, the axis
    labels, and a text summary for screen readers."""
    peak = max([m["attempts"] for m in minutes] + [1])
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    step = (CHART_WIDTH - CHART_LEFT) / max(1, len(minutes))
    bars = []
    for i, m in enumerate(minutes):
        x = CHART_LEFT + i * step + step * 0.1
        h_all = plot_height * m["attempts"] / peak
        h_answered = plot_height * m["answered"] / peak
        label = when(m["minute"])[11:16]
        bars.append(
            {
                "x": round(x, 1),
                "width": round(step * 0.8, 1),
                "y": round(CHART_TOP + plot_height - h_all, 1),
                "height": round(h_all, 1),
                "answered_y": round(CHART_TOP + plot_height - h_answered, 1),
                "answered_height": round(h_answered, 1),
                "label": label,
                "show_label": i % 5 == 0,
                "label_x": round(x + step * 0.4, 1),
                "attempts": m["attempts"],
                "answered": m["answered"],
                "outcomes": ", ".join(f"{k} {v}" for k, v in sorted(m["outcomes"].items())) or "none",
            }
        )
    attempts = sum(m["attempts"] for m in minutes)
    answered = sum(m["answered"] for m in minutes)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": CHART_HEIGHT - CHART_BOTTOM,
        "top": CHART_TOP,
        "left": CHART_LEFT,
        "peak": peak,
        "bars": bars,
        "summary": f"{attempts} attempts in the last {len(minutes)} minutes, {answered} answered; "
        f"at most {peak if attempts else 0} in one minute",
    }
