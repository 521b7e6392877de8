"""The OpenAI tool form of a pydantic output type, built once per type.

Building a pydantic JSON schema is the most expensive pure-Python step of a structured call,
and every specialist step used to rebuild the same one several times (prompt budget, the
structured call, the model's binding). The schema of a class never changes after its
definition, so it is cached per type; each caller gets its own copy to change freely.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel


@cache
def _tool_json(schema: type[BaseModel]) -> str:
    return json.dumps(convert_to_openai_tool(schema))


def openai_tool(schema: type[BaseModel]) -> dict[str, Any]:
    """``convert_to_openai_tool(schema)``, computed once per ``schema`` (a fresh copy each call)."""
    tool: dict[str, Any] = json.loads(_tool_json(schema))
    return tool


def as_openai_tool(tool: Any) -> dict[str, Any]:
    """``convert_to_openai_tool(tool)``, cached when ``tool`` is a pydantic model class."""
    if isinstance(tool, type) and issubclass(tool, BaseModel):
        return openai_tool(tool)
    return convert_to_openai_tool(tool)
