"""Rollback and forking: branch a thread at any checkpoint, optionally editing its state.

A fork is a copy of the checkpoint made the thread's newest, a sibling of the original
(the same parent, as LangGraph's own ``__copy__`` does: the blackboard is a delta channel,
rebuilt from the writes of the checkpoint's ancestors). The copy keeps the channel values — so the run continues exactly where it stood,
including steps chosen by ``Command(goto=…)`` or pending ``Send``s — but none of the old
checkpoint's pending writes, so an interrupt answered on the old branch is asked again.
(``update_state`` is not used: it replays the writes as if a node had run, which loses a
goto-chosen next step.) The old branch stays intact in the history.

The world outside state is not forked: the workspace and the customer database are the
thread's, shared by every branch. A branch that replays past a recorded high-risk action
reuses its recorded outcome (the idempotency key is the same); it acts again only with a
new ``action_scope`` in its run settings. Review overrides (``--auto-approve``) are not
inherited: a fork drops the ``review`` overrides the thread stored (also from pending
task payloads) unless the edits give them again under ``run_settings``, and edits to
``run_settings`` are merged into the stored overrides rather than replacing them.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, copy_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.types import Send

DELTA_KEYS = frozenset({"results"})
"""State keys stored as deltas (see graph/state.py): not editable at a fork."""
RUN_SETTINGS = "run_settings"
NOT_INHERITED = ("review",)
"""Stored overrides a fork does not inherit unless its edits give them again."""
TASKS_CHANNEL = "__pregel_tasks"
"""Where a checkpoint keeps pending ``Send``s (their payloads carry the run settings)."""


class CheckpointNotFound(LookupError):
    """No such checkpoint in the thread."""


class ForkEditError(ValueError):
    """A state edit the fork cannot apply."""


def fork_overrides(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A fork's setting overrides: the stored ones without review overrides, then the
    overrides the fork gives (which may give review overrides again)."""
    kept = {k: v for k, v in stored.items() if k not in NOT_INHERITED}
    return {**kept, **given}


def _fork_send(item: Any, given: dict[str, Any]) -> Any:
    arg = getattr(item, "arg", None)
    if isinstance(item, Send) and isinstance(arg, dict) and isinstance(arg.get(RUN_SETTINGS), dict):
        return Send(item.node, {**arg, RUN_SETTINGS: fork_overrides(arg[RUN_SETTINGS], given)})
    return item


async def fork_checkpoint(
    saver: BaseCheckpointSaver, config: RunnableConfig, values: dict[str, Any] | None = None
) -> RunnableConfig:
    """Copy the checkpoint ``config`` points at into a new branch; return the new config."""
    found = await saver.aget_tuple(config)
    wanted = config["configurable"].get("checkpoint_id")
    if found is None or (wanted and found.config["configurable"]["checkpoint_id"] != wanted):
        raise CheckpointNotFound(f"no checkpoint {wanted!r} in thread {config['configurable'].get('thread_id')!r}")
    checkpoint = copy_checkpoint(found.checkpoint)
    checkpoint["id"] = str(uuid6(clock_seq=-1))
    changed: dict[str, Any] = {}
    edits = dict(values or {})
    for key in edits:
        if key in DELTA_KEYS:
            raise ForkEditError(f"{key!r} is rebuilt from the run's history and cannot be set at a fork")
    channels = checkpoint["channel_values"]
    given = edits.pop(RUN_SETTINGS, None)
    if given is not None and not isinstance(given, dict):
        raise ForkEditError(f"{RUN_SETTINGS!r} must be an object of setting overrides")
    stored = channels.get(RUN_SETTINGS)
    if isinstance(stored, dict) or given:
        edits[RUN_SETTINGS] = fork_overrides(stored if isinstance(stored, dict) else {}, given or {})
    sends = channels.get(TASKS_CHANNEL)
    if isinstance(sends, list):  # pending Sends carry the settings too
        forked = [_fork_send(s, given or {}) for s in sends]
        if forked != sends:  # a new version: a saver may keep blobs per channel version
            edits[TASKS_CHANNEL] = forked
    for key, value in edits.items():
        channels[key] = value
        checkpoint["channel_versions"][key] = saver.get_next_version(
            checkpoint["channel_versions"].get(key), None
        )
        changed[key] = checkpoint["channel_versions"][key]
    found_cfg = found.config["configurable"]
    metadata = {**found.metadata, "source": "fork", "forked_from": found_cfg["checkpoint_id"],
                "step": int(found.metadata.get("step", -1)) + 1}
    parent_id = ((found.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
    parent: RunnableConfig = {"configurable": {
        "thread_id": found_cfg["thread_id"], "checkpoint_ns": found_cfg.get("checkpoint_ns", ""),
        "checkpoint_id": parent_id,
    }}
    return await saver.aput(parent, checkpoint, metadata, dict(checkpoint["channel_versions"]))  # type: ignore[arg-type]
