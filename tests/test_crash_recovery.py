"""A worker process dies mid-fan-out; a new process resumes and re-runs only what was in flight."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    '''
    import asyncio, json, os, sys, threading
    from pathlib import Path
    from graph.persistence import open_checkpointer
    from graph.supervisor import build_graph
    from core.models.factory import use_model
    from core.settings import load_settings
    from tests.scripting import ScriptedTeam, task

    data, log, phase = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    team = ScriptedTeam([{"tasks": [task("a"), task("b"), task("c")]}])

    def step(marker_call):
        def fail(n):
            with log.open("a") as f:
                f.write(marker_call + "\\n")
            if marker_call == "c" and phase == "crash":
                # c hits a transient error; while it waits in its retry backoff (a and b are
                # done and checkpointed by then) the process dies: no cleanup at all.
                threading.Timer(0.5, os._exit, (17,)).start()
                return ConnectionError("simulated network drop")
            return None
        return fail

    for marker in "abc":
        team.fail[marker] = step(marker)
    opts = {"model": "test", "data_dir": str(data), "review": {"plan": False},
            "adaptive_replanning": False, "verify_results": False,
            "models": {"test": {"provider": "test", "model": "test", "tool_mode": "structured"}}}
    cfg = {"configurable": {"thread_id": "crash", "settings": opts}}

    async def main():
        async with open_checkpointer(load_settings(**opts)) as saver:
            graph = build_graph(checkpointer=saver)
            with use_model(team.model):
                payload = {"goal": "three parts"} if phase == "crash" else None
                await graph.ainvoke(payload, cfg, durability="sync", context=opts)
            state = await graph.aget_state(cfg)
            print(json.dumps({"status": state.values.get("status"),
                              "done": sorted(k for k, r in state.values["results"].items() if r["status"] == "done")}))
    asyncio.run(main())
    '''
)


def run_phase(tmp_path: Path, phase: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data"), str(tmp_path / "calls.log"), phase],
        capture_output=True, text=True, timeout=120, cwd=root,
        env={"PYTHONPATH": str(root), "LANGSMITH_TRACING": "false", "PATH": "/usr/bin:/bin"},
    )


def test_resume_after_a_crash_reruns_only_the_task_in_flight(tmp_path: Path) -> None:
    crashed = run_phase(tmp_path, "crash")
    assert crashed.returncode == 17, crashed.stderr[-2000:]
    calls = (tmp_path / "calls.log").read_text().split()
    assert sorted(calls) == ["a", "b", "c"]

    resumed = run_phase(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "completed", "done": ["a", "b", "c"]}
    # a and b finished before the crash: their results came from the checkpoint.
    assert (tmp_path / "calls.log").read_text().split()[len(calls):] == ["c"]


async def test_sqlite_checkpoints_are_opened_in_wal_mode_without_fsync_per_commit(tmp_path: Path) -> None:
    """The connection settings the crash test relies on: WAL (a commit is in the log the
    moment it returns, so it survives the process being killed) with synchronous=NORMAL
    (no fsync per commit; graph/persistence.py says what that gives up)."""
    from graph.persistence import open_sqlite

    async with open_sqlite(tmp_path / "deeper" / "cp.sqlite") as saver:
        async with saver.conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone()) == ("wal",)
        async with saver.conn.execute("PRAGMA synchronous") as cur:
            assert (await cur.fetchone()) == (1,)  # NORMAL
