"""Where tools read and write: one immutable context per run.

Building a context does no I/O (it is cheap and safe to call inside the event loop);
directories and the sample customer database are created by the tools on first use,
in worker threads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tools.sandbox import SandboxLimits

if TYPE_CHECKING:
    from core.settings import Settings

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_KB_DIR = DATA_DIR / "knowledge_base"
"""The shipped sample corpus (Markdown) used when ``knowledge_base_dir`` is unset."""
CUSTOMER_SEED_SQL = DATA_DIR / "customer_service.sql"
"""SQL that builds the sample customer-service database."""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ToolContext:
    """Paths and limits the tools of one run work with."""

    workspace: Path
    """Per-run directory for read_file/write_file/list_files/run_python/query_data."""
    kb_dir: Path
    """Documents (.md, .txt) searched by search_knowledge_base."""
    kb_index: Path
    """SQLite FTS5 index of ``kb_dir`` (rebuilt incrementally)."""
    customer_db: Path
    """Customer-service SQLite database (unused when ``customer_db_uri`` is set)."""
    customer_db_uri: str | None = None
    """PostgreSQL URI of the customer database and its action ledger, shared by every host
    that uses it (``Settings.state_uri``); None: the SQLite file ``customer_db``."""
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    """Limits of run_python."""
    seed_customer_db: bool = True
    """Build ``customer_db`` from the shipped sample when it does not exist yet."""
    run_id: str = ""
    """The run (thread id) these tools serve: recorded beside every high-risk action."""

    @classmethod
    def from_settings(cls, settings: Settings, run_id: str) -> ToolContext:
        """Context for run ``run_id``: workspace ``<workspace_root>/<run_id>``
        (``data_dir/workspaces/<run_id>`` by default).

        ``kb_dir`` defaults to the shipped sample corpus; ``customer_db`` to a copy of the
        shipped sample at ``data_dir/customer_service.sqlite``, built on first use.
        """
        if not _RUN_ID.match(run_id) or ".." in run_id:
            raise ValueError(
                f"run_id {run_id!r} is not a safe directory name "
                "(letters, digits, '.', '_', '-'; at most 128 chars)"
            )
        data_dir = Path(settings.data_dir)
        return cls(
            workspace=Path(settings.workspace_root or data_dir / "workspaces") / run_id,
            kb_dir=Path(settings.knowledge_base_dir or SAMPLE_KB_DIR),
            kb_index=data_dir / "kb_index.sqlite",
            customer_db=Path(settings.customer_db or data_dir / "customer_service.sqlite"),
            seed_customer_db=settings.customer_db is None,
            customer_db_uri=settings.state_uri,
            run_id=run_id,
            sandbox=SandboxLimits(allow_unisolated=settings.sandbox.allow_unisolated),
        )

    def ensure_workspace(self) -> Path:
        """Create the workspace if missing; return its absolute, resolved path (blocking)."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        return self.workspace.resolve()
