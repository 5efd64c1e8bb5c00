"""Prefixed, time-ordered identifiers: `cmp_01J...` (48-bit ms time + 80 random bits)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_last = 0


def new_id(prefix: str) -> str:
    """Monotonic within the process: an id made later sorts later, even within one millisecond (events
    of one instant are ordered by (created_at, id))."""
    global _last
    ms = time.time_ns() // 1_000_000
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    if value <= _last:
        value = _last + 1
    _last = value
    return f"{prefix}_{_encode(value, 26)}"


# A random byte's low 5 bits name one symbol: 256 is a multiple of 32, so each symbol is equally likely,
# and 16 random bytes make the 16 symbols (80 random bits) of an id's random part, translated in C.
# (base64.b32encode, pure Python before 3.13, cost a 50,000-lead import and its 92,000 calls' ids
# about a tenth of a second in all.)
_SYMBOL_OF_BYTE = bytes(ord(_ALPHABET[b & 31]) for b in range(256))


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids at once (bulk imports, a claim's calls): one time stamp, 80 random bits each, same
    format as new_id."""
    head = f"{prefix}_{_encode(time.time_ns() // 1_000_000, 10)}"
    tails = os.urandom(16 * count).translate(_SYMBOL_OF_BYTE).decode("ascii")
    return [head + tails[i : i + 16] for i in range(0, 16 * count, 16)]
