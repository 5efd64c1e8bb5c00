"""SIP over TCP: messages framed by Content-Length out of a byte stream (RFC 3261 18.3)."""

from __future__ import annotations

import pytest

from dialwave.errors import FramingError
from dialwave.telephony.sip_tcp import MAX_MESSAGE, split_messages

INVITE = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nhello"
BYE = b"BYE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nl: 0\r\n\r\n"


def test_whole_messages_come_off_the_stream_and_a_partial_one_stays() -> None:
    buffer = bytearray(b"\r\n\r\n" + INVITE + BYE + INVITE[:30])
    assert split_messages(buffer) == [INVITE, BYE]  # keep-alives skipped, compact `l:` read
    assert bytes(buffer) == INVITE[:30]
    buffer += INVITE[30:-2]
    assert split_messages(buffer) == []  # the body is not complete yet
    buffer += INVITE[-2:]
    assert split_messages(buffer) == [INVITE] and not buffer


def test_any_split_of_the_stream_gives_the_same_messages() -> None:
    stream = INVITE + BYE + INVITE
    for cut in range(len(stream)):
        buffer, got = bytearray(), []
        for piece in (stream[:cut], stream[cut:]):
            buffer += piece
            got += split_messages(buffer)
        assert got == [INVITE, BYE, INVITE], cut


@pytest.mark.parametrize(
    "bad",
    [
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: " + b"x" * (MAX_MESSAGE + 1),
    ],
)
def test_a_peer_that_breaks_the_framing_is_refused(bad: bytes) -> None:
    with pytest.raises(FramingError):
        split_messages(bytearray(bad))
