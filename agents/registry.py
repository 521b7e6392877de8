"""The specialist agents the supervisor can delegate to, and how a task's agent is chosen.

Built-in specialists live in ``agents/definitions.toml``; ``settings.agents_file`` (same
``[agents.NAME]`` tables) adds agents, overrides fields of existing ones, or removes them
with ``enabled = false``.
"""

from __future__ import annotations

import asyncio
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.settings import ROLES, ConfigError, Settings
from core.types import Task
from tools.registry import TOOL_NAMES

SelectionStrategy = Literal["as_planned", "best_match", "fallback", "checked"]

BUILTIN_FILE = Path(__file__).with_name("definitions.toml")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MCP_PREFIX = "mcp:"
"""``tools = ["mcp:<server>"]``: every tool of the server named in ``settings.mcp_servers``."""


CLEAR_MATCH = 2.0
"""A capability score that means a real match (about two uncommon shared terms)."""


class UnknownAgentError(LookupError):
    """A task or caller names an agent that is not registered."""


class NoAgentAvailableError(UnknownAgentError):
    """Every agent is excluded for a task (a subclass, so one ``except`` handles both)."""


class AgentSpec(BaseModel):
    """One specialist: what it can do (for the planner), its tools, model role and prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique agent name, lowercase, e.g. 'researcher'.")
    description: str = Field(min_length=1, description="Capabilities; the planner reads this.")
    tools: list[str] = Field(
        default_factory=list,
        description="Tool names from tools.registry, or 'mcp:<server>' for all the tools of "
        "an MCP server in settings.mcp_servers.",
    )
    model_role: str = Field(
        default="",
        description="Role in settings.ROLES whose model the agent uses; "
        "defaults to the agent's name if that is a role, else 'supervisor'.",
    )
    needed_when: str = Field(
        default="",
        description="A yes/no question about a goal whose answer 'yes' means the goal needs "
        "this agent; the planner asks the model it (empty: asked from the description).",
    )
    prompt: str = Field(min_length=1, description="The agent's system prompt (short, concrete).")
    flow: Literal["auto", "steps", "loop"] = Field(
        default="auto",
        description="How the agent works: 'steps' = its fixed sub-graph of short steps (every "
        "built-in agent has one); 'loop' = the tool-calling loop; 'auto' = steps when its "
        "model takes structured steps (small local models), else loop.",
    )
    enabled: bool = True

    @property
    def need_question(self) -> str:
        """The yes/no question the planner asks about a goal for this agent."""
        return self.needed_when or f"Does it need this specialist: {self.description}"

    @model_validator(mode="before")
    @classmethod
    def _default_role(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model_role"):
            name = data.get("name")
            # Custom agents share the supervisor's model unless they name a role.
            data = {**data, "model_role": name if name in ROLES else "supervisor"}
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "must be lowercase letters, digits, '_' or '-', starting with a letter"
            )
        return v

    @field_validator("model_role")
    @classmethod
    def _known_role(cls, v: str) -> str:
        if v not in ROLES:
            raise ValueError(f"unknown role {v!r}; roles are {list(ROLES)}")
        return v

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, v: list[str]) -> list[str]:
        # Whether an MCP server is configured depends on settings: checked at load time.
        unknown = [
            t
            for t in v
            if t not in TOOL_NAMES and not (t.startswith(MCP_PREFIX) and t[len(MCP_PREFIX) :])
        ]
        if unknown:
            raise ValueError(
                f"unknown tool(s) {unknown}; known tools: {sorted(TOOL_NAMES)} "
                f"or '{MCP_PREFIX}<server>'"
            )
        if len(set(v)) != len(v):
            raise ValueError("duplicate tool names")
        return v

    @property
    def builtin_tools(self) -> list[str]:
        """The built-in tool names (no ``mcp:`` entries)."""
        return [t for t in self.tools if not t.startswith(MCP_PREFIX)]

    @property
    def mcp_servers(self) -> list[str]:
        """The MCP server names whose tools the agent uses (from ``mcp:<server>`` entries)."""
        return [t[len(MCP_PREFIX) :] for t in self.tools if t.startswith(MCP_PREFIX)]


# -- loading ---------------------------------------------------------------------------


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"agents_file: no such file {str(path)!r}") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{label}: {err}") from None
    extra = sorted(set(data) - {"agents"})
    if extra:
        raise ConfigError(f"{label}: {extra[0]}: unknown key (expected [agents.NAME] tables)")
    agents = data.get("agents", {})
    if not isinstance(agents, dict) or not all(isinstance(v, dict) for v in agents.values()):
        raise ConfigError(f"{label}: agents: expected [agents.NAME] tables")
    return agents


def _apply(
    specs: dict[str, AgentSpec], tables: Mapping[str, dict[str, Any]], label: str
) -> dict[str, AgentSpec]:
    """Overlay ``tables`` on ``specs``: add new agents, override fields, drop disabled ones."""
    out = dict(specs)
    for name, table in tables.items():
        if "name" in table and table["name"] != name:
            raise ConfigError(f"{label}: agents.{name}.name: must match the table name {name!r}")
        # An existing agent is overridden field by field, so `enabled = false` or a new
        # `prompt` alone is a complete table.
        base = out[name].model_dump() if name in out else {}
        try:
            spec = AgentSpec.model_validate({**base, **table, "name": name})
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            key = f"agents.{name}" + (f".{loc}" if loc else "")
            msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise ConfigError(f"{label}: {key}: {msg}") from None
        if spec.enabled:
            out[name] = spec
        else:
            out.pop(name, None)
    return out


_BUILTIN_TABLES = _read_toml(BUILTIN_FILE, f"{BUILTIN_FILE} (built-in)")
# Parsed at import: reading files inside a running event loop is flagged by the dev server.
_BUILTINS = _apply({}, _BUILTIN_TABLES, f"{BUILTIN_FILE} (built-in)")
_file_cache: dict[tuple[str, int, int], AgentRegistry] = {}


# -- lexical capability matching ----------------------------------------------------------

_STOPWORDS = """a an and are as at be by can do does for from give how i if in into is it its
make me my need of on or our please should so than that the their them then these this those
to use using was we what when which who why will with you your all any each one two three
task result results answer"""
_STOP = frozenset(_STOPWORDS.split())  # words that say nothing about capabilities


def _stem(word: str) -> str:
    # Crude suffix stripping is enough to match "refunds"/"refund", "queries"/"query".
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def _terms(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z0-9]+", text.lower().replace("_", " "))
    return {_stem(w) for w in words if w not in _STOP}


class AgentRegistry:
    """The enabled agents, in definition order (built-ins first)."""

    def __init__(self, specs: Iterable[AgentSpec]) -> None:
        self._specs: dict[str, AgentSpec] = {s.name: s for s in specs if s.enabled}
        self._terms = {
            name: _terms(f"{s.name} {s.description} {' '.join(s.tools)}")
            for name, s in self._specs.items()
        }
        # Rare terms discriminate between agents; common ones ("data", "file") barely count.
        n = len(self._specs)
        self._idf: dict[str, float] = {}
        for terms in self._terms.values():
            for t in terms:
                self._idf[t] = self._idf.get(t, 0) + 1
        self._idf = {t: math.log(1 + n / df) for t, df in self._idf.items()}

    # -- construction -------------------------------------------------------------------

    @classmethod
    def builtin(cls) -> AgentRegistry:
        """Only the built-in specialists."""
        return cls(_BUILTINS.values())

    @classmethod
    def load(cls, settings: Settings) -> AgentRegistry:
        """Built-ins overlaid with ``settings.agents_file``; raises ConfigError naming the key.

        Reads the file (blocking I/O): inside a running event loop use :meth:`aload`.
        The result is cached per file path, modification time and size.
        """
        path = settings.agents_file
        if path is None:
            return cls.builtin()._check_mcp(settings, f"{BUILTIN_FILE} (built-in)")
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ConfigError(f"agents_file: no such file {str(path)!r}") from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        hit = _file_cache.get(key)
        if hit is None:
            label = str(path)
            hit = cls(_apply(_BUILTINS, _read_toml(path, label), label).values())
            if len(_file_cache) > 32:
                _file_cache.clear()
            _file_cache[key] = hit
        return hit._check_mcp(settings, str(path))

    @classmethod
    async def aload(cls, settings: Settings) -> AgentRegistry:
        """:meth:`load` without blocking the event loop."""
        if settings.agents_file is None:
            return cls.load(settings)  # no I/O
        return await asyncio.to_thread(cls.load, settings)

    def _check_mcp(self, settings: Settings, label: str) -> AgentRegistry:
        """``self``, if every ``mcp:<server>`` names a server in ``settings.mcp_servers``.

        Not part of the file cache: the same file may be loaded with other settings.
        """
        for spec in self._specs.values():
            for server in spec.mcp_servers:
                if server not in settings.mcp_servers:
                    known = ", ".join(sorted(settings.mcp_servers)) or "none configured"
                    raise ConfigError(
                        f"{label}: agents.{spec.name}.tools: unknown MCP server {server!r} "
                        f"in '{MCP_PREFIX}{server}'; known servers (mcp_servers): {known}"
                    )
        return self

    # -- lookup ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Agent names in definition order."""
        return list(self._specs)

    def specs(self) -> list[AgentSpec]:
        """Agent specs in definition order."""
        return list(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> AgentSpec:
        """The agent called ``name``; raises UnknownAgentError listing the known agents."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownAgentError(
                f"unknown agent {name!r}; known agents: {', '.join(self._specs)}"
            ) from None

    def catalogue(self) -> str:
        """One line per agent, for the planner prompt."""
        return "\n".join(
            f"- {s.name}: {s.description} (tools: {', '.join(s.tools) or 'none'})"
            for s in self._specs.values()
        )

    # -- selection ------------------------------------------------------------------------

    def score(self, text: str, name: str) -> float:
        """How well ``text`` matches agent ``name``'s capabilities (0 = no overlap)."""
        words = _terms(text)
        agent_terms = self._terms.get(name, set())
        bonus = 2.0 if name in words else 0.0  # "ask the analyst to …"
        return bonus + sum(self._idf[t] for t in words & agent_terms)

    def ranked(
        self, task: Task | Mapping[str, Any], exclude: Iterable[str] = ()
    ) -> list[AgentSpec]:
        """Agents not in ``exclude``, best capability match for the task first.

        Ties keep the planned agent first, then definition order, so ranking is deterministic.
        """
        t = _as_task(task)
        text = f"{t.instruction} {t.acceptance_criteria}"
        skip = set(exclude)
        order = {name: i for i, name in enumerate(self._specs)}
        candidates = [s for s in self._specs.values() if s.name not in skip]
        return sorted(
            candidates,
            key=lambda s: (-self.score(text, s.name), s.name != t.agent, order[s.name]),
        )

    def best_alternative(
        self, task: Task | Mapping[str, Any], exclude: Iterable[str] = ()
    ) -> AgentSpec:
        """The best-matching agent not in ``exclude`` (the planned agent competes too unless
        excluded); raises NoAgentAvailableError when every agent is excluded."""
        ranked = self.ranked(task, exclude)
        if not ranked:
            t = _as_task(task)
            raise NoAgentAvailableError(
                f"no agent left for task {t.id!r}: all of {sorted(set(exclude))} are excluded"
            )
        return ranked[0]

    def select(
        self,
        task: Task | Mapping[str, Any],
        strategy: SelectionStrategy,
        exclude: Iterable[str] = frozenset(),
    ) -> AgentSpec:
        """Choose the agent for ``task`` under ``settings.worker_selection``.

        ``as_planned``: the planned agent (UnknownAgentError if unknown; ``exclude`` ignored).
        ``best_match``: the best capability match among agents not in ``exclude``.
        ``fallback``: the planned agent unless it is unknown or in ``exclude`` (it already
        failed this task); then the best-matching other agent.
        ``checked``: ``fallback``, and also the best match when the planned agent plainly
        lacks the capability — it matches the task less than half as well as the best agent,
        which matches clearly. Small planners misroute; strong ones rarely trip this.
        """
        t = _as_task(task)
        if strategy == "checked":
            chosen = self.select(t, "fallback", exclude)
            best = self.best_alternative(t, set(exclude))
            text = f"{t.instruction} {t.acceptance_criteria}"
            best_score = self.score(text, best.name)
            if best_score >= CLEAR_MATCH and self.score(text, chosen.name) < best_score / 2:
                return best
            return chosen
        if strategy == "as_planned":
            return self.get(t.agent)
        if strategy == "best_match":
            return self.best_alternative(t, exclude)
        if strategy == "fallback":
            skip = set(exclude)
            if t.agent in self._specs and t.agent not in skip:
                return self._specs[t.agent]
            return self.best_alternative(t, skip | {t.agent})
        raise ValueError(f"unknown worker_selection strategy {strategy!r}")


def _as_task(task: Task | Mapping[str, Any]) -> Task:
    return task if isinstance(task, Task) else Task.model_validate(dict(task))
