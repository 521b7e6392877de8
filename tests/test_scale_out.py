"""The supervisor on Aegra: two instances on one PostgreSQL + Redis, driven through langgraph_sdk.

- 40 runs submitted across both instances at once all complete, each exactly once, and no
  thread sees another's state.
- A plan-review interrupt raised on one instance is answered through the other, after the
  first one is gone; history and a fork work through it too.
- kill -9 of the instance holding a run in the middle of a fan-out: the other instance takes
  the run over when the lease expires, finished tasks (the refund among them) do not run
  again, the refund exists once, and the client sees the run succeed.
- The same with two "hosts" (a data_dir per instance, the customer database and ledger in
  PostgreSQL through ``state_uri``), killed inside the worst window: the refund committed,
  the step that made it not yet checkpointed. The other host runs the tool step again and
  gets the recorded outcome from the shared ledger: one refund.

Skipped, with the reason, where PostgreSQL, Redis or an interpreter with aegra-api is absent
(``tests/aegra_harness.py``). The model is the project's test model, scripted per task and
with simulated latency (``tests/aegra_scripted.py``); the graph is the served one.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.aegra_harness import REPO, Cluster, Instance, context, unavailable

pytestmark = [pytest.mark.scale_out, pytest.mark.postgres]

ASSISTANT = "orchestrator"
RUNS = 40
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Cluster(tmp_path_factory.mktemp("aegra"), jobs_per_instance=10, latency_s=0.2) as c:
        c.start("a", "b")
        yield c


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two instances as on two machines: own data dirs, shared state in PostgreSQL; an
    instance stalls for a minute right after it issues a refund (the crash window)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Cluster(tmp_path_factory.mktemp("aegra-hosts"), jobs_per_instance=10, latency_s=0.2,
                 separate_hosts=True, hold_after_refund_s=60.0) as c:
        c.start("a", "b")
        yield c


def up(cluster: Cluster, name: str) -> Instance:
    """Instance ``name``, restarted if an earlier test stopped it."""
    instance = cluster.instances[name]
    return instance if instance.alive() else cluster.start(name)[0]


def client(instance: Instance) -> Any:
    from langgraph_sdk import get_client

    return get_client(url=instance.url, timeout=RUN_TIMEOUT_S)


def refunds(cluster: Cluster, order: str = "O1001") -> int:
    if cluster.separate_hosts:
        return shared_refunds(cluster, order)
    path = cluster.data_dir / "customer_service.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:  # never creates the file
        try:
            return int(conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id=?", (order,)).fetchone()[0])
        except sqlite3.OperationalError:  # the sample database is still being written
            return 0


def shared_refunds(cluster: Cluster, order: str = "O1001") -> int:
    """Refunds issued by agents on ``order`` in the cluster's shared customer database."""
    import psycopg

    with psycopg.connect(cluster.database_url, options="-c search_path=customer_service") as conn:
        try:
            row = conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id=%s "
                               "AND idempotency_key IS NOT NULL", (order,)).fetchone()
        except psycopg.errors.UndefinedTable:  # not created yet: no refund
            return 0
    return int(row[0]) if row else 0


def test_aegra_json_serves_what_langgraph_json_serves() -> None:
    aegra = json.loads((REPO / "aegra.json").read_text())
    langgraph = json.loads((REPO / "langgraph.json").read_text())
    # langgraph.json may describe a graph ({"path", "description"}: the A2A agent card); the
    # path is what must match.
    paths = {k: v["path"] if isinstance(v, dict) else v for k, v in langgraph["graphs"].items()}
    assert aegra["graphs"] == paths
    assert aegra["graphs"]["orchestrator"] == "./orchestrator/server.py:graph"
    assert aegra["dependencies"] == langgraph["dependencies"]
    # Aegra brings its own PostgreSQL checkpointer; every step is written before the next.
    assert aegra["checkpointer"] == {"durability": "sync"}


async def test_forty_runs_across_two_instances_complete_once_each(cluster: Cluster) -> None:
    a, b = up(cluster, "a"), up(cluster, "b")
    clients = [client(a), client(b)]
    goals = {f"g{i}": f"Report part {i} [[goal:g{i}]] [[plan:fanout]]" for i in range(RUNS)}

    async def submit(i: int, key: str) -> tuple[str, str, str]:
        api = clients[i % 2]
        thread = await api.threads.create(metadata={"goal_key": key})
        run = await api.runs.create(thread["thread_id"], ASSISTANT, input={"goal": goals[key]},
                                    context=context())
        return key, thread["thread_id"], run["run_id"]

    started = time.monotonic()
    submitted = await asyncio.gather(*(submit(i, key) for i, key in enumerate(goals)))
    # Each run is awaited through the instance that did NOT take it.
    async with asyncio.timeout(RUN_TIMEOUT_S):
        await asyncio.gather(*(clients[(i + 1) % 2].runs.join(t, r) for i, (_, t, r) in enumerate(submitted)))
    elapsed = time.monotonic() - started
    print(f"\n{RUNS} runs on 2 instances: {elapsed:.1f} s ({RUNS / elapsed:.2f} runs/s)")

    for key, thread_id, run_id in submitted:
        api = clients[0]
        assert (await api.runs.get(thread_id, run_id))["status"] == "success"
        assert [r["run_id"] for r in await api.runs.list(thread_id)] == [run_id]
        values = (await api.threads.get_state(thread_id))["values"]
        assert values["goal"] == goals[key]  # no leakage: the thread's own goal and results
        assert values["status"] == "completed"
        assert {k: r["status"] for k, r in values["results"].items()} == dict.fromkeys("abcd", "done")
        # The answer is assembled from the thread's own task records (graph/synthesis.py).
        assert all(f"result-{k}" in values["answer"] for k in "abcd"), values["answer"]

    calls = cluster.calls()
    plans = Counter(marker for _, kind, marker in calls if kind == "plan")
    assert {key: plans[key] for key in goals} == dict.fromkeys(goals, 1), "a run was planned twice"
    steps = Counter(marker for _, kind, marker in calls if kind == "step")
    # Every task of every thread took exactly one model step (a writer answers at once).
    assert {f"{key}/{t}": steps[f"{key}/{t}"] for key in goals for t in "abcd"} == {
        f"{key}/{t}": 1 for key in goals for t in "abcd"}
    by_pid = Counter(pid for pid, kind, _ in calls if kind == "plan")
    assert set(by_pid) >= {a.pid, b.pid}, f"one instance ran every run: {by_pid}"
    ours = {r for _, _, r in submitted}
    rows = [row for row in cluster.runs() if row["run_id"] in ours]
    assert len(rows) == RUNS and all(row["status"] == "success" and row["retries"] == 0 for row in rows)


async def test_plan_review_raised_on_one_instance_is_resumed_through_the_other(cluster: Cluster) -> None:
    a, b = up(cluster, "a"), up(cluster, "b")
    before = len(cluster.calls())
    api_a = client(a)
    thread = await api_a.threads.create()
    thread_id = thread["thread_id"]
    run = await api_a.runs.create(thread_id, ASSISTANT, input={"goal": "Review me [[goal:rev]] [[plan:fanout]]"},
                                  context=context(review={"plan": True}))
    await api_a.runs.join(thread_id, run["run_id"])
    state = await api_a.threads.get_state(thread_id)
    [pending] = state["interrupts"]
    assert pending["value"]["type"] == "plan_review" and state["next"] == ["review_plan"]

    # The instance whose worker raised the interrupt goes away; the other one answers it.
    [raised_by] = {pid for pid, kind, _ in cluster.calls()[before:] if kind == "plan"}
    gone, other = (a, b) if raised_by == a.pid else (b, a)
    gone.stop()
    api = client(other)
    resumed = await api.runs.create(thread_id, ASSISTANT, command={"resume": {pending["id"]: {"action": "approve"}}})
    await api.runs.join(thread_id, resumed["run_id"])
    assert (await api.runs.get(thread_id, resumed["run_id"]))["status"] == "success"
    values = (await api.threads.get_state(thread_id))["values"]
    assert values["status"] == "completed"
    assert values["run_settings"]["review"]["plan"] is True  # the thread remembered its context
    assert {pid for pid, kind, _ in cluster.calls()[before:] if kind == "step"} == {other.pid}

    # History and a fork, through the surviving instance.
    history = await api.threads.get_history(thread_id, limit=200)
    approved = next(h for h in reversed(history) if h["next"] == ["dispatch"])
    fork = await api.runs.create(thread_id, ASSISTANT, input=None,
                                 checkpoint_id=approved["checkpoint"]["checkpoint_id"])
    await api.runs.join(thread_id, fork["run_id"])
    assert (await api.runs.get(thread_id, fork["run_id"]))["status"] == "success"
    assert (await api.threads.get_state(thread_id))["values"]["status"] == "completed"
    assert len(await api.threads.get_history(thread_id, limit=500)) > len(history)
    up(cluster, gone.name)


async def _done_in_checkpoint(cluster: Cluster, thread_id: str) -> set[str]:
    """Tasks whose ``done`` record is written to the supervisor's checkpoint (pending writes
    of the superstep in progress included): what a resume will not run again."""
    import psycopg
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = JsonPlusSerializer()
    async with await psycopg.AsyncConnection.connect(cluster.database_url) as conn:
        rows = await (await conn.execute(
            "SELECT channel, type, blob FROM checkpoint_writes WHERE thread_id=%s "
            "AND channel IN ('results', '__return__')", (thread_id,),
        )).fetchall()
    done: set[str] = set()
    for channel, kind, blob in rows:
        value = serde.loads_typed((kind, bytes(blob)))
        if channel == "__return__":  # one task's saved result inside the dispatch step
            if isinstance(value, dict) and value.get("status") == "done":
                done.add(str((value.get("task") or {}).get("id")))
        else:  # the blackboard, written when a step ends
            done |= {task for task, record in value.items() if record.get("status") == "done"}
    return done


async def test_kill_9_mid_fan_out_resumes_on_the_other_instance(cluster: Cluster) -> None:
    a, b = up(cluster, "a"), up(cluster, "b")
    before = len(cluster.calls())
    api_a = client(a)
    thread = await api_a.threads.create()
    thread_id = thread["thread_id"]
    run = await api_a.runs.create(thread_id, ASSISTANT, input={"goal": "Refunds [[goal:kill]] [[plan:refund]]"},
                                  context=context())
    # Wait until the refund task's result is checkpointed while the slow lookups still run.
    async with asyncio.timeout(60):
        while "refund" not in await _done_in_checkpoint(cluster, thread_id):
            await asyncio.sleep(0.1)
    assert refunds(cluster) == 1
    [holder] = {pid for pid, kind, _ in cluster.calls()[before:]}
    victim, other = (a, b) if holder == a.pid else (b, a)
    assert not {"slow1", "slow2"} & await _done_in_checkpoint(cluster, thread_id), "the fan-out ended too early"
    victim.kill()
    killed_at = len(cluster.calls())

    await _completes_on(other, thread_id, run["run_id"])

    after = cluster.calls()[killed_at:]
    assert {pid for pid, _, _ in after} == {other.pid}
    resumed = Counter(marker for _, kind, marker in after if kind == "step")
    assert "kill/refund" not in resumed, f"the finished refund task ran again: {resumed}"
    assert resumed["kill/slow1"] and resumed["kill/slow2"] and resumed["kill/sum"]
    assert not [m for _, kind, m in after if kind == "plan"], "the run was planned again"
    assert refunds(cluster) == 1
    [row] = [r for r in cluster.runs() if r["run_id"] == run["run_id"]]
    assert row["retries"] == 1 and row["status"] == "success"
    up(cluster, victim.name)


async def test_kill_9_between_refund_and_checkpoint_on_separate_hosts_refunds_once(hosts: Cluster) -> None:
    a, b = up(hosts, "a"), up(hosts, "b")
    before = len(hosts.calls())
    api_a = client(a)
    thread_id = (await api_a.threads.create())["thread_id"]
    run = await api_a.runs.create(thread_id, ASSISTANT, input={"goal": "Refunds [[goal:hosts]] [[plan:refund]]"},
                                  context=context())
    # The refund is committed in the shared database; its instance is stalled before the
    # tool step returns, so the support task's progress does not record it.
    async with asyncio.timeout(60):
        while not [c for c in hosts.calls()[before:] if c[1:] == ("tool", "issued")]:
            await asyncio.sleep(0.1)
    assert shared_refunds(hosts) == 1
    [holder] = {pid for pid, kind, _ in hosts.calls()[before:] if kind == "tool"}
    victim, other = (a, b) if holder == a.pid else (b, a)
    assert "refund" not in await _done_in_checkpoint(hosts, thread_id)
    victim.kill()
    killed_at = len(hosts.calls())

    await _completes_on(other, thread_id, run["run_id"])

    after = hosts.calls()[killed_at:]
    assert {pid for pid, _, _ in after} == {other.pid}
    # The other host ran the refund step again, and the shared ledger answered it.
    assert [m for _, kind, m in after if kind == "tool"] == ["replayed"], after
    assert shared_refunds(hosts) == 1
    for name in ("a", "b"):  # nothing went to a host's own SQLite customer database
        assert not (hosts.data_dir_of(name) / "customer_service.sqlite").exists()
    up(hosts, victim.name)


async def _completes_on(instance: Any, thread_id: str, run_id: str) -> None:
    """The killed instance's run completes on ``instance``, every task of the fan-out done."""
    api = client(instance)
    async with asyncio.timeout(RUN_TIMEOUT_S):
        await api.runs.join(thread_id, run_id)
    assert (await api.runs.get(thread_id, run_id))["status"] == "success"
    values = (await api.threads.get_state(thread_id))["values"]
    assert values["status"] == "completed"
    assert {k: r["status"] for k, r in values["results"].items()} == dict.fromkeys(
        ("refund", "slow1", "slow2", "sum"), "done")
