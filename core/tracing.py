"""Tracing: LangSmith (readable run names and metadata per task, secret-free uploads) and
OpenTelemetry (OTLP spans for a collector of the operator's, below).

Tracing itself is LangChain's: it is on when ``LANGSMITH_TRACING=true`` and an API key is
set. This module only names the runs (``tracing_config``) and wraps a run in a LangSmith
context whose client masks configured secrets in every input, output, metadata and error it
sends (``trace_run``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from time import time_ns
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from core.redact import redact, secret_values
from core.settings import Settings

_TRUE = ("1", "true", "yes", "on")


def tracing_enabled() -> bool:
    """Whether LangSmith tracing is switched on and has an API key."""
    flag = os.environ.get("LANGSMITH_TRACING") or os.environ.get("LANGCHAIN_TRACING_V2") or ""
    key = os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")
    return flag.strip().lower() in _TRUE and bool(key)


def _field(obj: Any, name: str) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping):
        return str(obj.get(name, ""))
    return str(getattr(obj, name, "") or "")


def _thread_id(config: Mapping[str, Any] | None) -> str:
    if config is None:
        try:  # inside a graph node the current config is available implicitly
            from langgraph.config import get_config

            config = get_config()
        except RuntimeError:
            config = {}
    return str((config.get("configurable") or {}).get("thread_id") or "")


def tracing_config(task: Any, agent: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Config to merge into a task's sub-graph call: run name, metadata and tags.

    ``task`` is a Task, a task dict or an id; ``agent`` an AgentSpec or a name; ``config``
    the node's RunnableConfig (read implicitly inside a graph run when omitted).
    """
    task_id, name = _field(task, "id"), _field(agent, "name")
    thread_id = _thread_id(config)
    return {
        "run_name": f"task {task_id} · {name}",
        "metadata": {"task_id": task_id, "agent": name, "thread_id": thread_id},
        "tags": [f"task:{task_id}", f"agent:{name}"],
    }


def anonymizer(settings: Settings | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The masking function LangSmith applies to inputs, outputs, metadata and errors."""
    secrets = secret_values(settings)  # collected once per run, not once per upload
    return lambda data: redact(data, secrets)


def redacting_client(settings: Settings | None) -> Any:
    """A LangSmith client whose anonymizer masks every configured secret before upload."""
    import langsmith

    return langsmith.Client(anonymizer=anonymizer(settings))


@contextmanager
def trace_run(settings: Settings | None, thread_id: str | None = None) -> Iterator[None]:
    """Trace what runs inside through the redacting client, tagged with the thread id.

    A no-op unless tracing is enabled, so it can wrap every run unconditionally.
    """
    if not tracing_enabled():
        yield
        return
    from langsmith import tracing_context

    metadata = {"thread_id": thread_id} if thread_id else {}
    with tracing_context(client=redacting_client(settings), metadata=metadata):
        yield


# -- OpenTelemetry ----------------------------------------------------------------------------
#
# A run, its tasks, their model calls and tool calls as OTLP spans, for a collector the
# operator runs (Phoenix, Jaeger, Langfuse, an OpenTelemetry Collector). Off unless
# ``Settings.otel_endpoint`` or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: nothing
# leaves the machine unasked. Spans come from LangChain's callbacks (every model and tool call
# of the run reaches them, in sub-graphs too); the run's and the tasks' outcome — status,
# tokens, cost, failure mode — is set from the recorded state when the run ends (``finish``).
# Attribute names: ``orchestrator.*`` for this product's, plus OpenInference's (what Phoenix
# reads: ``openinference.span.kind``, ``llm.*``, ``session.id``) and OpenTelemetry's GenAI
# conventions (``gen_ai.*``). Every text is masked as reports mask it (``core.redact``).

OTEL_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""The standard variables that switch export on when no setting does."""
OTEL_TEXT_LIMIT = 4000
"""Characters of a prompt, output or answer kept in a span attribute (the rest is cut)."""
SERVICE_NAME = "agent-orchestrator"

_providers: dict[str, Any] = {}
"""One tracer provider (and its batch exporter) per endpoint, for the whole process."""


def otel_enabled(settings: Settings | None) -> bool:
    """Whether runs are exported as OpenTelemetry spans."""
    if (os.environ.get("OTEL_SDK_DISABLED") or "").strip().lower() in _TRUE:
        return False
    return bool((settings is not None and settings.otel_endpoint) or any(os.environ.get(v) for v in OTEL_ENV))


def _provider(settings: Settings | None) -> Any:
    """The process's tracer provider for the configured endpoint (made on first use)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    configured = settings.otel_endpoint if settings is not None else None
    # The setting names the collector; the standard variables are read by the exporter itself.
    endpoint = configured.rstrip("/") + "/v1/traces" if configured and not configured.rstrip("/").endswith(
        "/v1/traces") else configured
    key = endpoint or "(environment)"
    if key not in _providers:
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        _providers[key] = provider
    return _providers[key]


def _usage_of(response: Any) -> tuple[int, int]:
    """(input, output) tokens a model call reported (LangChain's usage metadata)."""
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage:
                return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    token_usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
    return int(token_usage.get("prompt_tokens", 0)), int(token_usage.get("completion_tokens", 0))


def _text_of(response: Any) -> str:
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            message = getattr(generation, "message", None)
            text = getattr(message, "content", None) or getattr(generation, "text", "")
            if not text and message is not None and getattr(message, "tool_calls", None):
                text = str(message.tool_calls)
            return str(text)
    return ""


class OtelRun(BaseCallbackHandler):
    """One run's spans: a LangChain callback handler while the run streams (``active``),
    then ``finish`` with the recorded state. Made by ``start_otel_run``."""

    run_inline = True  # called on the event loop itself, in the order events happen
    raise_error = False  # a tracing fault never fails a run

    def __init__(self, settings: Settings | None, thread_id: str, provider: Any) -> None:
        from opentelemetry import trace

        self.settings = settings
        self.thread_id = thread_id
        self.provider = provider
        self.tracer = provider.get_tracer("agent-orchestrator")
        self._trace = trace
        self._secrets = secret_values(settings)
        self._parents: dict[Any, Any] = {}
        """LangChain run id -> its parent's, for every run seen (spans hang on the nearest)."""
        self._spans: dict[Any, Any] = {}
        """LangChain run id -> the span it opened (task attempts, model and tool calls)."""
        self._models: dict[Any, str] = {}
        """LangChain run id of a model call -> the settings' name of its model."""
        self.task_spans: list[tuple[str, Any, dict[str, Any]]] = []
        """(task id, span, what its attempt returned), in the order attempts started."""
        self._open_tasks: set[Any] = set()
        self.run_span = self.tracer.start_span(
            f"run {thread_id}", attributes=self._attrs({
                "openinference.span.kind": "CHAIN", "session.id": thread_id, "orchestrator.thread_id": thread_id,
            }))
        self.finished = False

    # -- helpers -------------------------------------------------------------------------

    def _text(self, value: Any) -> str:
        text = str(value)
        if len(text) > OTEL_TEXT_LIMIT:
            text = text[:OTEL_TEXT_LIMIT] + "…"
        return str(redact(text, self._secrets))

    def _attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Span attributes: None dropped, texts masked, the rest as OpenTelemetry takes them."""
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            if value is None or value == "":
                continue
            out[key] = self._text(value) if isinstance(value, str) else value
        return out

    def _parent_span(self, parent_run_id: Any) -> Any:
        """The span of the nearest ancestor that has one, else the run's."""
        seen = 0
        while parent_run_id is not None and seen < 10_000:
            if parent_run_id in self._spans:
                return self._spans[parent_run_id]
            parent_run_id = self._parents.get(parent_run_id)
            seen += 1
        return self.run_span

    def _start(self, run_id: Any, parent_run_id: Any, name: str, attrs: Mapping[str, Any]) -> Any:
        self._parents[run_id] = parent_run_id
        context = self._trace.set_span_in_context(self._parent_span(parent_run_id))
        span = self.tracer.start_span(name, context=context, attributes=self._attrs(attrs))
        self._spans[run_id] = span
        return span

    def _fail(self, span: Any, error: BaseException | str) -> None:
        from opentelemetry.trace import Status, StatusCode

        message = self._text(error if isinstance(error, str) else f"{type(error).__name__}: {error}")
        span.set_status(Status(StatusCode.ERROR, message))
        span.set_attribute("orchestrator.error", message)

    def _model_config(self, name: str) -> tuple[str, Any]:
        """(settings name, ModelConfig) of a model a call named, when the settings know it."""
        if self.settings is None or not name:
            return "", None
        models = self.settings.all_models()
        if name in models:
            return name, models[name]
        return next(((n, c) for n, c in models.items() if c.model == name), ("", None))

    def _tier(self, name: str) -> int | None:
        tiers = (self.settings.tiers if self.settings is not None else None) or []
        return tiers.index(name) if name in tiers else None

    # -- LangChain callbacks ---------------------------------------------------------------

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None,  # type: ignore[override]
                       metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._parents[run_id] = parent_run_id
        metadata = metadata or {}
        name = str(kwargs.get("name") or "")
        task_id = str(metadata.get("task_id") or "")
        # The task's sub-graph call is named by ``tracing_config``: one span per attempt.
        if task_id and name == f"task {task_id} · {metadata.get('agent', '')}":
            attempt = sum(1 for t, _, _ in self.task_spans if t == task_id) + 1
            span = self._start(run_id, parent_run_id, name, {
                "openinference.span.kind": "AGENT", "session.id": self.thread_id,
                "orchestrator.thread_id": self.thread_id, "orchestrator.task_id": task_id,
                "orchestrator.agent": str(metadata.get("agent") or ""), "orchestrator.attempt": attempt,
                "input.value": (inputs or {}).get("task", {}).get("instruction", "") if isinstance(inputs, Mapping) else "",
            })
            self.task_spans.append((task_id, span, {}))
            self._open_tasks.add(run_id)

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        if run_id in self._open_tasks:
            self._open_tasks.discard(run_id)
            span = self._spans[run_id]
            outcome = next(o for _, s, o in self.task_spans if s is span)
            if isinstance(outputs, Mapping):
                outcome.update(error=outputs.get("error"), output=outputs.get("output"))
                if outputs.get("output"):
                    span.set_attribute("output.value", self._text(outputs["output"]))
                if outputs.get("error"):
                    self._fail(span, str(outputs["error"]))
            outcome["ended_ns"] = time_ns()

    def on_chain_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        if run_id in self._open_tasks:
            self._open_tasks.discard(run_id)
            span = self._spans[run_id]
            self._fail(span, error)
            outcome = next(o for _, s, o in self.task_spans if s is span)
            outcome.update(error=f"{type(error).__name__}: {error}", ended_ns=time_ns())

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, parent_run_id: Any = None,
                            metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        metadata = metadata or {}
        last = messages[0][-1].content if messages and messages[0] else ""
        self._model_start(run_id, parent_run_id, metadata, last)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: Any, parent_run_id: Any = None,
                     metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._model_start(run_id, parent_run_id, metadata or {}, prompts[-1] if prompts else "")

    def _model_start(self, run_id: Any, parent_run_id: Any, metadata: Mapping[str, Any], prompt: Any) -> None:
        model = str(metadata.get("ls_model_name") or "")
        configured, _ = self._model_config(model)
        self._models[run_id] = configured
        self._start(run_id, parent_run_id, f"model {configured or model or '?'}", {
            "openinference.span.kind": "LLM", "session.id": self.thread_id,
            "orchestrator.thread_id": self.thread_id, "orchestrator.task_id": str(metadata.get("task_id") or ""),
            "orchestrator.agent": str(metadata.get("agent") or ""), "orchestrator.model": configured or model,
            "orchestrator.tier": self._tier(configured or model),
            "orchestrator.node": str(metadata.get("langgraph_node") or ""),  # plan, synthesize, a flow's step
            "llm.model_name": model, "llm.provider": str(metadata.get("ls_provider") or ""),
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "input.value": prompt if isinstance(prompt, str) else str(prompt),
        })

    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        from core.usage import cost_usd

        tokens_in, tokens_out = _usage_of(response)
        _, config = self._model_config(self._models.pop(run_id, ""))
        span.set_attributes(self._attrs({
            "llm.token_count.prompt": tokens_in, "llm.token_count.completion": tokens_out,
            "llm.token_count.total": tokens_in + tokens_out,
            "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
            "orchestrator.tokens": tokens_in + tokens_out,
            "orchestrator.cost_usd": cost_usd(tokens_in, tokens_out, config) if config is not None else None,
            "output.value": _text_of(response),
        }))
        span.end()

    def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is not None:
            self._fail(span, error)
            span.end()

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: Any, parent_run_id: Any = None,
                      metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        metadata = metadata or {}
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        self._start(run_id, parent_run_id, f"tool {name}", {
            "openinference.span.kind": "TOOL", "session.id": self.thread_id, "tool.name": name,
            "orchestrator.thread_id": self.thread_id, "orchestrator.task_id": str(metadata.get("task_id") or ""),
            "orchestrator.agent": str(metadata.get("agent") or ""), "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name, "input.value": input_str,
        })

    def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is not None:
            span.set_attribute("output.value", self._text(getattr(output, "content", output)))
            span.end()

    def on_tool_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is not None:
            self._fail(span, error)
            span.end()

    # -- the run ---------------------------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[OtelRun]:
        """Within the block, every LangChain run (the graph's, its sub-graphs', model and
        tool calls) reports to these spans."""
        token = _otel_handler.set(self)
        try:
            yield self
        finally:
            _otel_handler.reset(token)

    def finish(self, values: Mapping[str, Any], status: str, diagnosis: Mapping[str, Any] | None = None,
               error: str | None = None) -> None:
        """End every span with the run's recorded outcome; flush to the collector.

        ``values``: the thread's state; ``status``: the run's (completed, stopped, failed,
        interrupted); ``diagnosis``: ``orchestrator.observability.diagnosis.diagnose``'s."""
        if self.finished:
            return
        self.finished = True
        from core.usage import run_metrics

        diagnosis = diagnosis or {}
        modes = {d["task_id"]: d["mode"] for d in diagnosis.get("tasks") or []}
        results: Mapping[str, Any] = values.get("results") or {}
        last = {task_id: span for task_id, span, _ in self.task_spans}
        for task_id, span, outcome in self.task_spans:
            record = results.get(task_id) or {}
            metrics = record.get("metrics") or {}
            final = span is last[task_id]
            model = str(metrics.get("model") or "")
            span.set_attributes(self._attrs({
                "orchestrator.task.status": str(record.get("status") or "") if final
                else ("failed" if outcome.get("error") else "done"),
                "orchestrator.failure_mode": modes.get(task_id),
                "orchestrator.model": model, "orchestrator.tier": self._tier(model),
                # The record's usage is the task's whole (every attempt): on its last attempt's span.
                "orchestrator.tokens": int(metrics.get("tokens_in", 0)) + int(metrics.get("tokens_out", 0)) if final else None,
                "orchestrator.cost_usd": float(metrics.get("cost_usd", 0.0)) if final else None,
            }))
            span.end(end_time=outcome.get("ended_ns"))
        for span in list(self._spans.values()):  # a call still open (interrupted, crashed): end it
            if span.is_recording():
                span.end()
        totals = run_metrics(values)
        run = diagnosis.get("run") or {}
        self.run_span.set_attributes(self._attrs({
            "orchestrator.status": status, "orchestrator.stop_reason": str(values.get("stop_reason") or ""),
            "orchestrator.failure_mode": run.get("mode"),
            "orchestrator.tokens": totals["tokens"], "orchestrator.cost_usd": totals["cost_usd"],
            "orchestrator.tasks_total": totals["tasks_total"], "orchestrator.tasks_done": totals["tasks_completed"],
            "llm.token_count.total": totals["tokens"],
            "input.value": str(values.get("goal") or ""), "output.value": str(values.get("answer") or ""),
        }))
        if status in ("failed", "stopped") or error:
            self._fail(self.run_span, error or f"{status}: {values.get('stop_reason') or run.get('mode') or ''}")
        self.run_span.end()
        self.provider.force_flush(5_000)


_otel_handler: ContextVar[Any] = ContextVar("orchestrator_otel_handler", default=None)
register_configure_hook(_otel_handler, inheritable=True)


def start_otel_run(settings: Settings | None, thread_id: str) -> OtelRun | None:
    """The spans of one run (one CLI invocation's stream of it), or None when export is off."""
    if not otel_enabled(settings):
        return None
    try:
        provider = _provider(settings)
    except ImportError as err:
        from core.settings import ConfigError

        raise ConfigError(
            f"OpenTelemetry export is on (otel_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT) but {err.name} is not "
            "installed: pip install 'agent-orchestrator[otel]'") from None
    return OtelRun(settings, thread_id, provider)
