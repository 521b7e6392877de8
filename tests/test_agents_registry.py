"""Agent registry: loading and overriding definitions, errors, worker selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import AgentRegistry, AgentSpec, NoAgentAvailableError, UnknownAgentError
from core.settings import ConfigError, Settings
from graph.state import Task

BUILTINS = ["researcher", "coder", "analyst", "writer", "reviewer", "support"]


def registry_from(tmp_path: Path, text: str) -> AgentRegistry:
    path = tmp_path / "agents.toml"
    path.write_text(text)
    return AgentRegistry.load(Settings(agents_file=path))


def test_builtins() -> None:
    reg = AgentRegistry.load(Settings())
    assert reg.names() == BUILTINS
    assert reg.get("support").tools[-2:] == ["issue_refund", "update_ticket"]
    assert reg.get("coder").model_role == "coder"
    lines = reg.catalogue().splitlines()
    assert len(lines) == len(BUILTINS)
    assert lines[0].startswith("- researcher: ") and "search_knowledge_base" in lines[0]


def test_file_adds_replaces_and_removes(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        """
[agents.translator]
description = "Translates text between languages."
prompt = "Translate the text."

[agents.researcher]
prompt = "Search, then answer briefly."

[agents.writer]
enabled = false

[agents.coder]
description = "Python only."
tools = ["run_python"]
prompt = "Code."
model_role = "analyst"
""",
    )
    assert reg.names() == ["researcher", "coder", "analyst", "reviewer", "support", "translator"]
    translator = reg.get("translator")
    assert translator.tools == [] and translator.model_role == "supervisor"
    researcher = reg.get("researcher")  # overridden field by field
    assert researcher.prompt == "Search, then answer briefly."
    assert researcher.tools == ["search_knowledge_base"] and researcher.model_role == "researcher"
    coder = reg.get("coder")
    assert (coder.tools, coder.model_role, coder.description) == (
        ["run_python"],
        "analyst",
        "Python only.",
    )
    with pytest.raises(UnknownAgentError, match="writer"):
        reg.get("writer")


def test_load_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text('[agents.writer]\nprompt = "One."\n')
    settings = Settings(agents_file=path)
    first = AgentRegistry.load(settings)
    assert AgentRegistry.load(settings) is first
    path.write_text('[agents.writer]\nprompt = "Two, longer."\n')
    assert AgentRegistry.load(settings).get("writer").prompt == "Two, longer."


async def test_aload(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text("[agents.writer]\nenabled = false\n")
    reg = await AgentRegistry.aload(Settings(agents_file=path))
    assert "writer" not in reg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[agents.coder]\ntools = ["run_python", "launch_rockets"]\n',
            r"agents\.coder\.tools: .*unknown tool\(s\) \['launch_rockets'\]",
        ),
        ('[agents.coder]\ncolour = "blue"\n', r"agents\.coder\.colour: unknown key"),
        (
            '[agents.coder]\nmodel_role = "pilot"\n',
            r"agents\.coder\.model_role: .*unknown role 'pilot'",
        ),
        ('[agents.newbie]\nprompt = "Hi."\n', r"agents\.newbie\.description: Field required"),
        (
            '[agents.Bad_Name]\ndescription = "x"\nprompt = "y"\n',
            r"agents\.Bad_Name\.name: .*lowercase",
        ),
        ('[agents.coder]\nname = "other"\n', r"agents\.coder\.name: must match"),
        ("[models.x]\nprovider = 'test'\n", r": models: unknown key"),
        ("[agents.coder\n", r"agents\.toml: "),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        registry_from(tmp_path, text)
    assert str(tmp_path / "agents.toml") in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="agents_file: no such file"):
        AgentRegistry.load(Settings(agents_file=tmp_path / "nope.toml"))


def test_unknown_agent_lists_known() -> None:
    with pytest.raises(UnknownAgentError, match="known agents: researcher, coder"):
        AgentRegistry.builtin().get("wizard")


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown tool"):
        AgentSpec(name="x", description="d", prompt="p", tools=["nope"])
    assert AgentSpec(name="writer", description="d", prompt="p").model_role == "writer"


# -- selection ---------------------------------------------------------------------------------

REG = AgentRegistry.builtin()


def task(agent: str, instruction: str) -> Task:
    return Task(id="t1", agent=agent, instruction=instruction)


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("Issue a refund for order 1042 and update the customer's ticket", "support"),
        ("Write and run a Python script that computes the first 20 primes", "coder"),
        ("Query the sales data and compute the average order value per region", "analyst"),
        ("Find the warranty policy in the knowledge base documentation", "researcher"),
        ("Draft a short announcement email summarizing the release", "writer"),
        ("Review and verify the claims in the draft for errors", "reviewer"),
    ],
)
def test_best_match(instruction: str, expected: str) -> None:
    assert REG.select(task("writer", instruction), "best_match").name == expected


def test_best_match_excludes_and_breaks_ties_deterministically() -> None:
    t = task("coder", "Write and run a Python script that computes primes")
    assert REG.select(t, "best_match", exclude=frozenset({"coder"})).name != "coder"
    # No overlap at all: the planned agent wins the tie.
    assert REG.select(task("analyst", "zzz qqq"), "best_match").name == "analyst"
    assert REG.select(task("nobody", "zzz qqq"), "best_match").name == "researcher"


def test_as_planned() -> None:
    t = task("writer", "Query the sales data")
    assert REG.select(t, "as_planned").name == "writer"
    assert REG.select(t, "as_planned", exclude=frozenset({"writer"})).name == "writer"
    with pytest.raises(UnknownAgentError, match="unknown agent 'wizard'"):
        REG.select(task("wizard", "x"), "as_planned")


def test_fallback() -> None:
    t = task("writer", "Query the sales data and compute totals")
    assert REG.select(t, "fallback").name == "writer"  # as planned while it has not failed
    assert REG.select(t, "fallback", exclude=frozenset({"writer"})).name == "analyst"
    assert REG.select(t, "fallback", exclude=frozenset({"writer", "analyst"})).name not in {
        "writer",
        "analyst",
    }
    unknown = task("wizard", "Issue a refund for order 7")
    assert REG.select(unknown, "fallback").name == "support"
    assert REG.best_alternative(unknown, exclude={"support"}).name != "support"


def test_no_agent_left() -> None:
    with pytest.raises(NoAgentAvailableError, match="no agent left"):
        REG.select(task("writer", "x"), "fallback", exclude=frozenset(BUILTINS))
    # Callers catching UnknownAgentError (the supervisor's escalation) handle it too.
    with pytest.raises(UnknownAgentError):
        REG.best_alternative(task("writer", "x"), exclude=BUILTINS)


def test_select_accepts_task_dicts() -> None:
    assert (
        REG.select({"id": "t1", "agent": "coder", "instruction": "x"}, "as_planned").name == "coder"
    )


def test_checked_selection_overrides_a_planned_agent_that_lacks_the_capability():
    registry = AgentRegistry.builtin()
    misrouted = {"id": "t1", "agent": "support",
                 "instruction": "Write a Python function that checks for palindromes, with tests"}
    assert registry.select(misrouted, "fallback").name == "support"
    assert registry.select(misrouted, "checked").name == "coder"
    # A plausible planned choice stands, even when another agent scores a little higher.
    fine = {"id": "t2", "agent": "writer", "instruction": "Write a short report summarizing the findings"}
    assert registry.select(fine, "checked").name == "writer"
    # Excluded agents (they already failed the task) are not chosen again.
    assert registry.select(misrouted, "checked", exclude={"coder"}).name != "coder"
