"""ainvoke_structured: validation, bounded retries with feedback, usage."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from core.models.structured import StructuredOutputError, ainvoke_structured
from core.models.test_model import TestChatModel


class Verdict(BaseModel):
    """Judge an answer."""

    verdict: Literal["pass", "fail"]
    score: int = Field(ge=0, le=10)
    reasons: list[str]


GOOD = {"verdict": "pass", "score": 8, "reasons": ["complete"]}


def _call(name: str, args: dict[str, object]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "c1"}])


def _bad_json() -> AIMessage:
    return AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "Verdict", "args": '{"verdict": "pass", ', "id": "c1", "error": "bad JSON"}
        ],
    )


async def test_valid_first_time() -> None:
    model = TestChatModel(tokens_in=10, tokens_out=3)
    result = await ainvoke_structured(model, Verdict, [HumanMessage("grade this")])
    assert isinstance(result.value, Verdict)
    assert result.attempts == 1 and result.errors == []
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.calls) == (10, 3, 1)
    assert result.raw.tool_calls[0]["name"] == "Verdict"


async def test_invalid_then_valid_retries_with_feedback() -> None:
    seen: list[list[BaseMessage]] = []

    def respond(messages: list[BaseMessage]) -> dict[str, object]:
        seen.append(messages)
        return GOOD

    model = TestChatModel(
        script=[_call("Verdict", {"verdict": "maybe", "score": 99})],
        responses={"Verdict": respond},
        tokens_in=10,
        tokens_out=3,
    )
    result = await ainvoke_structured(model, Verdict, "grade this")
    assert result.value == Verdict.model_validate(GOOD)
    assert result.attempts == 2
    assert "verdict" in result.errors[0] and "score" in result.errors[0]
    assert "reasons" in result.errors[0]  # missing field named
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.calls) == (20, 6, 2)
    # The retry saw the bad output and the error.
    retry = seen[0]
    assert isinstance(retry[-2], AIMessage) and "maybe" in retry[-2].text
    assert isinstance(retry[-1], HumanMessage) and "invalid" in retry[-1].text


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (_bad_json(), "not valid JSON"),
        (_call("Other", {"x": 1}), "must call the tool 'Verdict'"),
        (AIMessage(content="I think it passes."), "no call to the tool 'Verdict'"),
        (AIMessage(content='{"verdict": "pass"}'), "do not match its schema"),
    ],
)
async def test_each_kind_of_bad_output_is_retried(bad: AIMessage, expected: str) -> None:
    model = TestChatModel(script=[bad], responses={"Verdict": GOOD})
    result = await ainvoke_structured(model, Verdict, "grade this")
    assert result.attempts == 2 and expected in result.errors[0]
    assert result.value.score == 8


async def test_json_in_text_is_accepted() -> None:
    # Small local models sometimes answer with the call as text; accept it if it validates.
    text = '<tool_call>\n{"name": "Verdict", "arguments": {"verdict": "fail", "score": 2, "reasons": []}}\n</tool_call>'
    model = TestChatModel(script=[AIMessage(content=text)])
    result = await ainvoke_structured(model, Verdict, "grade this")
    assert result.attempts == 1 and result.value.verdict == "fail"


async def test_gives_up_after_attempts_with_clear_error() -> None:
    model = TestChatModel(script=[_bad_json(), AIMessage(content="no"), _call("Verdict", {})])
    with pytest.raises(StructuredOutputError) as info:
        await ainvoke_structured(model, Verdict, "grade this", attempts=3)
    err = info.value
    assert "no valid Verdict after 3 attempt(s)" in str(err)
    assert "not valid JSON" in str(err) and "Field required" in str(err)
    assert len(err.errors) == 3 and err.usage.calls == 3
    assert model.script_remaining == 0


async def test_a_system_prompt_and_a_repair() -> None:
    model = TestChatModel(script=[AIMessage(content="nope")], responses={"Verdict": GOOD})
    result = await ainvoke_structured(model, Verdict, [("system", "Be strict."), ("human", "grade")])
    assert result.attempts == 2 and result.value.verdict == "pass"
    assert result.usage.as_metrics()["model_calls"] == 2


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await ainvoke_structured(TestChatModel(), Verdict, "x", attempts=0)
    with pytest.raises(TypeError, match="pydantic model class"):
        await ainvoke_structured(TestChatModel(), dict, "x")  # type: ignore[type-var]


async def test_semantic_check_is_retried_like_a_schema_error() -> None:
    answers = iter([{**GOOD, "reasons": []}, GOOD])
    model = TestChatModel(responses={"Verdict": lambda msgs: next(answers)})

    def check(v: Verdict) -> str | None:
        return None if v.reasons else "give at least one reason"

    result = await ainvoke_structured(model, Verdict, "grade", check=check)
    assert result.attempts == 2 and "give at least one reason" in result.errors[0]
    assert result.value.reasons == ["complete"]
