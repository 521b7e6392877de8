"""Model tiers: a coder task that fails on the small model runs again on the next tier and
passes there; the escalation is in the state, the report, the live view and the dashboard."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from rich.console import Console

from core.models import TestChatModel
from core.models.factory import use_model
from graph.supervisor import build_graph
from orchestrator.cli.view import TaskBoard
from orchestrator.observability.report import build_report
from orchestrator.observability.terminal import render_report
from tests.scripting import ScriptedTeam, context_of, task
from tests.test_dashboard import REPO, _node

BUGGY = '```python\ndef is_palindrome(s: str) -> bool:\n    """True if s reads the same backwards."""\n    return s == s[::-1]\n```'
RIGHT = ('```python\ndef is_palindrome(s: str) -> bool:\n    """True if s reads the same backwards, ignoring case and spaces."""\n'
         '    t = "".join(c.lower() for c in s if c.isalnum())\n    return t == t[::-1]\n```')
TESTS = ("```python\nfrom palindrome import is_palindrome\n\n\ndef test_mixed_case_phrase():\n"
         "    assert is_palindrome('Never odd or even') is True\n\n\ndef test_not_a_palindrome():\n"
         "    assert is_palindrome('abc') is False\n```")
INSTRUCTION = "Write a Python function is_palindrome(s) ignoring case and spaces, with pytest tests. [[code]]"


def coder(module: str, prompts: list[str]) -> TestChatModel:
    """A scripted coder model: the same tests on every tier, its own module."""

    def reply(messages: list[BaseMessage]) -> str:
        prompts.append("\n".join(str(m.content) for m in messages))
        return TESTS if "pytest tests" in str(messages[0].content) else module

    return TestChatModel(text=reply)


async def test_a_coder_task_that_fails_on_the_small_tier_passes_on_the_next(saver, options, tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text('[agents.coder]\nflow = "steps"\n')
    team = ScriptedTeam([{"tasks": [{**task("code", agent="coder"), "instruction": INSTRUCTION}]}])
    small: list[str] = []
    big: list[str] = []
    tiered = {"provider": "test", "tool_mode": "structured"}
    opts = options(agents_file=str(agents_file), tiers=["test", "test-big"],
                   models={"test-big": {**tiered, "model": "test-big"}})
    cfg: dict[str, Any] = {"configurable": {"thread_id": uuid.uuid4().hex, "settings": opts}, "recursion_limit": 300}
    board = TaskBoard(Console(file=io.StringIO(), width=200), live=False)
    graph = build_graph(checkpointer=saver)
    # The supervisor and the first tier share the small model; the coder's own calls come
    # from the model of its tier (looked up by the model's name).
    models = {"supervisor": team.model, "test": coder(BUGGY, small), "test-big": coder(RIGHT, big)}
    with use_model(models):
        async for part in graph.astream({"goal": INSTRUCTION}, cfg, stream_mode="custom",
                                        durability="sync", context=context_of(cfg)):
            board.on_event(part)
    values = (await graph.aget_state(cfg)).values

    code = values["results"]["code"]
    assert code["status"] == "done" and code["model"] == "test-big"
    assert code["metrics"]["model"] == "test-big"  # the attempt that passed ran on the big tier
    steps = [h for h in code["history"] if h.startswith("escalation")]
    assert steps[0] == "escalation: adjusted retry"
    assert steps[1].startswith("escalation: stronger model test-big (failed on test; ")
    assert len(steps) == 2 and code["attempts"] == 3  # small, small again, big
    assert small and big  # each tier wrote a module; the big one's is kept
    assert "t == t[::-1]" in (tmp_path / "data" / "workspaces" / cfg["configurable"]["thread_id"]
                               / "palindrome.py").read_text()
    assert "failed" in big[0] or "FAILED" in big[0]  # the big tier was told what went wrong
    assert values["status"] == "completed"

    # The report: the model of the last attempt and the escalation steps.
    report = build_report(cfg["configurable"]["thread_id"], values)
    (row,) = report["tasks"]
    assert row["model"] == "test-big" and row["escalations"][1].startswith("stronger model test-big")
    out = io.StringIO()
    render_report(report, Console(file=out, width=200, color_system=None))
    assert "code escalation: stronger model test-big (failed on test;" in out.getvalue()

    # The live view: the task's row names the tier it runs on.
    assert board.models["code"] == "test-big"
    assert any(n.startswith("escalation: code stronger model test-big (failed on test;") for n in board.notes)

    # The dashboard's task rows (its own code, under node) show the same.
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(values, default=str))
    script = (f"import {{ taskRows }} from {json.dumps((REPO / 'dashboard/js/model.js').as_uri())};\n"
              "import { readFileSync } from 'node:fs';\n"
              f"const row = taskRows(JSON.parse(readFileSync({json.dumps(str(state_file))}, 'utf8')), {{}})[0];\n"
              "console.log(JSON.stringify({ model: row.model, history: row.history }));\n")
    shown = subprocess.run([_node(), "--input-type=module", "-e", script], capture_output=True, text=True,
                           check=True, timeout=60)
    row_js = json.loads(shown.stdout)
    assert row_js["model"] == "test-big"
    assert any(h.startswith("escalation: stronger model test-big") for h in row_js["history"])
