"""The eval suite runs offline: no LangSmith tracing or test tracking unless asked for."""

from __future__ import annotations

import os

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")
