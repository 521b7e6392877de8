"""Shared helpers for the benchmarks: scripted models for both systems, runners, output.

Both systems are driven by ``TestChatModel`` with fixed simulated latency, so timings measure
orchestration, not a language model. Ours runs the real supervisor graph with a scripted team
(the approach of tests/scripting.py); the baseline is langgraph-supervisor's
``create_supervisor`` with a ``create_react_agent`` worker, its supervisor scripted to hand
off once per task (``transfer_to_writer``) and then answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, BaseCallbackHandler  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult  # noqa: E402
from langchain_core.runnables import RunnableConfig  # noqa: E402
from langchain_core.tracers.context import register_configure_hook  # noqa: E402
from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from pydantic import Field  # noqa: E402

from core.models import TestChatModel  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MARK = re.compile(r"\[\[(\w+)\]\]")
FILLER = ("alpha bravo delta echo harbor lumen orbit quartz river summit " * 40).split()

Task = dict[str, Any]


# -- plans -------------------------------------------------------------------------------


def task(id: str, deps: Sequence[str] = ()) -> Task:
    """A writer task whose instruction carries its marker ``[[id]]``."""
    return {"id": id, "agent": "writer", "instruction": f"Do part {id} [[{id}]]",
            "acceptance_criteria": "", "depends_on": list(deps)}


def wide(n: int) -> list[Task]:
    """``n`` independent tasks."""
    return [task(f"t{i}") for i in range(n)]


def chain(n: int) -> list[Task]:
    """``n`` tasks, each depending on the previous one."""
    return [task(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(n)]


def diamond(width: int) -> list[Task]:
    """One root, ``width`` tasks on it, one join on them all."""
    mids = [task(f"m{i}", ["root"]) for i in range(width)]
    return [task("root"), *mids, task("join", [t["id"] for t in mids])]


def levels(tasks: Sequence[Task]) -> list[list[str]]:
    """Task ids grouped by depth (a task runs one level after its deepest dependency)."""
    depth: dict[str, int] = {}
    for t in tasks:  # plans here are listed in topological order
        depth[t["id"]] = 1 + max((depth[d] for d in t["depends_on"]), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for tid, d in depth.items():
        out[d].append(tid)
    return out


def critical_path(tasks: Sequence[Task], latency: Callable[[str], float]) -> float:
    """The longest path through the DAG, weighting each task by its latency."""
    finish: dict[str, float] = {}
    for t in tasks:  # topological order
        finish[t["id"]] = latency(t["id"]) + max((finish[d] for d in t["depends_on"]), default=0.0)
    return max(finish.values())


def makespan_bound(tasks: Sequence[Task], latency: Callable[[str], float], concurrency: int) -> float:
    """A lower bound on any schedule's makespan: the critical path, or, when fewer tasks may
    run at once than the DAG offers, the total work shared by ``concurrency`` workers."""
    work = sum(latency(t["id"]) for t in tasks)
    return max(critical_path(tasks, latency), work / concurrency)


def task_span(state: dict[str, Any]) -> float | None:
    """Ours: from the first task's start to the last task's end (the tasks' own timestamps),
    i.e. the makespan without the run's fixed steps (intake, plan, synthesis, their commits)."""
    metrics = [r["metrics"] for r in state.get("results", {}).values() if r.get("metrics")]
    if not metrics:
        return None
    return max(m["ended_at"] for m in metrics) - min(m["started_at"] for m in metrics)


def answer_text(marker: str, words: int) -> str:
    """A worker's answer: its marker, then ``words`` words of filler (sizes the context)."""
    return f"result-{marker} " + " ".join(FILLER[:words])


def text_of(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


class TaskTimedModel(TestChatModel):
    """A worker model whose simulated latency depends on the task it is answering."""

    task_latency: dict[str, float] = Field(default_factory=dict)
    default_latency_s: float = 0.0
    find_task: Callable[[list[BaseMessage]], str] = lambda messages: "?"

    async def _pause(self, messages: list[BaseMessage]) -> None:
        await asyncio.sleep(self.task_latency.get(self.find_task(messages), self.default_latency_s))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        await self._pause(messages)
        return await super()._agenerate(messages, stop, run_manager, **kwargs)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await self._pause(messages)
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


# -- metering -------------------------------------------------------------------------------


class Meter(BaseCallbackHandler):
    """Counts model calls and sums their reported token usage (every nested call included)."""

    run_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.tokens_in = 0
        self.tokens_out = 0
        self.calls = 0
        self.max_in = 0
        """The largest prompt of any one call."""

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        gen = response.generations[0][0] if response.generations and response.generations[0] else None
        usage = gen.message.usage_metadata if isinstance(gen, ChatGeneration) and isinstance(
            gen.message, AIMessage) else None
        self.calls += 1
        if usage:
            self.tokens_in += usage["input_tokens"]
            self.tokens_out += usage["output_tokens"]
            self.max_in = max(self.max_in, usage["input_tokens"])


_meter: ContextVar[Meter | None] = ContextVar("benchmark_meter", default=None)
register_configure_hook(_meter, inheritable=True)


@contextmanager
def metered() -> Iterator[Meter]:
    """Meter every model call made inside the block."""
    m = Meter()
    token = _meter.set(m)
    try:
        yield m
    finally:
        _meter.reset(token)


# -- our supervisor ------------------------------------------------------------------------


def options(data_dir: Path, max_concurrency: int = 8, **overrides: Any) -> dict[str, Any]:
    """Run settings: the scripted test model, no review, no verification, no cache."""
    base: dict[str, Any] = {
        "model": "test",
        "models": {"test": {"provider": "test", "model": "test", "tool_mode": "structured"}},
        "data_dir": str(data_dir),
        "review": {"plan": False, "high_risk_tools": False, "final_answer": False},
        "adaptive_replanning": False,
        "verify_results": False,
        "cache_results": False,
        "limits": {"max_concurrency": max_concurrency, "max_tasks": 60, "max_rounds": 60},
    }
    base.update(overrides)
    return base


def ours_models(tasks: Sequence[Task], *, worker_latency_s: float = 0.0,
                supervisor_latency_s: float = 0.0, answer_words: int = 0,
                tokens: tuple[int, int] | None = None,
                task_latency: dict[str, float] | None = None) -> dict[str, TestChatModel]:
    """Role -> model for ``use_model``: the supervisor plans and synthesizes, workers answer
    (after ``task_latency[task id]`` seconds, if given, else ``worker_latency_s``)."""
    plan = {"tasks": list(tasks), "rationale": "benchmark"}

    def marker(messages: Sequence[BaseMessage]) -> str:
        human = [m for m in messages if m.type == "human"]  # the task prompt comes first
        found = MARK.search(str(human[0].content)) if human else None
        return found.group(1) if found else "?"

    def step(messages: Sequence[BaseMessage]) -> dict[str, Any]:
        return {"thought": "done", "action": "final_answer", "action_input": {},
                "answer": answer_text(marker(messages), answer_words), "citations": []}

    def synthesis(messages: Sequence[BaseMessage]) -> str:
        return "SYNTHESIS: " + " | ".join(sorted(set(re.findall(r"result-\w+", text_of(messages)))))

    responses = {"Plan": plan, "AgentStep": step,
                 "FinalAnswer": lambda m: {"answer": answer_text(marker(m), answer_words), "citations": []}}
    kw: dict[str, Any] = {"tokens_in": tokens[0], "tokens_out": tokens[1]} if tokens else {}
    return {
        "supervisor": TestChatModel(latency_s=supervisor_latency_s, responses=responses, text=synthesis, **kw),
        "*": TaskTimedModel(task_latency=task_latency or {}, default_latency_s=worker_latency_s,
                            find_task=marker, responses=responses, text=synthesis, **kw),
    }


@dataclass
class Outcome:
    """One measured run."""

    wall_s: float
    cpu_s: float
    tokens_in: int
    tokens_out: int
    model_calls: int
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


async def run_ours(tasks: Sequence[Task], data_dir: Path, *,
                   checkpointer: BaseCheckpointSaver | None = None, max_concurrency: int = 8,
                   thread_id: str | None = None, **model_kw: Any) -> Outcome:
    """One goal on our supervisor; wall and CPU time of the whole ``ainvoke``."""
    from core.models.factory import use_model
    from graph.supervisor import build_graph

    graph = build_graph(checkpointer=checkpointer)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id or uuid.uuid4().hex},
                              "recursion_limit": 1000}
    models = ours_models(tasks, **model_kw)
    with use_model(models), metered() as meter:
        wall, cpu = time.perf_counter(), time.process_time()
        state = await graph.ainvoke({"goal": f"Complete the {len(tasks)}-part report."}, config,
                                    context=options(data_dir, max_concurrency),
                                    durability="sync" if checkpointer else None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    results = state.get("results", {})
    done = sum(1 for r in results.values() if r.get("status") == "done")
    ok = done == len(tasks) and state.get("status") == "completed"
    return Outcome(wall, cpu, meter.tokens_in, meter.tokens_out, meter.calls, ok=ok,
                   detail={"rounds": state.get("rounds"), "done": done, "max_prompt": meter.max_in,
                           "state": state})


# -- the baseline: langgraph-supervisor ------------------------------------------------------


def baseline_script(tasks: Sequence[Task], parallel: bool) -> list[AIMessage | str]:
    """The baseline supervisor's replies: hand off per task (or per DAG level), then answer.

    Each handoff call's id names its task, so the worker knows which task it was given;
    the supervisor's message states the task's instruction.
    """
    by_id = {t["id"]: t for t in tasks}
    groups = levels(tasks) if parallel else [[tid] for lvl in levels(tasks) for tid in lvl]
    script: list[AIMessage | str] = []
    for group in groups:
        calls = [{"name": "transfer_to_writer", "args": {}, "id": f"call_{tid}", "type": "tool_call"}
                 for tid in group]
        content = "\n".join(by_id[tid]["instruction"] for tid in group)
        script.append(AIMessage(content=content, tool_calls=calls))
    script.append("SYNTHESIS: " + " | ".join(sorted(f"result-{t['id']}" for t in tasks)))
    return script


def baseline_graph(tasks: Sequence[Task], *, parallel: bool = False, worker_latency_s: float = 0.0,
                   supervisor_latency_s: float = 0.0, answer_words: int = 0,
                   task_latency: dict[str, float] | None = None,
                   tokens: tuple[int, int] | None = None,
                   checkpointer: BaseCheckpointSaver | None = None) -> Any:
    """create_supervisor over one create_react_agent worker, both on scripted test models."""
    from langgraph.prebuilt import create_react_agent
    from langgraph_supervisor import create_supervisor

    def find_task(messages: list[BaseMessage]) -> str:
        handoff = next(m for m in reversed(messages) if isinstance(m, ToolMessage)
                       and m.tool_call_id.startswith("call_"))
        return handoff.tool_call_id.removeprefix("call_")

    kw: dict[str, Any] = {"tokens_in": tokens[0], "tokens_out": tokens[1]} if tokens else {}
    model = TaskTimedModel(task_latency=task_latency or {}, default_latency_s=worker_latency_s,
                           find_task=find_task, text=lambda m: answer_text(find_task(m), answer_words), **kw)
    worker = create_react_agent(
        model, tools=[], name="writer",
        prompt="You are the writer. Write the text the task asks for.",
    )
    supervisor = TestChatModel(latency_s=supervisor_latency_s, script=baseline_script(tasks, parallel), **kw)
    return create_supervisor(
        [worker], model=supervisor,
        prompt="You are a supervisor managing a writer. Hand off one task at a time.",
    ).compile(checkpointer=checkpointer)


async def run_baseline(tasks: Sequence[Task], *, checkpointer: BaseCheckpointSaver | None = None,
                       **kw: Any) -> Outcome:
    """One goal on the baseline; wall and CPU time of the whole ``ainvoke``."""
    app = baseline_graph(tasks, checkpointer=checkpointer, **kw)
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 1000}
    goal = {"messages": [{"role": "user", "content": f"Complete the {len(tasks)}-part report."}]}
    with metered() as meter:
        wall, cpu = time.perf_counter(), time.process_time()
        state = await app.ainvoke(goal, config, durability="sync" if checkpointer else None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ran = {m.group(1) for msg in state["messages"] if isinstance(msg, AIMessage)
           if (m := re.match(r"result-(\w+)", str(msg.content)))}
    final = str(state["messages"][-1].content)
    return Outcome(wall, cpu, meter.tokens_in, meter.tokens_out, meter.calls,
                   ok=ran == {t["id"] for t in tasks} and final.startswith("SYNTHESIS"),
                   detail={"messages": len(state["messages"]), "tasks_run": len(ran),
                           "max_prompt": meter.max_in})


# -- output ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where and when the numbers were taken."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = {}
    for pkg in ("langgraph", "langgraph-supervisor", "langgraph-checkpoint-sqlite", "langchain-core"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
            "cpu": cpu, "ram_gb": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "loadavg": os.getloadavg(),
            "packages": versions, "commit": commit}


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json`` with the machine description added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2, default=str))
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table on stdout (pasteable into docs/benchmarks.md)."""
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


async def p_yes_after_examples(
    model: Any, goal: str, question: str, pool: Any, has: Callable[[Any], bool], agents: Sequence[str]
) -> float:
    """The yes/no form of a planning judgment, as the judgment benchmarks compare it with the
    product's option form: p("yes") after the library pool's balanced worked examples."""
    from core.models.judgment import Example, yes_no
    from graph.planning import prompts
    from graph.planning.judged import EXAMPLES

    shown = pool.balanced(goal, has, EXAMPLES, agents)
    examples = [Example(f"Goal: {e.goal}\nQuestion: {question}", "yes" if has(e) else "no") for e in shown]
    verdict = await yes_no(model, prompts.NEEDS_SYSTEM, f"Goal: {goal}\nQuestion: {question}", examples=examples)
    return verdict.p("yes")


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path | None) -> None:
    """Print a judgment benchmark's summary and write it with its rows to ``out``."""
    print(json.dumps(summary))
    if out:
        out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
