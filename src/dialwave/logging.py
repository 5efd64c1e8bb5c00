"""structlog set-up; phone numbers never reach a log line in plain text."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

_PHONE = re.compile(r"\+?\d[\d\-\s().]{6,}\d")


def mask_phone(text: str) -> str:
    """Mask every digit of phone-like runs except the last four: '+14155550123' -> '+*******0123'."""

    def _mask(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = sum(ch.isdigit() for ch in raw)
        keep = 4
        out = []
        seen = 0
        for ch in raw:
            if ch.isdigit():
                seen += 1
                out.append(ch if seen > digits - keep else "*")
            else:
                out.append(ch)
        return "".join(out)

    return _PHONE.sub(_mask, text)


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and key != "timestamp":  # ours, not user data; its digits are no number
            event_dict[key] = mask_phone(value)
    return event_dict


TRACEBACK_FRAMES = 20  # the innermost frames of a logged exception
TRACEBACK_CHARS = 8_000


def _exception_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A logged exception as three plain fields: its type, its message and a bounded traceback (no local
    variables: rendering them took seconds and thousands of lines per error, on the event loop)."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    kind, value, tb = exc_info
    if kind is None:
        return event_dict
    event_dict["exc_type"] = kind.__name__
    event_dict["exc_message"] = str(value)[:1000]
    text = "".join(traceback.format_exception(kind, value, tb, limit=-TRACEBACK_FRAMES))
    event_dict["traceback"] = text[-TRACEBACK_CHARS:]
    return event_dict


def configure_logging(level: str = "info", json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_processor,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str = "dialwave") -> Any:
    return structlog.get_logger(name)
