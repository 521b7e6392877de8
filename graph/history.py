"""Rollback and forking: branch a thread at any checkpoint, optionally editing its state.

A fork is a copy of the checkpoint made the thread's newest, a sibling of the original
(the same parent, as LangGraph's own ``__copy__`` does: the blackboard is a delta channel,
rebuilt from the writes of the checkpoint's ancestors). The copy keeps the channel values — so the run continues exactly where it stood,
including steps chosen by ``Command(goto=…)`` or pending ``Send``s — but none of the old
checkpoint's pending writes, so an interrupt answered on the old branch is asked again.
(``update_state`` is not used: it replays the writes as if a node had run, which loses a
goto-chosen next step.) The old branch stays intact in the history.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, copy_checkpoint
from langgraph.checkpoint.base.id import uuid6

DELTA_KEYS = frozenset({"results"})
"""State keys stored as deltas (see graph/state.py): not editable at a fork."""


class CheckpointNotFound(LookupError):
    """No such checkpoint in the thread."""


class ForkEditError(ValueError):
    """A state edit the fork cannot apply."""


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
    for key, value in (values or {}).items():
        if key in DELTA_KEYS:
            raise ForkEditError(f"{key!r} is rebuilt from the run's history and cannot be set at a fork")
        checkpoint["channel_values"][key] = value
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
