"""The step flows (coder, researcher, writer, analyst, reviewer) with scripted TestChatModel replies and the
real tools: the scaffolding around the model, not the model, is what is tested here."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from agents import AgentRegistry, build_specialist
from agents.flows import analyst, code_text, writer
from agents.flows.evidence import key_lines, lines_of, quotes
from agents.flows.researcher import checked_parts, cited, query_of, tidy
from agents.flows.writer import fix_tables
from core.models import TestChatModel
from core.settings import Settings
from graph.planning.compose import GATHER
from tests.scripting import context_of
from tools.knowledge_base import MAX_QUERY_TERMS

REGISTRY = AgentRegistry.builtin()
MODELS = {"ts": {"provider": "test", "model": "ts", "tool_mode": "structured"}}

MODULE_REPLY = '''Here it is:
```python
def is_palindrome(s: str) -> bool:
    """Return True if s is a palindrome."""
    t = "".join(c.lower() for c in s if c.isalnum())
    return t == t[::-1]

print(is_palindrome("abba"))
```'''
BUGGY_MODULE = '''```python
def is_palindrome(s: str) -> bool:
    """Return True if s is a palindrome."""
    return s == s[::-1]
```'''
TESTS_REPLY = '''```python
import pytest

def test_is_palindrome():
    """Doc."""
    assert is_palindrome("A man, a plan, a canal: Panama") is True
    assert is_palindrome("abc") is False
    assert is_palindrome("abc") is True
    assert is_palindrome("") is True

test_is_palindrome()
```'''


def config(tmp_path: Path, **overrides: Any) -> RunnableConfig:
    settings = {"model": "ts", "models": MODELS, "data_dir": str(tmp_path), **overrides}
    return {"configurable": {"thread_id": f"run-{uuid.uuid4().hex[:8]}", "settings": settings}}


def factory(model: TestChatModel) -> Any:
    def make(settings: Settings, role: str) -> TestChatModel:
        return model

    return make


async def run(
    agent: str, model: TestChatModel, cfg: RunnableConfig, goal: str, **kw: Any
) -> dict[str, Any]:
    spec = REGISTRY.get(agent).model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t1", "agent": agent, "instruction": goal, "depends_on": []}
    return dict(
        await graph.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg), **kw)
    )


# -- code text --------------------------------------------------------------------------------


def test_module_split_keeps_definitions_and_moves_tests() -> None:
    split = code_text.split_module(code_text.code_of(MODULE_REPLY + "\n"))
    assert split.error is None and split.names == ["is_palindrome"]
    assert "print(" not in split.module and "def is_palindrome" in split.module
    assert code_text.module_name("Save it in pal.py", split.names) == "pal.py"
    assert code_text.module_name("a palindrome checker", split.names) == "palindrome.py"


def test_a_reply_cut_at_the_cap_keeps_its_finished_lines() -> None:
    cut = "```python\ndef test_a():\n    assert f(1) == 2\n    assert f(2) =="
    assert code_text.code_of(cut) == "def test_a():\n    assert f(1) == 2\n"


def test_test_file_adds_the_import_and_drops_contradictions_and_calls() -> None:
    text, error = code_text.test_file(
        code_text.code_of(TESTS_REPLY), "palindrome.py", ["is_palindrome"]
    )
    assert error is None
    assert text.startswith("from palindrome import is_palindrome\nimport pytest")
    assert "abc" not in text  # True and False for the same call: both dropped
    assert "test_is_palindrome()" not in text.replace("def test_is_palindrome", "")
    assert code_text.count_tests(text) == 2
    assert code_text.test_file("x = 1\n", "m.py", ["f"])[1] is not None


def test_test_file_drops_the_prompt_examples_import_and_the_asserts_that_use_it() -> None:
    # Seen on the 0.5B model: the few-shot example's import copied into a Fibonacci test file,
    # and used, so pytest failed at collection whatever the module did.
    copied = (
        "from even import is_even\nfrom fibonacci import fibonacci, fib_list\nimport math\n\n"
        "def test_fibonacci():\n    assert fibonacci(0) == 0\n    assert is_even(fibonacci(3))\n"
        "    assert fib_list(3) == [0, 1, 1]\n    assert fibonacci(10) == 55\n"
        "    assert all(fibonacci(i) >= 0 for i in range(5))\n    assert math.isfinite(fibonacci(9))\n\n"
        "def test_even():\n    assert is_even(2)\n"
    )
    text, error = code_text.test_file(copied, "fibonacci.py", ["fibonacci"])
    assert error is None and "even" not in text and "fib_list" not in text
    assert text.startswith("from fibonacci import fibonacci\nimport math\n")
    assert code_text.count_tests(text) == 4  # the sound asserts, one test each
    module = code_text.split_module("from even import is_even\n\ndef fibonacci(n):\n    return n\n")
    assert "even" not in module.module and module.names == ["fibonacci"]


def test_failed_checks_name_the_assert_and_the_error() -> None:
    out = ">       assert f('a') == 2\nE       AssertionError: assert 1 == 2\n"
    assert code_text.failed_checks(out) == ["assert f('a') == 2  -> AssertionError: assert 1 == 2"]
    assert code_text.pytest_summary("...\n1 failed, 2 passed in 0.1s\n") == "1 failed, 2 passed"


# -- coder ------------------------------------------------------------------------------------


async def test_coder_writes_module_and_tests_and_runs_them(tmp_path: Path) -> None:
    model = TestChatModel(script=[MODULE_REPLY, TESTS_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["error"] is None and out["artifacts"] == ["palindrome.py", "test_palindrome.py"]
    assert out["verification"]["passed"] is True
    assert "2 passed" in out["output"] and "def is_palindrome" in out["output"]
    assert out["usage"]["model_calls"] == 2
    ws = next((tmp_path / "workspaces").iterdir())
    assert "import is_palindrome" in (ws / "test_palindrome.py").read_text()


async def test_coder_repairs_the_module_from_the_failing_checks(tmp_path: Path) -> None:
    model = TestChatModel(script=[BUGGY_MODULE, TESTS_REPLY, MODULE_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["verification"]["passed"] is True and out["usage"]["model_calls"] == 3


async def test_coder_reports_failing_tests_honestly(tmp_path: Path) -> None:
    model = TestChatModel(script=[BUGGY_MODULE, TESTS_REPLY, BUGGY_MODULE, TESTS_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["verification"]["passed"] is False
    assert "the tests FAILED" in out["output"] and "1 failed" in out["output"]
    # A failed task (the supervisor escalates it), its files and output kept.
    assert out["error"].startswith("the tests of palindrome.py FAILED in the sandbox (1 failed")
    assert "assert is_palindrome('A man, a plan, a canal: Panama') is True" in out["error"]
    assert out["artifacts"] == ["palindrome.py", "test_palindrome.py"]


async def test_coder_without_code_fails_instead_of_inventing(tmp_path: Path) -> None:
    model = TestChatModel(script=["I cannot.", "Still no code."])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker.")
    assert out["output"] == "" and "no usable module" in out["error"]


# -- researcher -------------------------------------------------------------------------------


def one_part(question: str) -> dict[str, Any]:
    """The researcher's split of a question that asks about one thing."""
    return {"Parts": {"parts": [question]}}


async def test_researcher_cites_only_passages_it_retrieved(tmp_path: Path) -> None:
    reply = "Refunds are accepted within 30 days of delivery [1]. See also [9]."
    question = "What does our refund policy say about the time limit for refunds?"
    model = TestChatModel(responses=one_part(question), text=reply)
    out = await run("researcher", model, config(tmp_path), question)
    assert out["citations"] and all("refund-policy.md" in c for c in out["citations"])
    assert "[9]" not in out["output"] and "Sources:" in out["output"]


def test_citations_fall_back_to_overlap_and_tidy_cuts_loops() -> None:
    passages = [{"citation": "[a.md L1-2]", "path": "a.md", "text": "refunds within thirty days of delivery"},
                {"citation": "[b.md L1-2]", "path": "b.md", "text": "laptops warranty coverage"}]  # fmt: skip
    assert cited("Refunds are possible within thirty days of delivery.", passages) == [
        "[a.md L1-2]"
    ]
    assert cited("Nothing in common here at all.", passages) == []
    assert tidy("It works [1]. The score is: [2] * [3] * * * * *") == "It works [1]."


SECTION = """## Approval limits

- Support agents may issue refunds up to **$500 per order**.
- Refunds above $500 require a team lead's approval.

| Priority | First response |
|----------|----------------|
| urgent   | 1 hour         |

Every refund needs a reason. It is recorded with it."""


def test_key_lines_are_verbatim_units_of_the_passage() -> None:
    units = lines_of(SECTION)
    assert units == [
        "Support agents may issue refunds up to **$500 per order**.",
        "Refunds above $500 require a team lead's approval.",
        "Priority, First response",
        "urgent, 1 hour",
        "Every refund needs a reason.",
        "It is recorded with it.",
    ]
    assert key_lines(SECTION, "who approves a refund above $500?", n=1) == [
        "Refunds above $500 require a team lead's approval."
    ]
    assert key_lines(SECTION, "cryptocurrency wallets", n=2) == []  # nothing shared, nothing quoted


def test_quotes_take_a_section_about_the_request_whole_and_only_retrieved_lines() -> None:
    about = {"citation": "[refund.md#Approval limits L1-9]", "path": "refund.md", "text": SECTION}
    other = {"citation": "[x.md#Other L1-2]", "path": "x.md",
             "text": "## Other\n\nUnrelated words here. A refund reason is recorded."}  # fmt: skip
    found = quotes([other, about], "What are the approval limits?")
    assert [c for _, c in found].count("[refund.md#Approval limits L1-9]") == 5  # heading matched
    assert all(c == about["citation"] for _, c in found)  # "other" shares one term only
    assert all(line in SECTION for line, _ in found if "," not in line)


async def test_researcher_answer_quotes_the_passages_the_model_dropped(tmp_path: Path) -> None:
    question = "What is the time limit for refunds after delivery?"
    model = TestChatModel(responses=one_part(question), text="Refunds have a time limit [1].")  # drops the number
    out = await run("researcher", model, config(tmp_path), question)
    assert "From the sources:" in out["output"] and "**30 days of delivery**" in out["output"]
    line = next(x for x in out["output"].splitlines() if "30 days of delivery" in x)
    assert line.endswith("]") and "refund-policy.md#" in line  # quoted with its citation
    assert out["citations"] and all(c in out["output"] for c in out["citations"])


def test_a_query_is_the_content_words_of_a_part() -> None:
    query = query_of("How long is the warranty on a Pro line product?").split()
    assert query == ["long", "warranty", "pro", "line", "product"]
    many = " ".join(f"word{i}" for i in range(40))
    assert len(query_of(many).split()) == MAX_QUERY_TERMS  # as many as one search takes


def test_the_models_parts_are_kept_only_within_the_question() -> None:
    question = "How long is the refund window, and what does the warranty cover?"
    parts = ["How long is the refund window?", "What does the warranty cover?",
             "What is the capital of France?", "How long is the refund window"]
    assert checked_parts(parts, question) == parts[:2]  # off-topic and repeated parts dropped
    assert checked_parts(["Tell me about Paris."], question) == [question]
    paraphrases = ["How do I reset my password?", "What are the steps to reset my password?"]
    assert checked_parts(paraphrases, "How do I reset my password?") == paraphrases[:1]
    assert checked_parts([], question) == [question]


async def test_a_two_part_question_is_answered_from_both_documents(tmp_path: Path) -> None:
    question = ("How many days after delivery can a customer return an item for a refund, and "
                "how long is the warranty on a Pro line product?")
    parts = ["How many days after delivery can a customer return an item for a refund?",
             "How long is the warranty on a Pro line product?"]
    seen: list[str] = []
    model = TestChatModel(responses={"Parts": {"parts": parts}},
                          text=replying("Items can be returned within 30 days of delivery [1].", seen))
    out = await run("researcher", model, config(tmp_path), question)
    docs = {c.split("#")[0].strip("[") for c in out["citations"]}
    assert {"refund-policy.md", "warranty-policy.md"} <= docs  # the answer named one; code cites both
    assert "**2 years**" in out["output"] and "**30 days of delivery**" in out["output"]
    assert "The question asks about:\n- " + parts[0] in seen[0]
    assert out["usage"]["model_calls"] == 2  # the split, the answer


async def test_what_the_parts_leave_out_is_searched_too(tmp_path: Path) -> None:
    question = ("How many days after delivery can a customer return an item for a refund, and "
                "how long is the warranty on a Pro line product?")
    parts = ["How many days after delivery can a customer return an item for a refund?"]
    model = TestChatModel(responses={"Parts": {"parts": parts}}, text="Within 30 days [1].")
    out = await run("researcher", model, config(tmp_path), question)
    assert "**2 years**" in out["output"]  # the warranty passage came from the whole question
    assert any("warranty-policy.md" in c for c in out["citations"])


async def test_a_report_gathers_the_sections_on_each_of_its_subjects(tmp_path: Path) -> None:
    goal = (
        "Write a brief report on how to keep LLM agent runs bounded and safe, drawing on the "
        "orchestration and tool-safety documents in the knowledge base."
    )
    parts = ["How to keep LLM agent runs bounded?", "How to keep agent runs safe with tools?"]
    model = TestChatModel(responses={"Parts": {"parts": parts}}, text="Runs are capped [1].")
    spec = REGISTRY.get("researcher").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t1", "agent": "researcher", "instruction": GATHER.format(goal=goal), "depends_on": []}
    cfg = config(tmp_path)
    out = await graph.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg))
    docs = {c.split("#")[0].strip("[") for c in out["citations"]}
    assert {"agent-orchestration-patterns.md", "tool-use-safety.md"} <= docs
    assert "budgets per run" in out["output"]  # bounded: the run limits
    assert "human approval" in out["output"]  # safe: a line of another tool-safety section


def test_every_retrieved_passage_quotes_its_best_line() -> None:
    first = {"citation": "[a.md#Keeping runs bounded L1-3]", "path": "a.md",
             "text": "## Keeping runs bounded\n\nCap the steps of every run. Enforce budgets."}
    second = {"citation": "[b.md#Prompt injection L1-3]", "path": "b.md",
              "text": "## Prompt injection\n\nText reaches the model. Treat all tools' output "
                      "as untrusted data."}  # fmt: skip
    found = quotes([first, second], "keep runs bounded and tool-safety")
    # The second passage shares one term ("tool", from "tool-safety" and "tools'") with the
    # request: it was retrieved for it, so its best line is quoted, not nothing.
    assert found[-1] == ("Treat all tools' output as untrusted data.", second["citation"])
    assert [c for _, c in found].count(first["citation"]) == 2  # its section, whole

# -- writer, analyst, reviewer ------------------------------------------------------------------

GOOD = "[full-text-vs-vector-search.md#Choosing L55-65]"
MADE_UP = "[full-text-vs-vector-search.md#Nothing like this L1-2]"
FINDINGS = (
    "## Result of task find (researcher)\nBM25 ranks passages by term frequency [1].\n\n"
    f"Sources:\n- {GOOD}\n\n"
    "## Result of task numbers (analyst)\nRecall rose from 61% to 78% with hybrid search.\n"
    "Sources: sales.csv: SELECT 1"
)


PROSE = {"Layout": {"form": "summary"}}
"""The writer's layout judgment: prose."""


async def run_task_flow(agent: str, model: TestChatModel, cfg: RunnableConfig, instruction: str,
                        context: str = "") -> dict[str, Any]:
    spec = REGISTRY.get(agent).model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t2", "agent": agent, "instruction": instruction, "depends_on": ["find"]}
    return dict(await graph.ainvoke({"task": task, "goal": instruction, "context": context}, cfg,
                                    context=context_of(cfg)))


def replying(reply: str, seen: list[str]) -> Any:
    def answer(messages: Any) -> str:
        seen.append("\n".join(str(m.content) for m in messages))
        return reply

    return answer


def workspace_of(tmp_path: Path, cfg: RunnableConfig) -> Path:
    ws = tmp_path / "workspaces" / cfg["configurable"]["thread_id"]
    ws.mkdir(parents=True, exist_ok=True)
    return ws


async def test_writer_carries_its_inputs_sources_and_drops_invented_numbers(tmp_path: Path) -> None:
    reply = ("Full-text search with BM25 ranks passages by term frequency. Hybrid search raised "
             "recall from 61% to 78%. It is also 5 times cheaper.\n\nSources: [invented.md#X L1-2]")
    seen: list[str] = []
    model = TestChatModel(text=replying(reply, seen), responses=PROSE)
    out = await run_task_flow("writer", model, config(tmp_path), "Write a short report.", FINDINGS)
    assert out["error"] is None and out["citations"] == [GOOD, "sales.csv: SELECT 1"]
    assert "61% to 78%" in out["output"] and "5 times" not in out["output"]  # no input says 5
    assert "invented.md" not in out["output"] and out["output"].endswith(f"- {GOOD}\n- sales.csv: SELECT 1")
    prompt = seen[0]
    assert "Note 1 (from task find, researcher)" in prompt and GOOD not in prompt
    assert out["usage"]["model_calls"] == 2  # the layout judgment, then the prose


async def test_writer_sees_the_quoted_facts_without_their_citations(tmp_path: Path) -> None:
    quoted = (
        "## Result of task find (researcher)\nBM25 is cheap [1].\n\nFrom the sources:\n"
        f"- Small corpora: start with BM25. {GOOD}\n\nSources:\n- {GOOD}"
    )
    seen: list[str] = []
    model = TestChatModel(text=replying("Start with BM25 for a small corpus.", seen), responses=PROSE)
    out = await run_task_flow("writer", model, config(tmp_path), "Write a recommendation.", quoted)
    assert "- Small corpora: start with BM25.\n" in seen[0] and "Choosing L55-65" not in seen[0]
    assert out["citations"] == [GOOD]  # the sources still come from the inputs


async def test_writer_without_usable_text_fails(tmp_path: Path) -> None:
    out = await run_task_flow("writer", TestChatModel(text="It costs 999 dollars.", responses=PROSE),
                              config(tmp_path), "Summarize.", FINDINGS)
    assert out["output"] == "" and "numbers none of its inputs has" in out["error"]


SHIPPING = (
    "## Result of task find (researcher)\nFrom the sources:\n"
    "- Standard, 3–5 business days, $5.99 [shipping.md#Options L6-14]\n"
    "- Express, 1–2 business days, $14.99 [shipping.md#Options L6-14]\n\n"
    "Sources:\n- [shipping.md#Options L6-14]"
)


async def test_writer_renders_a_table_the_model_judged_the_task_needs(tmp_path: Path) -> None:
    # The plan names an item as the kind of item, an item and a value as points, and repeats
    # an item.
    plan = {"items": ["Standard", "Express", "Overnight", "standard"], "item": "Express",
            "points": ["Delivery time", "Cost", "Express", "Standard: 3–5 business days, $5.99"]}
    cells = {"Standard": {"delivery_time": "3–5 business days", "cost": "$5.99"},
             "Express": {"delivery_time": "1–2 business days", "cost": ""},
             "Overnight": {"delivery_time": "1 day", "cost": "$39.99"}}
    seen: list[str] = []

    def row(messages: Any) -> dict[str, str]:
        asked = str(messages[-1].content)
        seen.append(asked)
        return next(v for k, v in cells.items() if f"the row of {k}:" in asked)

    model = TestChatModel(responses={"Layout": {"form": "comparison table"}, "Columns": plan, "Row": row},
                          text="unused")
    out = await run_task_flow("writer", model, config(tmp_path), "Compare the shipping options.", SHIPPING)
    assert out["output"].split("\n\nSources:")[0].splitlines() == [
        "| Item | Delivery time | Cost |", "|---|---|---|",
        "| Standard | 3–5 business days | $5.99 |", "| Express | 1–2 business days |   |",
        "| Overnight | 1 day | — |"]  # "1" is in the inputs, "39.99" is not
    # each row from the notes that name its item, under exactly the planned columns
    assert "Fill in the row of Express: its Delivery time, Cost." in seen[1]
    assert "Express, 1–2" in seen[1] and "Standard, 3–5" not in seen[1]
    assert "Standard, 3–5" in seen[2] and "Express, 1–2" in seen[2]  # no line names it: all notes
    assert set(writer.row_schema(["Delivery time", "2nd"]).model_json_schema()["properties"]) == {
        "delivery_time", "field_2"}
    assert out["citations"] == ["[shipping.md#Options L6-14]"] and out["usage"]["model_calls"] == 5


async def test_writer_repairs_a_table_written_as_prose_and_names_partial_inputs(tmp_path: Path) -> None:
    draft = "Here it is:\n| Option | Cost |\n| Standard | $5.99 | 3 days |\n| Express |\n\nBoth ship fast."
    partial = SHIPPING.replace("## Result of task find", "## Partial result of task find")
    model = TestChatModel(responses=PROSE, text=draft)
    out = await run_task_flow("writer", model, config(tmp_path), "Describe the shipping options.", partial)
    lines = out["output"].splitlines()
    assert lines[1:5] == ["| Option | Cost |", "|---|---|", "| Standard | $5.99 |", "| Express |   |"]
    assert "partial work of task find (researcher), which failed" in out["output"]
    assert fix_tables("no table here", "") == "no table here"
    assert fix_tables("| A | B |\n|---|---|\n| x \\| y | 2 |", "2").splitlines()[2] == "| x \\| y | 2 |"


async def test_analyst_profiles_the_data_runs_the_models_query_and_checks_its_figures(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (workspace_of(tmp_path, cfg) / "sales.csv").write_text(
        "region,month,revenue\nNorth,2024-01,100\nNorth,2024-02,200\nSouth,2024-01,50\n")
    query = {"source": "sales.csv", "sql": "SELECT region, SUM(revenue) AS total FROM sales GROUP BY region ORDER BY total DESC"}
    model = TestChatModel(responses={"Query": query},
                          text="North has the highest revenue, 300. South follows with 50. West had 999.")
    out = await run_task_flow("analyst", model, cfg, "Analyze sales.csv: total revenue per region.")
    assert out["error"] is None
    assert "North | 300" in out["output"] and "sum_revenue" in out["output"]  # the model's query and the profile
    assert "North has the highest revenue, 300." in out["output"] and "999" not in out["output"]
    assert out["citations"][0] == "sales.csv: " + query["sql"]
    assert out["usage"]["model_calls"] == 2
    grouped = analyst.grouped_query("Average revenue by month, please", "sales",
                                    ["region", "month", "revenue"], ["revenue"])
    assert grouped == ('SELECT "month", AVG("revenue") AS "avg_revenue", COUNT(*) AS rows '
                       'FROM "sales" GROUP BY "month" ORDER BY "month"')
    assert analyst.grouped_query("Total revenue?", "sales", ["region", "revenue"], ["revenue"]) is None


async def test_analyst_hands_on_its_figures_as_tables_and_drops_a_misread_figure(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (workspace_of(tmp_path, cfg) / "orders.csv").write_text(
        "id,shipping_method,total\nA1,standard,10.5\nA2,express,20\nA3,standard,4.5\n")
    query = {"source": "orders.csv", "sql": "SELECT shipping_method, SUM(total) AS total FROM orders GROUP BY 1"}
    reading = ("Express orders total 20. Standard orders total 15. Expressive: 15. "
               "All orders come to 35. Standard has 7 orders.")
    model = TestChatModel(responses={"Query": query}, text=reading)
    out = await run_task_flow("analyst", model, cfg, "Total amount per shipping method in orders.csv.")
    text = out["output"]
    assert text.startswith("Figures (computed by SQL):")
    # the grouping the task names by its words ("shipping method"), computed by code too
    assert 'GROUP BY "shipping_method"' in text
    table = text.split(f"`{query['sql']}`", 1)[1].strip().split("\n\n")[0].splitlines()
    assert table == ["| shipping_method | total |", "|---|---|", "| express | 20 |", "| standard | 15 |"]
    kept = text.split("Reading of the figures:", 1)[1]
    assert "Express orders total 20." in kept and "Standard orders total 15." in kept
    assert "All orders come to 35." in kept  # a total: its row has no label
    assert "Expressive" not in kept  # standard's figure given to another label
    assert "7 orders" not in kept  # a number no result has
    assert [line for line in analyst.markdown_table(["a", "b"], [["1", ""]]).splitlines()] == [
        "| a | b |", "|---|---|", "| 1 |   |"]


async def test_analyst_selects_the_columns_its_query_groups_by(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (workspace_of(tmp_path, cfg) / "orders.csv").write_text(
        "id,method,total\nA1,standard,10\nA2,express,20\nA3,standard,4\nA4,standard,6\n")
    query = {"source": "orders.csv", "sql": "SELECT COUNT(id), SUM(total) FROM orders GROUP BY method"}
    reading = "There are 3 orders. Standard has 3 orders worth 20. Express has 1 order worth 20."
    model = TestChatModel(responses={"Query": query}, text=reading)
    out = await run_task_flow("analyst", model, cfg, "Count the orders in orders.csv.")
    assert "`SELECT method, COUNT(id), SUM(total) FROM orders GROUP BY method`" in out["output"]
    assert "| express | 1 | 20 |" in out["output"] and "| standard | 3 | 20 |" in out["output"]
    kept = out["output"].split("Reading of the figures:", 1)[1]
    # 3 is standard's count, not the number of orders (a one-row total would say 4)
    assert "There are 3 orders." not in kept
    assert "Standard has 3 orders worth 20." in kept and "Express has 1 order worth 20." in kept
    assert analyst.with_group_keys("SELECT COUNT(*) FROM t GROUP BY 1") == "SELECT COUNT(*) FROM t GROUP BY 1"
    assert analyst.with_group_keys("SELECT COUNT(*) FROM t GROUP BY a ORDER BY 1").endswith("ORDER BY 1")


async def test_analyst_retries_a_failing_query_once_then_reports_the_profile(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (workspace_of(tmp_path, cfg) / "sales.csv").write_text("region,revenue\nNorth,100\nSouth,50\n")
    model = TestChatModel(responses={"Query": {"source": "sales.csv", "sql": "SELECT nope FROM sales"}},
                          text="Total revenue is 150.")
    out = await run_task_flow("analyst", model, cfg, "What is the total revenue?")
    assert out["error"] is None and out["usage"]["model_calls"] == 3  # two queries, one reading
    assert "Total revenue is 150." in out["output"] and "sum_revenue" in out["output"]
    empty = await run_task_flow("analyst", TestChatModel(text="x"), config(tmp_path), "Total revenue?")
    assert "no data to analyze" in empty["error"]


async def test_reviewer_runs_the_tests_and_checks_citations_before_the_model_verdict(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    ws = workspace_of(tmp_path, cfg)
    (ws / "m.py").write_text("def f():\n    return 1\n")
    (ws / "test_m.py").write_text("from m import f\n\ndef test_f():\n    assert f() == 2\n")
    model = TestChatModel(responses={"Verdict": {"passed": True, "feedback": ""}})
    work = f"## Result of task find (researcher)\nBM25 ranks by term frequency.\nSources: {GOOD}; {MADE_UP}"
    out = await run_task_flow("reviewer", model, cfg, "Review the work.", work)
    assert out["error"] is None
    assert "tests (pytest, sandbox): FAILED — test_m.py: 1 failed" in out["output"]
    assert "citations (knowledge base): FAILED — 1 of 2 found" in out["output"] and "no heading" in out["output"]
    assert "Verdict: problems found" in out["output"]  # the model's "passed" cannot pass failed checks
    (ws / "test_m.py").write_text("from m import f\n\ndef test_f():\n    assert f() == 1\n")
    model = TestChatModel(responses={"Verdict": {"passed": False, "feedback": "Add a docstring."}})
    out = await run_task_flow("reviewer", model, cfg, "Review the work.", f"Done.\nSources: {GOOD}")
    assert "tests (pytest, sandbox): passed" in out["output"] and "1 of 1 found" in out["output"]
    assert "Verdict (the model's judgement): problems found. Add a docstring." in out["output"]
