"""A repeated tool call is answered with the original result, never a nested notice."""

from __future__ import annotations

from agents.repeats import REPEAT_NOTICE, repeat_observation


def test_repeated_calls_quote_the_original_result_not_the_previous_notice():
    call = {"tool": "lookup_order", "args": {"order_id": "O1"}}
    trace = [{"step": 1, "kind": "call", **call, "observation": "Order O1: shipped", "ok": True}]
    first = repeat_observation(trace, call)
    assert first.startswith(REPEAT_NOTICE) and "Order O1: shipped" in first
    trace.append({"step": 2, "kind": "call", **call, "observation": first, "ok": True})
    second = repeat_observation(trace, call)
    assert second == first  # not a notice quoting a notice
    assert second.count(REPEAT_NOTICE) == 1
