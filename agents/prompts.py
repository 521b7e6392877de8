"""Worker and reviewer prompts, fitted to the model's context window.

Small local models have 8k-token windows, so the prompt is rebuilt every step from the
state's trace, and when it does not fit, older tool results are shortened first, then the
dependency context, then the newest results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agents.registry import AgentSpec
from agents.steps import FINAL_ACTION
from core.models.schemas import as_openai_tool
from core.text import CHARS_PER_TOKEN, estimate_tokens, truncate

ToolMode = Literal["native", "structured"]

OBSERVATION_MAX_CHARS = 3000
"""A tool result longer than this is cut when recorded (about 1k tokens)."""
SHORT_OBSERVATION_CHARS = 400
"""What an older tool result is cut to when the prompt does not fit."""


class TraceEntry(TypedDict, total=False):
    """One item of a worker's history: a tool call with its result, or a note to the model."""

    step: int
    kind: Literal["call", "note"]
    id: str
    tool: str
    args: dict[str, Any]
    thought: str
    observation: str
    ok: bool
    """The tool ran and did not fail (rejected, invalid or failing calls are not ok)."""
    text: str


# -- worker prompt ----------------------------------------------------------------------


ToolKey = tuple[type, str, str, type]

_SIGNATURES: dict[ToolKey, str] = {}
_TOOL_FORMS: dict[ToolKey, str] = {}
_CACHE_SIZE = 512
"""Entries per cache; a process sees few distinct tools (built-ins plus MCP servers')."""


def _tool_key(tool: BaseTool) -> ToolKey | None:
    """What a tool's OpenAI form depends on, when all of it is hashable.

    Tools are built per task (bound to the task's thread), so the instances differ while
    the definitions repeat: the class, name, description and argument schema class (the
    built-ins' are module-level pydantic models). ``convert_to_openai_tool`` reads nothing
    else of a tool with a model class as its schema. A tool with a JSON-schema dict (an MCP
    tool) has no such key and is converted each time (that conversion builds no model)."""
    schema = tool.args_schema
    if isinstance(schema, type):
        return (type(tool), tool.name, tool.description or "", schema)
    return None


def _remember(cache: dict[ToolKey, str], key: ToolKey, value: str) -> str:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def tool_form(tool: BaseTool) -> dict[str, Any]:
    """``convert_to_openai_tool(tool)``, built once per tool definition (a fresh copy each
    call). The conversion builds a pydantic subset model and its JSON schema, which cost
    about a tenth of a task's CPU when every step of every task did it again."""
    key = _tool_key(tool)
    if key is None:
        return convert_to_openai_tool(tool)
    form = _TOOL_FORMS.get(key)
    if form is None:
        form = _remember(_TOOL_FORMS, key, json.dumps(convert_to_openai_tool(tool)))
    converted: dict[str, Any] = json.loads(form)
    return converted


def _signature(tool: BaseTool) -> str:
    """``- name(arg: type, opt?: type): first sentence of the description`` (cached per
    tool definition, see ``tool_form``)."""
    key = _tool_key(tool)
    if key is None:
        return _build_signature(tool)
    found = _SIGNATURES.get(key)
    return found if found is not None else _remember(_SIGNATURES, key, _build_signature(tool))


def _build_signature(tool: BaseTool) -> str:
    params = tool_form(tool)["function"].get("parameters") or {}
    required = set(params.get("required", []))
    args = []
    for name, schema in (params.get("properties") or {}).items():
        options = [schema, *schema.get("anyOf", [])]
        enum = next((o["enum"] for o in options if "enum" in o), None)
        types = [str(o["type"]) for o in options if o.get("type") not in (None, "null")]
        typ = "|".join(map(str, enum)) if enum else "/".join(dict.fromkeys(types)) or "any"
        args.append(f"{name}{'' if name in required else '?'}: {typ}")
    desc = " ".join((tool.description or "").split())
    first = desc.split(". ")[0].rstrip(".")
    if len(first) > 200:
        first = first[:199].rsplit(" ", 1)[0] + "…"
    return f"- {tool.name}({', '.join(args)}): {first}"


def system_prompt(spec: AgentSpec, tools: Sequence[BaseTool], mode: ToolMode) -> str:
    """The agent's prompt plus how to act in the given tool mode."""
    rules = [
        "Use only facts from tool results, the context and the task. Do not invent sources.",
    ]
    if mode == "structured":
        listing = "\n".join(_signature(t) for t in tools) or "(no tools)"
        rules = [
            f"Tools:\n{listing}",
            "Each reply is one step: thought, action, action_input, answer, citations.",
            "To use a tool: action = the tool name, action_input = its arguments.",
            f'When you can answer: action = "{FINAL_ACTION}", answer = the complete answer, '
            "citations = the sources you used.",
            *rules,
        ]
    else:
        rules = [
            "Call a tool to get what you need. When you can answer, call FinalAnswer with the "
            "complete answer and the sources you used.",
            *rules,
        ]
    return spec.prompt.strip() + "\n\n" + "\n".join(rules)


def task_prompt(task: dict[str, Any], goal: str, context: str, feedback: str) -> str:
    """The task, its criteria, the dependency results and earlier feedback."""
    parts = []
    if goal.strip():
        parts.append(f"Overall goal: {goal.strip()}")
    parts.append(f"Your task ({task.get('id', '?')}): {str(task.get('instruction', '')).strip()}")
    criteria = str(task.get("acceptance_criteria") or "").strip()
    if criteria:
        parts.append(f"A correct result must: {criteria}")
    if context.strip():
        parts.append(f"Context from earlier tasks:\n{context.strip()}")
    if feedback.strip():
        parts.append(f"Feedback on an earlier attempt (address it):\n{feedback.strip()}")
    return "\n\n".join(parts)


def _trace_messages(
    trace: Sequence[TraceEntry], mode: ToolMode, caps: dict[int, int]
) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    i = 0
    while i < len(trace):
        entry = trace[i]
        if entry.get("kind") == "note":
            messages.append(HumanMessage(entry.get("text", "")))
            i += 1
            continue
        # Calls made in one step are one assistant turn followed by their results.
        j = i
        while (
            j < len(trace)
            and trace[j].get("kind") == "call"
            and trace[j].get("step") == entry.get("step")
        ):
            j += 1
        group = trace[i:j]

        def obs(k: int, e: TraceEntry) -> str:
            text = e.get("observation", "")
            return truncate(text, caps[k]) if k in caps else text

        if mode == "native":
            messages.append(
                AIMessage(
                    content=entry.get("thought", ""),
                    tool_calls=[
                        {
                            "name": e.get("tool", ""),
                            "args": e.get("args", {}),
                            "id": e.get("id", ""),
                        }
                        for e in group
                    ],
                )
            )
            messages.extend(
                ToolMessage(content=obs(i + n, e), tool_call_id=e.get("id", ""), name=e.get("tool"))
                for n, e in enumerate(group)
            )
        else:
            for n, e in enumerate(group):
                step = {
                    "thought": e.get("thought", ""),
                    "action": e.get("tool", ""),
                    "action_input": e.get("args", {}),
                }
                messages.append(AIMessage(json.dumps(step, ensure_ascii=False, default=str)))
                messages.append(HumanMessage(f"Result of {e.get('tool')}:\n{obs(i + n, e)}"))
        i = j
    return messages


def worker_messages(
    spec: AgentSpec,
    tools: Sequence[BaseTool],
    mode: ToolMode,
    state: dict[str, Any],
    *,
    budget_tokens: int,
    closing: str | None = None,
) -> list[BaseMessage]:
    """The messages for the next step, shrunk to ``budget_tokens`` where possible.

    ``closing`` is appended as a last user message (e.g. "answer now").
    """
    trace: list[TraceEntry] = list(state.get("trace") or [])
    system = SystemMessage(system_prompt(spec, tools, mode))
    context = str(state.get("context") or "")
    caps: dict[int, int] = {}
    last_step = max((e.get("step", 0) for e in trace if e.get("kind") == "call"), default=0)
    older = [
        k
        for k, e in enumerate(trace)
        if e.get("kind") == "call"
        and e.get("step") != last_step
        and len(e.get("observation", "")) > SHORT_OBSERVATION_CHARS
    ]
    newest = [
        k
        for k, e in enumerate(trace)
        if e.get("kind") == "call"
        and e.get("step") == last_step
        and len(e.get("observation", "")) > SHORT_OBSERVATION_CHARS
    ]

    def render() -> list[BaseMessage]:
        task = HumanMessage(
            task_prompt(
                state.get("task") or {},
                str(state.get("goal") or ""),
                context,
                str(state.get("feedback") or ""),
            )
        )
        out = [system, task, *_trace_messages(trace, mode, caps)]
        if closing:
            out.append(HumanMessage(closing))
        return out

    messages = render()
    while (over := estimate_tokens(messages) - budget_tokens) > 0:
        if older:  # oldest results matter least once the model has acted on them
            caps[older.pop(0)] = SHORT_OBSERVATION_CHARS
        elif len(context) > 200:
            context = truncate(context, max(int(len(context) - over * CHARS_PER_TOKEN - 50), 200))
        elif newest:
            caps[newest.pop(0)] = SHORT_OBSERVATION_CHARS
        else:
            break  # nothing left to shrink; the model's own limit will tell
        messages = render()
    return messages


def forced_answer_prompt(exhausted: bool) -> str:
    """The closing instruction for the forced final-answer call."""
    why = "You have used all your steps. " if exhausted else ""
    return (
        f"{why}Give your final answer now, using what you found above. "
        "If something could not be done, say what is missing."
    )


# -- reviewer prompt ------------------------------------------------------------------------

REVIEWER_SYSTEM = (
    "You check a worker's result against the task's acceptance criteria. "
    "Pass it only if it meets every criterion and its facts are supported by the evidence. "
    "Do not fail it for style. If it fails, say exactly what is wrong or missing."
)


def review_messages(
    task: dict[str, Any],
    output: str,
    citations: Sequence[str],
    evidence: Sequence[str],
    *,
    budget_tokens: int,
) -> list[BaseMessage]:
    """The reviewer's prompt: criteria, the result, its sources and the tool results seen."""

    def render(evidence_chars: int, output_chars: int) -> list[BaseMessage]:
        parts = [
            f"Task: {str(task.get('instruction', '')).strip()}",
            f"Acceptance criteria: {str(task.get('acceptance_criteria', '')).strip()}",
            f"Result:\n{truncate(output.strip(), output_chars)}",
            "Cited sources: " + ("; ".join(citations) if citations else "none"),
        ]
        if evidence and evidence_chars > 0:
            per = max(evidence_chars // len(evidence), 100)
            parts.append(
                "Evidence (what the worker was given and found):\n"
                + "\n---\n".join(truncate(e, per) for e in evidence)
            )
        parts.append("Does the result meet every criterion? Answer with passed and feedback.")
        return [SystemMessage(REVIEWER_SYSTEM), HumanMessage("\n\n".join(parts))]

    evidence_chars, output_chars = sum(len(e) for e in evidence), len(output)
    messages = render(evidence_chars, output_chars)
    while (over := estimate_tokens(messages) - budget_tokens) > 0 and (
        evidence_chars > 0 or output_chars > 500
    ):
        cut = int(over * CHARS_PER_TOKEN) + 100
        if evidence_chars > 0:
            evidence_chars = max(evidence_chars - cut, 0)
        else:
            output_chars = max(output_chars - cut, 500)
        messages = render(evidence_chars, output_chars)
    return messages


def prompt_budget(context_window: int, max_tokens: int | None, tools: Sequence[Any] = ()) -> int:
    """Tokens left for messages after the reply and the tool schemas."""
    schemas = [tool_form(t) if isinstance(t, BaseTool) else as_openai_tool(t) for t in tools]
    tools_tokens = estimate_tokens([], schemas) if schemas else 0
    return max(context_window - (max_tokens or 1024) - tools_tokens - 64, 512)
