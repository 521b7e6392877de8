"""State several hosts share (``Settings.state_uri``): one customer database, one action
ledger, one result cache in PostgreSQL; and the knowledge-base index built safely by
processes that start together.

A "host" here is a separate process with its own ``data_dir``: nothing reaches the other
through files, only through the PostgreSQL database the test creates (and drops).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from graph import result_cache
from tests.pg_state import throwaway_database, unavailable
from tools.actions import REPLAY_NOTE, ApprovalWrite
from tools.context import ToolContext
from tools.effects import ledger_approvals, record_approvals

ROOT = Path(__file__).resolve().parent.parent
HOST_THREADS = 4
"""Concurrent callers inside each host process."""


@pytest.fixture
def state_uri() -> Iterator[str]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with throwaway_database("shared") as uri:
        yield uri


HOST = textwrap.dedent(
    '''
    import asyncio, json, sys, threading, time
    from core.settings import load_settings
    from tools.base import ToolInputError
    from tools.context import ToolContext
    from tools.customer_service import issue_refund_tool

    data_dir, uri, start_at, threads, host = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    settings = load_settings(data_dir=data_dir, state_uri=uri, model="test")
    out = []

    def call(order, key, run):
        tool = issue_refund_tool(ToolContext.from_settings(settings, run))
        try:
            text = asyncio.run(tool.ainvoke({"order_id": order, "amount": 20.0,
                                             "reason": "arrived damaged", "idempotency_key": key}))
        except Exception as exc:  # a refused refund (the rules) is an answer too
            text = f"ERROR {type(exc).__name__}: {exc}"
        out.append({"order": order, "text": text})

    # every host and thread asks for the same action (one key) on O1001, and each thread of
    # each host makes its own request (its own key) on O1006: the rules allow one refund
    jobs = [("O1001", "act-same", "t-same")] * threads
    jobs += [("O1006", f"act-{host}-{n}", f"t-{host}-{n}") for n in range(threads)]
    workers = [threading.Thread(target=call, args=job) for job in jobs]
    time.sleep(max(0.0, start_at - time.time()))   # both hosts start together
    for w in workers: w.start()
    for w in workers: w.join()
    print(json.dumps(out))
    '''
)


@pytest.mark.postgres
def test_two_hosts_ask_for_the_same_refund_at_once(tmp_path: Path, state_uri: str) -> None:
    script = tmp_path / "host.py"
    script.write_text(HOST)
    start_at = time.time() + 4.0  # after both interpreters have imported everything
    env = {"PYTHONPATH": str(ROOT), "LANGSMITH_TRACING": "false", "PATH": "/usr/bin:/bin"}
    hosts = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / f"data-{h}"), state_uri,
                          str(start_at), str(HOST_THREADS), h],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        for h in ("a", "b")
    ]
    results: list[dict[str, Any]] = []
    for proc in hosts:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-3000:]
        results += json.loads(stdout.strip().splitlines()[-1])

    same = [r["text"] for r in results if r["order"] == "O1001"]
    assert len(same) == 2 * HOST_THREADS
    issued = [t for t in same if REPLAY_NOTE not in t]
    assert len(issued) == 1 and issued[0].startswith("Refund #"), same  # one refund ...
    assert all(t == f"{issued[0]} {REPLAY_NOTE}" for t in same if t is not issued[0])  # ... all see it

    others = [r["text"] for r in results if r["order"] == "O1006"]
    assert sum(t.startswith("Refund #") for t in others) == 1, others  # one request won
    assert all("already has a refund" in t for t in others if not t.startswith("Refund #")), others

    import psycopg

    with psycopg.connect(state_uri, options="-c search_path=customer_service") as pg:
        rows = pg.execute("SELECT order_id, COUNT(*) FROM refunds WHERE idempotency_key IS NOT NULL "
                          "GROUP BY order_id ORDER BY order_id").fetchall()
        ledger = pg.execute("SELECT COUNT(*) FROM executed_actions").fetchone()
    assert rows == [("O1001", 1), ("O1006", 1)]
    assert ledger == (2,)
    # the hosts' own data dirs hold no customer database: nothing was refunded locally
    assert not list(tmp_path.glob("data-*/customer_service.sqlite"))


@pytest.mark.postgres
def test_an_approval_recorded_on_one_host_is_reused_on_another(tmp_path: Path, state_uri: str) -> None:
    host_a = ToolContext.from_settings(load_settings(data_dir=tmp_path / "a", state_uri=state_uri), "t1")
    host_b = ToolContext.from_settings(load_settings(data_dir=tmp_path / "b", state_uri=state_uri), "t1")
    identity = {"order_id": "O1001", "amount_cents": 2000}
    record_approvals(host_a, [ApprovalWrite("act-1", "issue_refund", identity, None, "", "ns-a")])
    record_approvals(host_a, [ApprovalWrite("act-1", "issue_refund", identity, "approved", "ok", "ns-a")])
    # a later, different decision from another host does not overwrite the first
    record_approvals(host_b, [ApprovalWrite("act-1", "issue_refund", identity, "rejected", "no", "ns-b")])
    seen = ledger_approvals(host_b, ["act-1"])["act-1"]
    assert (seen.decision, seen.feedback, seen.asked_in) == ("approved", "ok", "ns-a")


@pytest.mark.postgres
async def test_the_result_cache_is_shared_by_hosts_with_state_uri(tmp_path: Path, state_uri: str) -> None:
    from agents import AgentRegistry

    spec = AgentRegistry.builtin().get("writer")
    task = {"id": "w", "instruction": "Write a haiku about caches."}

    async def key_on(settings: Any) -> str:
        tools = ToolContext.from_settings(settings, "t1")
        key, _ = await result_cache.lookup(settings, spec, tools, "g", task, "", "")
        assert key is not None
        return key

    shared_a = load_settings(data_dir=tmp_path / "a", state_uri=state_uri, model="test")
    shared_b = load_settings(data_dir=tmp_path / "b", state_uri=state_uri, model="test")
    local_b = load_settings(data_dir=tmp_path / "b", model="test")
    key = await key_on(shared_a)
    assert key == await key_on(shared_b) == await key_on(local_b)  # the key names no host
    await result_cache.store(shared_a, key, {"output": "cached on host a"})

    # host b, as a new process would: its own cache object on the same database
    del result_cache._caches[str(shared_b.state_uri)]  # the URI with its connect_timeout
    tools_b = ToolContext.from_settings(shared_b, "t2")
    _, hit = await result_cache.lookup(shared_b, spec, tools_b, "g", task, "", "")
    assert hit == {"output": "cached on host a"}
    _, miss = await result_cache.lookup(local_b, spec, tools_b, "g", task, "", "")
    assert miss is None  # without state_uri each host has its own SQLite cache
    # the first result stored stands (two hosts computing the same entry at once)
    await result_cache.store(shared_b, key, {"output": "from b"})
    _, again = await result_cache.lookup(shared_a, spec, tools_b, "g", task, "", "")
    assert again == {"output": "cached on host a"}


def test_workspaces_live_under_the_configured_root(tmp_path: Path) -> None:
    shared = ToolContext.from_settings(load_settings(data_dir=tmp_path / "a", workspace_root="ws"), "t1")
    assert shared.workspace == tmp_path / "ws" / "t1"  # relative to where settings were loaded
    local = ToolContext.from_settings(load_settings(data_dir=tmp_path / "a"), "t1")
    assert local.workspace == tmp_path / "a" / "workspaces" / "t1"
    assert local.customer_db_uri is None  # one host: the SQLite file in data_dir


BUILD = textwrap.dedent(
    '''
    import sys, time
    from pathlib import Path
    from tools.context import SAMPLE_KB_DIR
    from tools.knowledge_base import KnowledgeBase
    base, start_at = Path(sys.argv[1]), float(sys.argv[2])
    kb = KnowledgeBase(SAMPLE_KB_DIR, base)
    time.sleep(max(0.0, start_at - time.time()))
    print(len(kb.search("refund window damaged item")))
    '''
)


def test_processes_building_the_index_at_once_share_one_complete_index(tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    base = tmp_path / "data" / "kb_index.sqlite"
    start_at = time.time() + 3.0
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, str(script), str(base), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        assert int(stdout.strip()) > 0  # every process found passages
    files = sorted(p.name for p in base.parent.iterdir())
    assert len(files) == 1 and files[0].startswith("kb_index-"), files  # no temporary left
