"""ainvoke_structured picks json_schema for the embedded server, function_calling elsewhere,
and counts invalid outputs, repair retries and cached prompt tokens."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda
from openai import LengthFinishReasonError
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from core.models.structured import (
    StructuredOutputError,
    ainvoke_structured,
    reset_structured_stats,
    structured_method,
    structured_stats,
)
from core.models.test_model import TestChatModel
from core.usage import Usage


class Verdict(BaseModel):
    """Judge an answer."""

    verdict: Literal["pass", "fail"]
    score: int = Field(ge=0, le=10, description="0 to 10.")


GOOD = {"verdict": "pass", "score": 8}


class JsonSchemaModel(TestChatModel):
    """The test model, declaring what LocalChatOpenAI declares."""

    structured_output_method: ClassVar[Literal["json_schema"]] = "json_schema"


def test_method_follows_the_model_class() -> None:
    assert structured_method(TestChatModel()) == "function_calling"
    assert structured_method(JsonSchemaModel()) == "json_schema"


async def test_json_schema_puts_the_schema_at_the_end_of_the_system_prompt() -> None:
    seen: list[list[BaseMessage]] = []

    def respond(messages: list[BaseMessage]) -> dict[str, Any]:
        seen.append(messages)
        return GOOD

    reset_structured_stats()
    model = JsonSchemaModel(responses={"Verdict": respond})
    result = await ainvoke_structured(model, Verdict, [("system", "Be strict."), ("human", "x")])
    assert result.value == Verdict(**GOOD) and result.attempts == 1
    assert not result.raw.tool_calls  # JSON content, no forced tool call
    system = seen[0][0]
    assert isinstance(system, SystemMessage) and str(system.content).startswith("Be strict.\n\n")
    assert "Reply with one JSON object Verdict (Judge an answer.)" in str(system.content)
    assert '"score":{' in str(system.content) and "0 to 10." in str(system.content)
    assert len(seen[0]) == 2  # no extra message: the stable prefix stays first
    stats = structured_stats()
    assert (stats.calls, stats.invalid_outputs, stats.repair_retries) == (1, 0, 0)
    assert stats.by_method == {"json_schema": 1}


async def test_json_schema_without_a_system_message_adds_one() -> None:
    seen: list[list[BaseMessage]] = []
    model = JsonSchemaModel(responses={"Verdict": lambda m: seen.append(m) or GOOD})
    await ainvoke_structured(model, Verdict, "grade this")
    assert isinstance(seen[0][0], SystemMessage) and "JSON schema" in str(seen[0][0].content)
    assert isinstance(seen[0][1], HumanMessage)


async def test_invalid_json_is_counted_and_repaired() -> None:
    seen: list[list[BaseMessage]] = []
    model = JsonSchemaModel(
        script=[AIMessage(content='{"verdict": "maybe", "score": 3}')],
        responses={"Verdict": lambda m: seen.append(m) or GOOD},
    )
    before = structured_stats()
    result = await ainvoke_structured(model, Verdict, "grade this")
    assert result.attempts == 2 and "verdict" in result.errors[0]
    assert (result.usage.invalid_outputs, result.usage.repair_retries, result.usage.calls) == (1, 1, 2)
    feedback = seen[0][-1]
    assert isinstance(feedback, HumanMessage)
    assert "Reply again with one Verdict JSON object" in str(feedback.content)
    after = structured_stats()
    assert after.invalid_outputs - before.invalid_outputs == 1
    assert after.repair_retries - before.repair_retries == 1


def _length_error(content: str) -> LengthFinishReasonError:
    completion = ChatCompletion.model_validate(
        {
            "id": "c1", "object": "chat.completion", "created": 0, "model": "local",
            "choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 48, "total_tokens": 78,
                      "prompt_tokens_details": {"cached_tokens": 20}},
        }
    )  # fmt: skip
    return LengthFinishReasonError(completion=completion)


class CutOnceModel(JsonSchemaModel):
    """Raises what ChatOpenAI raises for a json_schema reply cut at max_tokens, once."""

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:
        inner = super().with_structured_output(schema, **kwargs)
        calls = {"n": 0}

        def run(messages: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise _length_error('{"verdict": "pass", "score": 8, "notes": "aaaa')
            return inner.invoke(messages)

        return RunnableLambda(run)


async def test_a_reply_cut_at_max_tokens_is_an_invalid_output_with_its_usage() -> None:
    model = CutOnceModel(responses={"Verdict": GOOD}, tokens_in=10, tokens_out=3)
    result = await ainvoke_structured(model, Verdict, "grade this")
    assert result.attempts == 2 and "limit of 48 tokens" in result.errors[0]
    assert (result.usage.invalid_outputs, result.usage.repair_retries) == (1, 1)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 51)  # both calls
    assert result.usage.cached_tokens == 20


async def test_cut_replies_every_time_fail_with_the_usage_spent() -> None:
    class AlwaysCut(JsonSchemaModel):
        def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:
            def cut(_: Any) -> Any:
                raise _length_error('{"verdict": "pa')

            return RunnableLambda(cut)

    before = structured_stats()
    with pytest.raises(StructuredOutputError, match="after 2 attempt") as info:
        await ainvoke_structured(AlwaysCut(), Verdict, "x", attempts=2)
    assert (info.value.usage.invalid_outputs, info.value.usage.repair_retries) == (2, 1)
    assert structured_stats().failures == before.failures + 1


def test_usage_counts_cache_reads_and_sums_counters() -> None:
    usage = Usage()
    reply = AIMessage(
        content="{}",
        usage_metadata={
            "input_tokens": 100, "output_tokens": 5, "total_tokens": 105,
            "input_token_details": {"cache_read": 80},
        },
    )  # fmt: skip
    usage.add(reply, [])
    other = Usage(input_tokens=1, output_tokens=1, calls=1, cached_tokens=2, invalid_outputs=1,
                  repair_retries=1)  # fmt: skip
    usage += other
    assert (usage.input_tokens, usage.cached_tokens, usage.calls) == (101, 82, 2)
    assert (usage.invalid_outputs, usage.repair_retries) == (1, 1)
    assert usage.as_metrics() == {"tokens_in": 101, "tokens_out": 6, "model_calls": 2}


async def test_function_calling_stays_for_other_models() -> None:
    reset_structured_stats()
    result = await ainvoke_structured(TestChatModel(responses={"Verdict": GOOD}), Verdict, "x")
    assert result.raw.tool_calls[0]["name"] == "Verdict"
    assert reset_structured_stats().by_method == {"function_calling": 1}
    assert structured_stats().calls == 0
