"""The JavaScript SDK flow of ``tests/test_js_sdk.py`` against Aegra instead of ``langgraph dev``.

The same script (``tests/js/sdk_flow.mjs``: a streamed run, the plan review answered with an
HITL edit, tool approvals by id, history, a fork through ``updateState(asNode: "__copy__")``)
against two Aegra instances on PostgreSQL + Redis serving the unchanged graph: the script
talks to one instance while the runs may be executed by either. Skipped, with the reason,
where Node.js, PostgreSQL, Redis or the Aegra interpreter is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.aegra_harness import Cluster, unavailable
from tests.test_js_sdk import js_client, run_sdk_flow  # noqa: F401  (the installed SDK, per module)

pytestmark = [pytest.mark.scale_out, pytest.mark.postgres]


@pytest.fixture(scope="module")
def aegra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Cluster(tmp_path_factory.mktemp("aegra-js"), scripted=False) as cluster:
        cluster.start("a", "b")
        yield cluster


def test_js_sdk_flow_runs_against_aegra(js_client: Path, aegra: Cluster) -> None:  # noqa: F811
    out = run_sdk_flow(js_client, aegra.instances["a"].url)
    assert out["kinds"][0] == "plan_review" and out["plan_action"] == "plan"
    assert "planning" in out["events"] and "task_finished" in out["events"]
    assert out["tasks"] == [f"Issue a refund for order O-200{i} and update ticket T-20{i}." for i in range(1, 7)]
    assert out["status"] == "completed" and out["answer"].strip()
    assert out["tool_requests"] and set(out["kinds"][1:]) <= {"tool_approval"}
    assert out["history_length"] > 4
    assert out["fork_source"] == "fork" and out["fork_next"] == ["dispatch"]
