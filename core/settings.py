"""Typed settings: one object for everything configurable.

Sources, lowest to highest precedence: built-in defaults, an optional
``orchestrator.toml`` (or the file named by ``ORCHESTRATOR_CONFIG``),
``ORCHESTRATOR_*`` environment variables (nested with ``__``), and finally
explicit overrides (CLI flags, or a run's ``configurable`` on the server).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "ORCHESTRATOR_CONFIG"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""The URI schemes ``checkpoint_uri`` and ``state_uri`` accept."""
DEFAULT_CONFIG_FILE = "orchestrator.toml"

PATH_FIELDS = ("data_dir", "cache_dir", "knowledge_base_dir", "customer_db", "agents_file",
               "workspace_root", "plan_examples_file")
"""Settings that are file-system paths: made absolute when the settings are loaded."""

ROLES = ("supervisor", "researcher", "coder", "analyst", "writer", "reviewer", "support", "judge")
"""Model roles: the supervisor, each specialist agent and the eval judge."""


CLIENT_SETTABLE = (
    "model", "roles", "review", "limits", "budgets", "worker_selection",
    "adaptive_replanning", "verify_results", "cache_results", "action_scope",
)
"""What a server's clients may override by default (``Settings.client_settable``)."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    """How to reach one chat model."""

    provider: Literal["openai", "local", "test"] = "openai"
    """``openai``: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).
    ``local``: the embedded GGUF model served on loopback. ``test``: the deterministic test model."""
    model: str = ""
    """Model name sent to the endpoint; for ``local``, ``local``/``local-1.5b`` or a path to a GGUF file."""
    base_url: str | None = None
    """Endpoint URL; defaults to ``OPENAI_BASE_URL`` for ``openai``."""
    api_key: SecretStr | None = None
    """API key; defaults to ``OPENAI_API_KEY``. Never written to state, checkpoints or reports."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; 0 keeps runs as repeatable as the backend allows."""
    max_tokens: int | None = Field(default=1024, gt=0)
    """Cap on completion tokens per call."""
    timeout_s: float = Field(default=300.0, gt=0)
    """Per-request timeout in seconds."""
    max_retries: int = Field(default=2, ge=0)
    """Client-level retries for transient HTTP errors."""
    tool_mode: Literal["auto", "native", "structured"] = "auto"
    """``native``: tool_choice over real tool calls; ``structured``: one forced action schema
    per step (what small local servers support). ``auto`` picks structured for ``local``."""
    context_window: int = Field(default=8192, gt=256)
    """Tokens the model accepts; worker prompts are budgeted to fit."""
    requests_per_second: float | None = Field(default=None, gt=0)
    """Rate limit for this endpoint (langchain_core InMemoryRateLimiter); None = unlimited."""
    max_concurrent_calls: int = Field(default=4, gt=0)
    """Calls in flight at once against this endpoint."""
    price_in_per_1m: float = Field(default=0.0, ge=0)
    """USD per million prompt tokens (local and test models cost 0)."""
    price_out_per_1m: float = Field(default=0.0, ge=0)
    """USD per million completion tokens."""
    test_latency_s: float = Field(default=0.0, ge=0)
    """Test model only: simulated latency per call, in seconds."""


BUILTIN_MODELS: dict[str, ModelConfig] = {
    # max_tokens 512: small local models sometimes loop inside a JSON string until the cap;
    # a step or answer never needs more, and each runaway costs minutes on a CPU.
    # max_concurrent_calls: the server decodes local.n_parallel requests together (4 slots).
    "local": ModelConfig(provider="local", model="local", context_window=8192, max_tokens=512),
    "local-1.5b": ModelConfig(
        provider="local", model="local-1.5b", context_window=8192, max_tokens=512
    ),
    "test": ModelConfig(provider="test", model="test", context_window=32768),
}

LOCAL_TIERS: tuple[str, ...] = ("local", "local-1.5b")
"""The embedded default's model tiers, cheapest first (``Settings.tiers`` unset)."""

LOCAL_ROLE_TIERS: dict[str, str] = {
    "supervisor": "local-1.5b", "support": "local-1.5b", "coder": "local-1.5b",
}
"""Roles that use a stronger built-in model when ``model`` is the embedded default
(``local``) and ``roles`` does not name one — where the 0.5B was measured wrong
(docs/benchmarks.md §7–9): the supervisor's plans are right on 22 of 24 unseen goals with the
1.5B and 16 of 24 with the 0.5B; the support flow's "already returned?" question was right on
half of the requests with the 0.5B, and a refund the records allowed was not issued; the
coder passed HumanEval's tests on 18 of 24 problems as one completion of the 1.5B, 11 of 24
on the 0.5B, and every software example of the dev split with the 1.5B as its first tier.
The other roles (researcher, writer, analyst, reviewer) stay on the 0.5B: their steps are
retrieval, templated prose and SQL that code checks."""


class ReviewSettings(_Strict):
    """Where a run pauses for a human."""

    plan: bool = True
    """Pause after planning: approve, edit or reject the plan."""
    high_risk_tools: bool = True
    """Pause before a tool with side effects (refund, ticket update) runs."""
    final_answer: bool = False
    """Pause on the synthesized answer before the run completes."""
    failures: bool = False
    """Pause when a task has failed every automatic recovery: retry, edit, skip or abort."""


class Limits(_Strict):
    """Hard caps that keep a run bounded."""

    max_concurrency: int = Field(default=4, gt=0)
    """Tasks executing in parallel within one run."""
    max_tasks: int = Field(default=12, gt=0)
    """Tasks a plan may hold."""
    max_rounds: int = Field(default=10, gt=0)
    """Dispatch rounds before the run stops."""
    max_plan_revisions: int = Field(default=3, ge=0)
    """Revisions of the plan after it was first approved."""
    planner_attempts: int = Field(default=3, gt=0)
    """Attempts to get a valid plan before falling back to a one-task plan."""
    max_agent_steps: int = Field(default=6, gt=0)
    """Model/tool steps one worker may take for one task."""
    max_verification_attempts: int = Field(default=2, ge=0)
    """Times a task is sent back after failing verification."""
    max_goal_chars: int = Field(default=8000, gt=0)
    """Longest goal accepted."""


class Budgets(_Strict):
    """Enforced budgets; ``None`` means unlimited."""

    run_tokens: int | None = Field(default=None, gt=0)
    """Total tokens one run may spend."""
    run_cost_usd: float | None = Field(default=None, gt=0)
    """Total cost one run may spend."""
    run_wall_s: float | None = Field(default=None, gt=0)
    """Wall time one run may take."""
    task_tokens: int | None = Field(default=None, gt=0)
    """Tokens one task may spend."""
    task_wall_s: float | None = Field(default=None, gt=0)
    """Wall time one task attempt may take."""


class SandboxSettings(_Strict):
    """The Python sandbox (run_python, code evals)."""

    allow_unisolated: bool = False
    """Run code with only resource limits and the audit hook when neither user namespaces
    nor bubblewrap are available. Off (the default): such code is refused, not run. Turning
    it on lets sandboxed code read and write whatever your user can."""


class ServerSettings(_Strict):
    """How the LangGraph server (``make serve``) treats the clients that reach it."""

    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names, besides loopback (``localhost``, ``127.0.0.1``, ``::1``), the server
    answers to. A request naming any other ``Host`` is refused: a web page whose DNS name
    is re-pointed at 127.0.0.1 (DNS rebinding) would otherwise reach the server as its own
    origin."""
    clients_may_relax_review: bool = False
    """Let a client's run turn off a review point this configuration turns on
    (``review.plan = false``). Off (the default): a client may add pauses, never remove one."""


class LocalServerSettings(_Strict):
    """The embedded llama.cpp server, shared by every run of the machine. Each slot has a
    context of the model's ``context_window`` tokens, so any call fits any slot."""

    n_parallel: int | None = Field(default=None, gt=0, le=64)
    """Requests decoded together (slots); None = ``limits.max_concurrency``."""
    cache_ram_mib: int = Field(default=512, ge=0)
    """Cap (MiB) on the RAM prompt cache that keeps evicted slots' prefixes; 0 = none."""
    n_threads: int | None = Field(default=None, gt=0)
    """CPU threads; None = the CPUs this process may use."""




class Settings(BaseSettings):
    """Everything configurable about the orchestrator."""

    model_config = SettingsConfigDict(
        env_prefix="ORCHESTRATOR_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    model: str = "local"
    """Default model for every role: a name from ``models`` or a built-in (local, local-1.5b, test)."""
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    """Named model configurations, added to the built-ins."""
    roles: dict[str, str] = Field(default_factory=dict)
    """Role -> model name, overriding ``model`` for that role."""
    tiers: list[str] | None = None
    """Model names from cheapest to strongest. A task that failed on one of them (and on
    the adjusted retry) runs again on the next, before escalation hands it to another
    agent (graph/escalation.py). A task starts on its role's model (``roles``, ``model``).
    Unset = on the embedded default ``local`` then ``local-1.5b``, otherwise no ladder;
    ``[]`` turns the stronger-model step off."""
    data_dir: Path = Path(".orchestrator")
    """Where checkpoints, the result cache and run workspaces live."""
    local: LocalServerSettings = Field(default_factory=LocalServerSettings)
    """The embedded model's server: slots, prompt-cache cap, threads."""
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "agent-orchestrator"
    )
    """Where the assembled GGUF model and the local server's state live."""
    checkpoint_uri: str | None = None
    """``postgresql://…`` to checkpoint in PostgreSQL; unset = SQLite in ``data_dir``."""
    knowledge_base_dir: Path | None = None
    """Documents (Markdown, text) the knowledge-base tool indexes; unset = the shipped sample corpus."""
    customer_db: Path | None = None
    """Customer-service SQLite database; unset = a copy of the shipped sample in ``data_dir``."""
    # -- state shared by several hosts (docs/scale-out.md) --
    state_uri: str | None = None
    """``postgresql://…``: keep the state every worker must see in this PostgreSQL database —
    the customer database with its action ledger (refunds, ticket notes, recorded outcomes,
    approvals; schema ``customer_service``) and the result cache (table
    ``orchestrator_result_cache``); it takes the place of ``customer_db``. Unset = SQLite
    files in ``data_dir``, which is right for one host. Not derived from ``checkpoint_uri``: moving a store changes which ledger
    answers "did this action run?", so it is switched on explicitly, on every host at once;
    a side-effecting action recorded in one store is unknown to the other."""
    workspace_root: Path | None = None
    """Where per-thread workspaces (``<root>/<thread_id>``) live; unset = ``data_dir/workspaces``.
    With several hosts, a directory on storage they all mount (NFS, EFS), so a run resumed
    on another host finds the files the first one wrote."""

    db_connect_timeout_s: int = Field(default=5, ge=1, le=300)
    """Seconds to wait for PostgreSQL (``checkpoint_uri``, ``state_uri``) to answer a new
    connection before giving up with a one-line error: a refused port fails at once, a host
    that never answers after this long. Added to each URI as libpq's ``connect_timeout``
    unless the URI gives its own."""

    @field_validator("checkpoint_uri", "state_uri")
    @classmethod
    def _postgres_uri(cls, v: str | None) -> str | None:
        # Anything else would be taken for a SQLite file name (``mysql://…`` made a directory).
        if v and not v.startswith(POSTGRES_SCHEMES):
            scheme = v.split("://", 1)[0] + "://" if "://" in v else "a plain path"
            raise ValueError(
                f"{scheme} is not supported; the supported schemes are "
                f"{' and '.join(POSTGRES_SCHEMES)} (unset = SQLite in data_dir)")
        return v or None

    @model_validator(mode="after")
    def _connect_timeouts(self) -> Settings:
        for name in ("checkpoint_uri", "state_uri"):
            uri = getattr(self, name)
            if uri and "connect_timeout=" not in uri:
                sep = "&" if "?" in uri else "?"
                object.__setattr__(self, name, f"{uri}{sep}connect_timeout={self.db_connect_timeout_s}")
        return self

    agents_file: Path | None = None
    """TOML file of agent definitions that add to or replace the built-in specialists."""
    worker_selection: Literal["as_planned", "best_match", "fallback", "checked"] = "fallback"
    """How a task's agent is chosen: ``as_planned``; ``best_match`` (best match of the task's
    words with the agents' descriptions); ``fallback`` (as planned, or a capable alternative
    when the planned agent is unknown or already failed the task); ``checked`` (fallback, and
    the best word match when the planned agent matches the task's words less than half as
    well — word overlap overriding the planner, so only for planners known to misroute)."""
    plan_examples_file: Path | None = None
    """A JSONL file of your own planning examples (``{"goal": …, "needs": [agents…]}`` or
    ``{"goal": …, "tasks": [...]}`` per line), added to the plan library the planner learns
    from (``graph/planning/library.py``)."""
    adaptive_replanning: bool = True
    """Let the supervisor revise the remaining plan after each round of results."""
    verify_results: bool = True
    """Have the reviewer check results that state acceptance criteria."""
    cache_results: bool = True
    """Reuse a task's result when agent, instruction and inputs match an earlier run (never
    for agents that can call a high-risk tool)."""
    action_scope: str = Field(default="", max_length=64)
    """Label mixed into every high-risk action's idempotency key. Unchanged (the default),
    a retry, resume or fork reuses the recorded outcome of an action that already ran; a
    fork given a new label (``--set '{"run_settings": {"action_scope": "again-1"}}'``)
    acts again, asking for approval again."""
    mcp_servers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """MCP servers whose tools agents may use (langchain-mcp-adapters connection dicts)."""
    client_settable: list[str] = Field(default_factory=lambda: list(CLIENT_SETTABLE))
    """Top-level settings a LangGraph server's clients may override per run (the ``context``
    of ``runs.create``, or a thread's stored ``run_settings``). The rest — paths, database
    URIs, model endpoints and keys, MCP servers, the sandbox — stay the operator's: a client
    that could set them could read files, reach other hosts or run commands on the server.
    Only the server entry points enforce it; the CLI and in-process runs are the operator."""
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    """The LangGraph server's guards (operator-only: never client-settable)."""
    limits: Limits = Field(default_factory=Limits)
    budgets: Budgets = Field(default_factory=Budgets)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    _root: Path | None = PrivateAttr(default=None)
    """The directory relative paths were resolved against (the working directory at load)."""

    @field_validator(*PATH_FIELDS)
    @classmethod
    def _absolute_path(cls, v: Path | None) -> Path | None:
        """Paths are absolute from the moment settings exist: resolving a relative one later
        calls ``os.getcwd``, a blocking call inside the server's event loop. Settings are
        loaded off the loop; overrides resolve against the directory their base was loaded in."""
        if v is None:
            return None
        v = v.expanduser()
        if v.is_absolute():
            return v
        root = _path_root.get()
        return (root if root is not None else Path.cwd()) / v

    @field_validator("client_settable")
    @classmethod
    def _settable_names(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}")
        if "server" in v:  # a client that could set it could lift the guards it is checked by
            raise ValueError("'server' is the operator's alone and cannot be client-settable")
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; roles are {list(ROLES)}")
        return v

    @model_validator(mode="after")
    def _known_models(self) -> Settings:
        known = set(BUILTIN_MODELS) | set(self.models)
        named = [("model", self.model), *((f"roles.{r}", n) for r, n in self.roles.items()),
                 *((f"tiers[{i}]", n) for i, n in enumerate(self.tiers or ()))]
        for role, name in named:
            if name not in known:
                raise ValueError(f"{role}: unknown model {name!r}; known: {sorted(known)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _values_only.get():  # ``with_overrides``: the values already hold file and env
            return (init_settings,)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # -- derived views -------------------------------------------------------------

    def all_models(self) -> dict[str, ModelConfig]:
        """Built-in models overlaid with the configured ones."""
        return {**BUILTIN_MODELS, **self.models}

    def model_name_for(self, role: str) -> str:
        """The model name a role uses: ``roles[role]``; else, on the embedded default, the
        role's built-in tier (``LOCAL_ROLE_TIERS``); else ``model``."""
        if role in self.roles:
            return self.roles[role]
        if self.model == "local" and "local" not in self.models:
            return LOCAL_ROLE_TIERS.get(role, self.model)
        return self.model

    def tier_ladder(self) -> list[str]:
        """The model tiers, cheapest first (``tiers``, or the embedded default's)."""
        if self.tiers is not None:
            return list(self.tiers)
        if self.model == "local" and "local" not in self.models:
            return list(LOCAL_TIERS)
        return []

    def stronger_model(self, current: str) -> str | None:
        """The tier after model ``current``; None at the top or off the ladder."""
        ladder = self.tier_ladder()
        if current not in ladder:
            return None
        at = ladder.index(current)
        return ladder[at + 1] if at + 1 < len(ladder) else None

    def model_for(self, role: str) -> ModelConfig:
        """The model configuration a role uses; raises ConfigError for an unknown name."""
        name = self.model_name_for(role)
        models = self.all_models()
        if name not in models:
            key = f"roles.{role}" if role in self.roles else "model"
            raise ConfigError(f"{key}: unknown model {name!r}; known: {sorted(models)}")
        return models[name]

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """A copy with nested overrides applied and validated (CLI flags, run configurable)."""
        merged = _deep_merge(self.model_dump(mode="python"), overrides)
        token = _path_root.set(self._root)
        try:
            settings = load_settings(_file=False, **merged)
        finally:
            _path_root.reset(token)
        settings._root = self._root
        return settings

    otel_endpoint: str | None = None
    """OpenTelemetry: the OTLP/HTTP collector to export runs, tasks, model and tool calls to as
    spans (e.g. ``http://127.0.0.1:6006`` for Phoenix; ``/v1/traces`` is appended). Off when
    unset, unless the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is
    set; docs/observability.md. Operator-only: never client-settable."""


_path_root: ContextVar[Path | None] = ContextVar("orchestrator_path_root", default=None)
"""While applying overrides: the directory their relative paths are resolved against."""
_values_only: ContextVar[bool] = ContextVar("orchestrator_values_only", default=False)
"""Set while validating values that already include file and environment (no I/O then)."""
_config_file: ContextVar[Path | None] = ContextVar("orchestrator_config_file", default=None)
"""The config file a caller named explicitly (``--config``), for the settings being built."""


def _config_path() -> Path | None:
    named = _config_file.get()
    if named is not None:
        if not named.is_file():
            raise ConfigError(f"--config: no such file {str(named)!r}")
        return named
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}: no such file {explicit!r}")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        msg = msg.removeprefix("Value error, ")
        key = ".".join(str(p) for p in e["loc"])
        lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
    return "\n".join(lines)


def load_settings(
    _file: bool = True, *, config_file: Path | str | None = None, **overrides: Any
) -> Settings:
    """Load settings from file, environment and overrides; raise ConfigError naming bad keys.

    ``config_file`` names the TOML file explicitly (else ``ORCHESTRATOR_CONFIG``, else
    ``orchestrator.toml`` in the working directory)."""
    token = _config_file.set(Path(config_file) if config_file is not None else None)
    try:
        return _load(_file, overrides)
    finally:
        _config_file.reset(token)


def _load(_file: bool, overrides: dict[str, Any]) -> Settings:
    source = str(_config_path() or "settings") if _file else "settings"
    try:
        if not _file:
            # Overrides already contain the file/env values; do not read them twice (and
            # touch no file: this runs inside graph nodes, on the event loop).
            token = _values_only.set(True)
            try:
                return Settings.model_validate(overrides)
            finally:
                _values_only.reset(token)
        root = Path.cwd()
        root_token = _path_root.set(root)
        try:
            settings = Settings(**overrides)
        finally:
            _path_root.reset(root_token)
        settings._root = root
        return settings
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None
    except ValueError as err:  # TOML syntax errors and friends
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: {err}") from None
