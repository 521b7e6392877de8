"""TestChatModel: every interface the graph uses, deterministic and schema-valid."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypedDict

import jsonschema
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from core.models.test_model import TestChatModel, sample_from_schema


class Step(BaseModel):
    """One step of a plan."""

    id: str
    kind: Literal["search", "code", "write"]
    weight: float = Field(ge=0.5, le=2.0)
    tags: list[str] = Field(min_length=2)


class Report(BaseModel):
    """A report with nested steps."""

    title: str = Field(max_length=40)
    status: Literal["draft", "final"]
    steps: list[Step]
    priority: int = Field(ge=1, le=5)
    note: str | None = None
    reviewer: Step | None = None
    done: bool = False


class Movie(TypedDict):
    """A movie."""

    title: str
    year: int


@tool
def search(query: str, limit: int = 5) -> str:
    """Search the knowledge base."""
    return query


@tool
def refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    return order_id


def _aggregate(chunks: list[Any]) -> AIMessageChunk:
    out: AIMessageChunk = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


def test_invoke_text_usage_and_metadata() -> None:
    model = TestChatModel()
    msg = model.invoke("Explain the water cycle to a child")
    assert isinstance(msg, AIMessage)
    assert "water cycle" in msg.text and not msg.tool_calls
    assert msg.usage_metadata is not None
    usage = msg.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert msg.response_metadata["model_name"] == "test"


async def test_ainvoke_matches_invoke() -> None:
    model = TestChatModel(model_name="demo")
    a = await model.ainvoke("Summarize LangGraph checkpoints")
    b = model.invoke("Summarize LangGraph checkpoints")
    assert a.content == b.content
    assert a.response_metadata["model_name"] == "demo"


def test_text_override_and_callable() -> None:
    assert TestChatModel(text="fixed").invoke("x").content == "fixed"
    model = TestChatModel(text=lambda msgs: f"n={len(msgs)}")
    assert model.invoke([HumanMessage("a"), AIMessage("b"), HumanMessage("c")]).content == "n=3"


def test_stream_keeps_tool_calls() -> None:
    bound = TestChatModel().bind_tools([search, refund], tool_choice="refund")
    chunks: list[Any] = list(bound.stream("refund order 42"))
    assert len(chunks) > 2 and any(c.tool_call_chunks for c in chunks)
    full = _aggregate(chunks)
    invoked = bound.invoke("refund order 42")
    assert full.tool_calls == invoked.tool_calls
    assert full.tool_calls[0]["name"] == "refund"
    assert full.usage_metadata == invoked.usage_metadata  # reported once, not summed twice
    assert full.response_metadata["model_name"] == "test"


async def test_astream_text() -> None:
    model = TestChatModel()
    chunks: list[Any] = [c async for c in model.astream("Describe a lighthouse at night")]
    assert len(chunks) > 3
    full = _aggregate(chunks)
    assert full.content == model.invoke("Describe a lighthouse at night").content
    assert full.usage_metadata is not None


async def test_astream_tool_calls() -> None:
    bound = TestChatModel().bind_tools([search], tool_choice="any")
    full = _aggregate([c async for c in bound.astream("find docs")])
    assert full.tool_calls[0]["name"] == "search"
    assert isinstance(full.tool_calls[0]["args"]["query"], str)


def test_bind_tools_named_any_auto() -> None:
    model = TestChatModel()
    named = model.bind_tools([search, refund], tool_choice="search").invoke("hello")
    assert [tc["name"] for tc in named.tool_calls] == ["search"]
    assert named.tool_calls[0]["id"]

    picks = {
        model.bind_tools([search, refund], tool_choice=choice)
        .invoke(f"prompt {i}")
        .tool_calls[0]["name"]
        for i in range(12)
        for choice in ("any", "required")
    }
    assert picks == {"search", "refund"}  # the prompt hash picks among the tools

    as_dict = model.bind_tools(
        [search, refund], tool_choice={"type": "function", "function": {"name": "refund"}}
    ).invoke("x")
    assert as_dict.tool_calls[0]["name"] == "refund"

    auto = model.bind_tools([search], tool_choice="auto").invoke("hello there")
    assert not auto.tool_calls and auto.text


def test_bind_tools_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="names no bound tool"):
        TestChatModel().bind_tools([search], tool_choice="nope")
    with pytest.raises(ValueError, match="no tools are bound"):
        TestChatModel().invoke("x", tool_choice="any")


def test_with_structured_output_pydantic_and_include_raw() -> None:
    model = TestChatModel()
    value = model.with_structured_output(Report, method="function_calling").invoke("report")
    assert isinstance(value, Report)
    out: Any = model.with_structured_output(Report, include_raw=True).invoke("report")
    assert out["parsing_error"] is None and isinstance(out["parsed"], Report)
    assert isinstance(out["raw"], AIMessage) and out["raw"].tool_calls[0]["name"] == "Report"
    assert out["parsed"] == value


def test_with_structured_output_typeddict_and_json_schema() -> None:
    model = TestChatModel()
    movie = model.with_structured_output(Movie).invoke("a movie")
    assert isinstance(movie, dict) and set(movie) == {"title", "year"}
    schema = {
        "title": "Point",
        "description": "A point.",
        "type": "object",
        "properties": {"x": {"type": "integer", "minimum": 3, "maximum": 4}},
        "required": ["x"],
    }
    point = model.with_structured_output(schema).invoke("p")
    assert point in ({"x": 3}, {"x": 4})
    as_json = model.with_structured_output(Report, method="json_schema").invoke("report")
    assert isinstance(as_json, Report)
    with pytest.raises(ValueError, match="unknown method"):
        model.with_structured_output(Report, method="xml")  # type: ignore[arg-type]


def test_scripted_responses_dict_and_callable() -> None:
    args = {"title": "T", "status": "final", "steps": [], "priority": 2}
    model = TestChatModel(
        responses={"Report": args, "search": lambda msgs: {"query": msgs[-1].text.upper()}}
    )
    report = model.with_structured_output(Report).invoke("anything")
    assert isinstance(report, Report) and report.title == "T" and report.priority == 2
    call = model.bind_tools([search], tool_choice="search").invoke("find me")
    assert call.tool_calls[0]["args"] == {"query": "FIND ME"}
    bad = TestChatModel(responses={"search": lambda msgs: "oops"})
    with pytest.raises(TypeError, match="must be a dict"):
        bad.bind_tools([search], tool_choice="search").invoke("x")


def test_script_consumed_in_order_then_default() -> None:
    call = AIMessage(
        content="", tool_calls=[{"name": "search", "args": {"query": "q"}, "id": None}]
    )
    model = TestChatModel(script=["first", call])
    assert model.invoke("x").content == "first"
    second = model.bind_tools([search], tool_choice="auto").invoke("x")
    assert second.tool_calls[0]["args"] == {"query": "q"} and second.tool_calls[0]["id"]
    assert second.usage_metadata is not None
    assert model.script_remaining == 0
    assert "Response to" in model.invoke("what next").text


def test_script_is_thread_safe() -> None:
    model = TestChatModel(script=[f"r{i}" for i in range(40)])
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: model.invoke(f"q{i}").content, range(40)))
    assert sorted(replies) == sorted(f"r{i}" for i in range(40))


def test_deterministic_across_instances() -> None:
    def call(model: TestChatModel, prompt: str) -> Any:
        return model.bind_tools([search, refund], tool_choice="any").invoke(prompt).tool_calls

    assert call(TestChatModel(), "refund order 7") == call(TestChatModel(), "refund order 7")
    assert TestChatModel().invoke("abc").content == TestChatModel().invoke("abc").content
    outputs = {str(call(TestChatModel(), f"prompt {i}")) for i in range(5)}
    assert len(outputs) > 1  # different prompts, different calls


async def test_latency_overlaps_on_async() -> None:
    model = TestChatModel(latency_s=0.4)
    start = time.perf_counter()
    await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(5)))
    elapsed = time.perf_counter() - start
    assert 0.4 <= elapsed < 1.0  # about one latency; in sequence it would be 2 s


def test_sync_latency() -> None:
    start = time.perf_counter()
    TestChatModel(latency_s=0.1).invoke("x")
    assert time.perf_counter() - start >= 0.1


def test_fixed_token_counts() -> None:
    model = TestChatModel(tokens_in=100, tokens_out=7)
    for msg in (
        model.invoke("x"),
        model.bind_tools([search], tool_choice="any").invoke("y"),
        _aggregate(list(model.stream("z"))),
    ):
        assert msg.usage_metadata is not None
        assert msg.usage_metadata["input_tokens"] == 100
        assert msg.usage_metadata["output_tokens"] == 7
        assert msg.usage_metadata["total_tokens"] == 107


def test_generated_args_validate_against_pydantic_schema() -> None:
    model = TestChatModel()
    structured = model.with_structured_output(Report, include_raw=True)
    seen_optional = seen_nested = False
    for i in range(40):
        out: Any = structured.invoke(f"report number {i}")
        assert out["parsing_error"] is None, out["parsing_error"]
        report = Report.model_validate(out["raw"].tool_calls[0]["args"])
        assert 1 <= len(report.steps) <= 3 and all(len(s.tags) >= 2 for s in report.steps)
        seen_optional |= report.note is not None
        seen_nested |= report.reviewer is not None
    assert seen_optional and seen_nested  # optional fields are exercised too


def test_sample_from_schema_features() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Leaf": {"type": "object", "properties": {"v": {"const": 7}}, "required": ["v"]},
            "Tree": {
                "type": "object",
                "properties": {
                    "leaf": {"$ref": "#/$defs/Leaf"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
                },
                "required": ["leaf"],
            },
        },
        "properties": {
            "tree": {"$ref": "#/$defs/Tree"},
            "choice": {"oneOf": [{"type": "integer", "exclusiveMinimum": 10, "maximum": 11}]},
            "mode": {"enum": ["a", "b"]},
            "ratio": {"type": "number", "minimum": 0.1, "maximum": 0.2},
            "flags": {"type": "array", "items": {"type": "boolean"}, "minItems": 4},
            "when": {"type": "string", "format": "date-time"},
            "short": {"type": "string", "minLength": 5, "maxLength": 6},
            "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
            "maybe": {"type": ["string", "null"]},
        },
        "required": ["tree", "choice", "mode", "ratio", "flags", "when", "short", "extra"],
    }
    for seed in range(30):
        value = sample_from_schema(schema, seed)
        jsonschema.validate(value, schema)
        assert value["choice"] == 11 and len(value["flags"]) >= 4
    assert sample_from_schema(schema, "same") == sample_from_schema(schema, "same")
