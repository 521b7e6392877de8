"""Concurrent calls per model endpoint are bounded by max_concurrent_calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI

from core.models import chat_model
from core.models.limits import LimitedChatOpenAI
from core.settings import load_settings


async def test_at_most_n_calls_are_in_flight(monkeypatch: pytest.MonkeyPatch, tmp_path):
    in_flight = peak = 0

    async def fake_call(self: Any, *args: Any, **kwargs: Any) -> ChatResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage("ok"))])

    monkeypatch.setattr(ChatOpenAI, "_agenerate", fake_call)  # never touches the network
    settings = load_settings(
        model="ep", cache_dir=tmp_path,
        models={"ep": {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                       "api_key": "k", "max_concurrent_calls": 2}},
    )
    model = chat_model(settings, "writer")
    assert isinstance(model, LimitedChatOpenAI) and model.max_concurrent_calls == 2
    replies = await asyncio.gather(*(model.ainvoke("hi") for _ in range(6)))
    assert [r.content for r in replies] == ["ok"] * 6
    assert peak == 2
