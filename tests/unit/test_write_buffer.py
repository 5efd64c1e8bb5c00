"""The engine's write buffer across a failed transaction: what the transaction took (it may take
several times: the refresh flushes before and after releasing leads) goes back under what was
buffered since, so nothing decided in memory is lost and a row's latest values win."""

from __future__ import annotations

from collections import Counter

from dialwave.engine.write_buffer import WriteBuffer


def test_a_failed_transaction_puts_back_every_batch_it_took_under_the_newer_writes() -> None:
    w = WriteBuffer()
    w.lead("a", status="dialing", attempts=1)
    w.call("c1", status="ended", outcome="busy")
    w.move("cmp", "in_progress", "retry_pending")
    w.released_calls.append("c0")
    w.events.append({"type": "call.ended"})
    first = w.take()  # the first flush of the transaction
    w.lead("a", status="queued")  # released after it, in the same transaction
    w.lead("b", status="queued", attempts=0)
    w.move("cmp", "in_progress", "queued")
    w.released_calls.extend(["c0", "c2"])
    second = w.take()  # the second flush
    w.call("c1", duration_seconds=3.0)  # buffered after the transaction's last flush
    w.counting = {"cmp"}
    assert first.leads and second.leads and w.taken == [first, second]

    w.put_back()

    assert w.leads == {"a": {"status": "queued", "attempts": 1}, "b": {"status": "queued", "attempts": 0}}
    assert w.calls == {"c1": {"status": "ended", "outcome": "busy", "duration_seconds": 3.0}}
    assert w.counts == {"cmp": Counter({"in_progress": -2, "retry_pending": 1, "queued": 1})}
    assert w.released_calls == ["c0", "c2"]
    assert w.events == [{"type": "call.ended"}]
    assert w.recount == {"cmp"} and not w.counting and not w.taken


def test_a_committed_transaction_forgets_what_it_took() -> None:
    w = WriteBuffer()
    w.lead("a", status="dialing")
    w.take()
    w.counting = {"cmp"}
    w.committed()
    w.put_back()  # a later failure with nothing taken puts nothing back
    assert w.empty and not w.recount
