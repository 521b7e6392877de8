"""Nothing in a run blocks the event loop, with the default relative data dir.

The LangGraph server rejects blocking calls on its loop (``BlockingError``); its own rules
(``langgraph_runtime_inmem``'s blockbuster set-up) are switched on here around a whole
in-process run — planning, a support task with tool approval, synthesis — whose settings
were loaded with ``data_dir = ".orchestrator"`` relative to the working directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.settings import load_settings
from graph.runner import Runner

queue = pytest.importorskip("langgraph_runtime_inmem.queue", reason="langgraph-cli[inmem] is not installed")


async def test_a_run_with_a_relative_data_dir_makes_no_blocking_call(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATOR_DATA_DIR")  # the default: ".orchestrator", relative
    settings = await asyncio.to_thread(load_settings)
    assert settings.data_dir == tmp_path / ".orchestrator"  # absolute from the start
    async with Runner.open(settings) as runner:
        blockbuster = queue._enable_blockbuster()
        try:
            goal = "Customer C001 asks for a refund of order O1001 because it arrived damaged."
            snapshot = await runner.run(goal, "nb1", {"model": "test", "review": {"plan": True}})
            tasks = [{"id": "t1", "agent": "support", "instruction": "Issue a refund for order O-1001."}]
            (pause,) = snapshot.interrupts
            edit = {"decisions": [{"type": "edit", "edited_action": {"name": "plan", "args": {"tasks": tasks}}}]}
            snapshot = await runner.resume("nb1", {pause.id: edit})
            for _ in range(6):
                if not snapshot.interrupts:
                    break
                snapshot = await runner.resume("nb1", {i.id: {"decisions": [{"type": "approve"}]}
                                                       for i in snapshot.interrupts})
        finally:
            blockbuster.deactivate()
    values = snapshot.values
    assert values["status"] == "completed", values.get("answer")
    assert "BlockingError" not in str(values["results"]) + values["answer"]
    data = tmp_path / ".orchestrator"
    assert (data / "checkpoints.sqlite").is_file() and (data / "result-cache.sqlite").is_file()
    assert values["results"]["t1"]["status"] == "done"
