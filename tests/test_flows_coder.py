"""The coder flow's repair from evidence, with scripted TestChatModel replies and the real
sandbox: which side of a failure gets repaired, and that a pass is always a real pytest run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from agents import build_specialist
from agents.flows import code_checks, code_text
from agents.flows.coder import choose_fix, failed_count
from agents.flows.common import PytestRun
from core.models import TestChatModel
from tests.scripting import context_of
from tests.test_agents_flows import REGISTRY, config, factory, run

GOAL = "Write a Python function chunk(items: list, size: int) -> list[list]. Save it in chunk.py."
MODULE = '''```python
def chunk(items: list, size: int) -> list[list]:
    """Split items into chunks of size."""
    return [items[i:i + size] for i in range(0, len(items), size)]
```'''
OTHER_MODULE = '''```python
def chunk(items: list, size: int) -> list[list]:
    """Split items into chunks of size."""
    out = []
    for i in range(0, len(items), size):
        out.append(items[i:i + size])
    return out
```'''
BUGGY = '''```python
def chunk(items: list, size: int) -> list[list]:
    """Split items into chunks of size."""
    return [items[i:i + size] for i in range(0, len(items) - 1, size)]
```'''
WORSE = '''```python
def chunk(items: list, size: int) -> list[list]:
    """Split items into chunks of size."""
    return []
```'''
TESTS_ONE_WRONG = """```python
def test_chunk():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]
    assert chunk([], 3) == []
    assert chunk([1, 2], 5) == [[1, 2]]
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4, 5]]
```"""
TESTS_MOSTLY_WRONG = """```python
def test_chunk():
    assert chunk([1, 2, 3], 2) == [[1, 2, 3]]
    assert chunk([1, 2, 3], 1) == [[1, 2, 3]]
    assert chunk([1, 2], 5) == [[1], [2]]
    assert chunk([], 3) == []
```"""
TESTS_RIGHT = """```python
def test_chunk():
    assert chunk([1, 2, 3], 2) == [[1, 2], [3]]
    assert chunk([], 3) == []
    assert chunk([1, 2], 5) == [[1, 2]]
```"""


def workspace(tmp_path: Path) -> Path:
    return next((tmp_path / "workspaces").iterdir())


# -- evidence, pure --------------------------------------------------------------------------


def test_checks_and_probe_output_and_verdicts() -> None:
    text, error = code_text.test_file(code_text.code_of(TESTS_ONE_WRONG), "chunk.py", ["chunk"])
    assert error is None
    checks = code_checks.checks_of(text)
    assert [c.test for c in checks] == [f"test_chunk_{i}" for i in range(1, 5)]
    assert checks[3].call == "chunk([1, 2, 3, 4, 5], 2)"
    assert checks[3].expected == "[[1, 2], [3, 4, 5]]"
    out = 'noise\nCODER-PROBE {"test_chunk_4": ["[[1, 2], [3, 4], [5]]", false]}\n'
    mine = code_checks.probe_results(out)
    assert mine == {"test_chunk_4": ("[[1, 2], [3, 4], [5]]", False)}
    same = code_checks.verdicts([checks[3]], mine, dict(mine))
    passes = code_checks.verdicts(
        [checks[3]], mine, {"test_chunk_4": ("[[1, 2], [3, 4, 5]]", True)}
    )
    differs = code_checks.verdicts([checks[3]], mine, {"test_chunk_4": ("[]", False)})
    alone = code_checks.verdicts([checks[3]], mine, None)
    assert [v[0].side for v in (same, passes, differs, alone)] == [
        "tests",
        "module",
        "unknown",
        "unknown",
    ]
    assert "returns [[1, 2], [3, 4], [5]]" in same[0].line()
    assert code_checks.failed_tests("FAILED test_chunk.py::test_chunk_4 - assert x\n") == [
        "test_chunk_4"
    ]


def test_disputed_checks_stay_in_the_file_marked_xfail() -> None:
    text, _ = code_text.test_file(code_text.code_of(TESTS_ONE_WRONG), "chunk.py", ["chunk"])
    marked = code_checks.disputed_marked(text, {"test_chunk_4": "disputed: because"})
    assert marked.startswith("import pytest\n")
    assert (
        "@pytest.mark.xfail(reason='disputed: because', strict=False)\ndef test_chunk_4" in marked
    )
    assert "assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4, 5]]" in marked  # not deleted
    assert marked.count("xfail") == 1


def test_test_files_never_redefine_the_function_under_test_or_call_the_test() -> None:
    tests = (
        "def chunk(items, size):\n    return [items]\n\nchunk = chunk\n\n"
        "def helper():\n    return 2\n\n"
        "def test_chunk():\n    assert test_chunk([1], helper()) == [[1]]\n"
    )
    text, error = code_text.test_file(tests, "chunk.py", ["chunk"])
    assert error is None
    assert "def chunk" not in text and "chunk = chunk" not in text and "def helper" in text
    assert "assert chunk([1], helper()) == [[1]]" in text


def test_a_collection_error_counts_every_test_as_failed() -> None:
    tests = "def test_a():\n    assert 1\n\n\ndef test_b():\n    assert 1\n"
    assert failed_count(PytestRun(False, "1 error", ""), tests) == 2
    assert failed_count(PytestRun(False, "1 failed, 1 passed", ""), tests) == 1
    assert failed_count(PytestRun(True, "2 passed", ""), tests) == 0


# -- the flow --------------------------------------------------------------------------------


async def test_a_wrong_expectation_both_implementations_contradict_is_set_aside(
    tmp_path: Path,
) -> None:
    model = TestChatModel(script=[MODULE, TESTS_ONE_WRONG, OTHER_MODULE])
    out = await run("coder", model, config(tmp_path), GOAL)
    assert out["error"] is None and out["verification"]["passed"] is True
    assert "3 passed, 1 xfailed" in out["output"]
    # The headline never says a plain "passed" when a check was set aside.
    assert "the tests passed with 1 disputed check set aside" in out["output"].splitlines()[0]
    assert "disputed check(s) set aside" in out["verification"]["feedback"]
    assert "Tests set aside" in out["output"] and "returns [[1, 2], [3, 4], [5]]" in out["output"]
    assert out["usage"]["model_calls"] == 3
    written = (workspace(tmp_path) / "test_chunk.py").read_text()
    assert "assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4, 5]]" in written
    assert "xfail" in written


async def test_a_check_the_second_implementation_passes_points_at_the_module(
    tmp_path: Path,
) -> None:
    # The buggy module drops the last chunk; the second implementation passes everything:
    # it becomes the module, and nothing is set aside.
    model = TestChatModel(script=[BUGGY, TESTS_RIGHT, MODULE])
    out = await run("coder", model, config(tmp_path), GOAL)
    assert out["verification"]["passed"] is True and "xfail" not in out["output"]
    assert "a second implementation passed more tests" in out["output"]
    assert "range(0, len(items), size)" in (workspace(tmp_path) / "chunk.py").read_text()


async def test_too_many_disputed_checks_get_fresh_tests_not_a_pass(tmp_path: Path) -> None:
    model = TestChatModel(script=[MODULE, TESTS_MOSTLY_WRONG, OTHER_MODULE, TESTS_RIGHT])
    out = await run("coder", model, config(tmp_path), GOAL)
    assert out["verification"]["passed"] is True and "3 passed" in out["output"]
    assert "xfail" not in (workspace(tmp_path) / "test_chunk.py").read_text()
    assert out["usage"]["model_calls"] == 4


async def test_the_same_code_twice_is_no_evidence_and_a_worse_repair_is_undone(
    tmp_path: Path,
) -> None:
    # The second samples are the buggy module again (a shared bug would make the right test
    # look wrong): no check is set aside; the module repair fails more tests and is undone,
    # and the task fails honestly with the better files in the workspace.
    model = TestChatModel(script=[BUGGY, TESTS_RIGHT, BUGGY, BUGGY, WORSE])
    out = await run("coder", model, config(tmp_path), GOAL)
    assert out["verification"]["passed"] is False and out["error"] is not None
    assert "FAILED" in out["output"] and "xfail" not in out["output"]
    assert "a repair that failed 2 tests was undone" in out["output"]
    assert "len(items) - 1" in (workspace(tmp_path) / "chunk.py").read_text()  # not WORSE
    assert out["usage"]["model_calls"] == 5


def test_same_code_ignores_docstrings_and_layout() -> None:
    a = code_text.split_module(code_text.code_of(MODULE)).module
    assert code_checks.same_code(a, a.replace('"""Split items into chunks of size."""', "# x"))
    assert not code_checks.same_code(
        a, code_text.split_module(code_text.code_of(OTHER_MODULE)).module
    )


async def test_a_dispute_needs_three_real_passes_beside_it(tmp_path: Path) -> None:
    # One wrong expectation of three: both implementations agree against it, but two real
    # passes are too little to rest a pass on (a bug both share would slip through): fresh
    # tests are written instead of setting the check aside.
    three = (
        "```python\ndef test_chunk():\n    assert chunk([1, 2, 3], 2) == [[1, 2], [3]]\n"
        "    assert chunk([], 3) == []\n    assert chunk([1, 2, 3], 1) == [[1, 2, 3]]\n```"
    )
    model = TestChatModel(script=[MODULE, three, OTHER_MODULE, TESTS_RIGHT])
    out = await run("coder", model, config(tmp_path), GOAL)
    assert out["verification"]["passed"] is True and "xfail" not in out["output"]
    assert out["usage"]["model_calls"] == 4


# -- the stated interface -------------------------------------------------------------------

SPEC_GOAL = (
    "Write `scale(values, factor)` in scaling.py: it multiplies each value by factor. "
    "scale([1, 2], 3) -> [3, 6]."
)
RENAMED = "```python\ndef scaled(values, factor):\n    return [v * factor for v in values]\n```"
WRONG_PARAMS = "```python\ndef scale(xs, k):\n    return [x * k for x in xs]\n```"
SCALE = "```python\ndef scale(values, factor):\n    return [v * factor for v in values]\n```"
SCALE_BUG = "```python\ndef scale(values, factor):\n    return [v + factor for v in values]\n```"
SCALE_TESTS = (
    "```python\ndef test_scale():\n    assert scale([], 2) == []\n    assert scale([2], 2) == [4]\n"
    "    assert scale([1, 1], 0) == [0, 0]\n    assert scale([5], 1) == [5]\n```"
)


async def retry(model: TestChatModel, cfg: RunnableConfig, goal: str, feedback: str) -> dict[str, Any]:
    """The coder task run again as the supervisor's adjusted retry runs it: with feedback."""
    spec = REGISTRY.get("coder").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t1", "agent": "coder", "instruction": goal, "depends_on": []}
    state = {"task": task, "goal": goal, "feedback": feedback}
    return dict(await graph.ainvoke(state, cfg, context=context_of(cfg)))


def prompts_of(model: TestChatModel, replies: list[str]) -> list[str]:
    """Make ``model`` answer ``replies`` in order and record each call's prompt."""
    seen: list[str] = []
    queue = list(replies)

    def answer(messages: Any) -> str:
        seen.append("\n".join(str(m.content) for m in messages))
        return queue.pop(0) if queue else "no more"

    model.text = answer
    return seen


async def test_a_module_without_the_asked_name_or_parameters_is_written_again(tmp_path: Path) -> None:
    model = TestChatModel()
    seen = prompts_of(model, [RENAMED, SCALE_TESTS, WRONG_PARAMS, SCALE])
    out = await run("coder", model, config(tmp_path), SPEC_GOAL)
    assert out["error"] is None and out["verification"]["passed"] is True
    assert out["artifacts"] == ["scaling.py", "test_scaling.py"]
    assert "it does not define scale(values, factor)" in seen[2]
    assert "must take exactly these parameters: scale(values, factor)" in seen[3]
    assert "- scale(values, factor)" in seen[0]  # the interface is said in the task's names
    written = (workspace(tmp_path) / "test_scaling.py").read_text()
    assert written.startswith("from scaling import scale\n")
    assert written.index("def test_stated_1():\n    assert scale([1, 2], 3) == [3, 6]") < written.index(
        "def test_scale_1"
    )
    assert "1 example(s) the task states and 4 model-written test(s)" in out["output"]


async def test_a_module_that_never_has_the_asked_name_fails(tmp_path: Path) -> None:
    model = TestChatModel(script=[RENAMED, SCALE_TESTS, RENAMED, RENAMED])
    out = await run("coder", model, config(tmp_path), SPEC_GOAL)
    assert "no usable module: it does not define scale(values, factor)" in out["error"]
    assert "def scaled" in out["output"]  # the rejected module still reaches the reader


async def test_a_module_cut_off_at_the_token_cap_is_never_run(tmp_path: Path) -> None:
    cut = "```python\ndef scale(values, factor):\n    out = []\n    for v in values:\n        out.append("
    model = TestChatModel(script=[cut, SCALE_TESTS, SCALE])
    out = await run("coder", model, config(tmp_path), SPEC_GOAL)
    assert out["verification"]["passed"] is True and out["usage"]["model_calls"] == 3
    assert "return [v * factor" in (workspace(tmp_path) / "scaling.py").read_text()


async def test_a_failing_stated_example_is_never_set_aside(tmp_path: Path) -> None:
    # Both implementations add instead of multiply and agree on the stated example's value:
    # a model-written test would be disputed, the goal's own example points at the module.
    model = TestChatModel(script=[SCALE_BUG, SCALE_TESTS, SCALE_BUG.replace("v + factor", "factor + v"), SCALE])
    out = await run("coder", model, config(tmp_path), SPEC_GOAL)
    assert out["verification"]["passed"] is True and "xfail" not in out["output"]
    assert "v * factor" in (workspace(tmp_path) / "scaling.py").read_text()


async def test_tests_that_cannot_fail_are_never_the_evidence(tmp_path: Path) -> None:
    weak = "```python\ndef test_f():\n    assert callable(double)\n    assert double(2) is not None\n```"
    module = "```python\ndef double(n):\n    return n * 3\n```"
    model = TestChatModel(script=[module, weak, weak, weak])
    out = await run("coder", model, config(tmp_path), "Write a function double(n) that doubles n.")
    assert out["verification"]["passed"] is False and out["error"].startswith("no evidence")
    assert out["verification"]["feedback"] == "evidence: none"
    assert out["usage"]["model_calls"] == 4  # module + draft tests, then two more test files


async def test_a_bug_fix_starts_from_the_given_code_and_keeps_its_signature(tmp_path: Path) -> None:
    goal = (
        "This returns the wrong thing, fix it:\n"
        "def last_word(sentence):\n    return sentence.split()[0]\n"
        "last_word('a b c') -> 'c'"
    )
    fixed = "```python\ndef last_word(sentence):\n    return sentence.split()[-1]\n```"
    renamed = "```python\ndef final_word(text):\n    return text.split()[-1]\n```"
    unchanged = "```python\ndef last_word(sentence):\n    return sentence.split()[0]\n```"
    tests = "```python\ndef test_w():\n    assert last_word('x y') == 'y'\n    assert last_word('z') == 'z'\n```"
    model = TestChatModel()
    # First the model's judgment of what the goal wants done with the code: "A", fix it.
    seen = prompts_of(model, ["A", renamed, tests, unchanged, fixed])
    out = await run("coder", model, config(tmp_path), goal)
    assert out["verification"]["passed"] is True
    assert "Start from this code; keep its names and parameters:\n```python\ndef last_word(sentence):" in seen[1]
    assert "last_word('a b c') returns 'a'. The fixed module must not." in seen[1]
    assert "the given code unchanged" in seen[4]
    assert "1 example(s) the task states" in out["output"]


async def test_a_retry_starts_from_the_files_the_attempt_before_left(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    first = TestChatModel(script=[SCALE_BUG, SCALE_TESTS, SCALE_BUG, SCALE_BUG, SCALE_BUG, SCALE_BUG])
    out = await run("coder", first, cfg, SPEC_GOAL)
    assert out["error"] is not None and "scaling.py" in out["error"]
    feedback = f"Your previous attempt failed: {out['error']}. Fix that and try again."
    model = TestChatModel()
    seen = prompts_of(model, [SCALE_BUG.replace("v + factor", "factor + v"), SCALE])
    again = await retry(model, cfg, SPEC_GOAL, feedback)
    assert again["verification"]["passed"] is True
    assert "started from the files the attempt before left" in again["output"]
    # No module or tests written from nothing: the second sample, then the repair of the kept module.
    assert again["usage"]["model_calls"] == 2
    assert "def scale(values, factor):\n    return [v + factor for v in values]" in seen[1]


def state(failed: int, test_code: str) -> Any:
    return {"task": {}, "failed": failed, "test_code": test_code}


def test_stated_examples_met_outweigh_many_disputed_guesses() -> None:
    def verdict(test: str) -> code_checks.Verdict:
        return code_checks.Verdict(code_checks.Check(test, "assert f(1) == 3", "f(1)", "3"), "2", "tests")

    guesses = "".join(f"def test_f_{i}():\n    assert f({i}) == {i}\n\n\n" for i in range(4))
    found = [verdict("test_f_0"), verdict("test_f_1")]
    # Two of four model-written checks disputed: too many to set aside, fresh tests instead.
    assert choose_fix(found, state(2, guesses)) == "retest"
    # The same beside two stated examples the module meets: the guesses are set aside.
    stated = "def test_stated_1():\n    assert f(5) == 5\n\n\ndef test_stated_2():\n    assert f(6) == 6\n\n\n"
    assert choose_fix(found, state(2, stated + guesses)) == "tests"
    # A failing stated example is never disputed: the module is repaired.
    wrong = code_checks.Verdict(code_checks.Check("test_stated_1", "assert f(5) == 5", "f(5)", "5"), "4", "stated")
    assert choose_fix([wrong, *found], state(3, stated + guesses)) == "module"


def test_a_probe_reads_an_asserts_condition_not_its_message() -> None:
    check = code_checks.Check("test_a", "assert f(1) == 5, 'case 4 failed'", "f(1)", "5")
    script = code_checks.probe_script("test_m.py", [check])
    assert "'f(1) == 5'" in script and "case 4 failed" not in script


def test_float_expectations_in_the_models_tests_are_compared_approximately() -> None:
    # 37 °C is 98.60000000000001 °F in floating point: an exact test would fail a right module.
    tests = ("import pytest\n\ndef test_a():\n    assert c_to_f(37) == 98.6\n    assert c_to_f(0) == 32\n\n"
             "def test_b():\n    assert [c_to_f(1.5)] == [34.7]\n    with pytest.raises(TypeError):\n        c_to_f(None)\n\n"
             "assert 37.0 == f_to_c(98.6)\n")
    text, error = code_text.test_file(tests, "temperature.py", ["c_to_f", "f_to_c"])
    assert error is None
    assert "assert c_to_f(37) == pytest.approx(98.6)" in text and "assert c_to_f(0) == 32" in text
    assert "assert [c_to_f(1.5)] == pytest.approx([34.7])" in text
    assert "assert pytest.approx(37.0) == f_to_c(98.6)" in text and text.count("import pytest") == 1
    module = "def c_to_f(c):\n    return c * 9 / 5 + 32\n\n\ndef f_to_c(f):\n    return (f - 32) * 5 / 9\n"
    namespace: dict[str, object] = {}
    exec(compile(module + "\n" + text.split("\n", 1)[1], "t", "exec"), namespace)  # the import line dropped
    for name, func in list(namespace.items()):
        if name.startswith("test_") and callable(func):
            func()  # every check passes on the right module


BUG_GOAL = (
    "My function is wrong:\n```python\ndef total(xs):\n    return sum(xs[1:])\n```\n"
    "total([1, 2, 3]) returns 5 but it should be 6. Fix it in totals.py."
)
STILL_BUGGY = "```python\ndef total(xs):\n    out = 0\n    for x in xs[1:]:\n        out += x\n    return out\n```"
FIXED = '```python\ndef total(xs):\n    """Sum the items."""\n    return sum(xs)\n```'
BUG_TESTS = (
    "```python\ndef test_total():\n    assert total([1, 2, 3]) == 5\n    assert total([]) == 0\n"
    "    assert total([4]) == 4\n    assert total([1, 1]) == 2\n```"
)


async def test_a_bug_report_is_fixed_not_restated_and_no_test_expects_the_bug(tmp_path: Path) -> None:
    model = TestChatModel()
    # The model's answers in order: "A" (fix it: the goal says it behaves wrongly), a module
    # that still behaves like the given code, its tests (one expecting the bug), the fix.
    seen = prompts_of(model, ["A", STILL_BUGGY, BUG_TESTS, FIXED])
    out = await run("coder", model, config(tmp_path), BUG_GOAL)
    assert out["error"] is None and out["verification"]["passed"] is True
    assert "What does the goal ask to do with the code it gives?" in seen[0]
    assert "total([1, 2, 3]) returns 5. The fixed module must not." in seen[1]
    assert "it still has the reported bug (total([1, 2, 3]) still returns 5" in seen[3]
    written = (workspace(tmp_path) / "test_totals.py").read_text()
    assert "== 5" not in written and "assert total([4]) == 4" in written
    assert "return sum(xs)\n" in (workspace(tmp_path) / "totals.py").read_text()


async def test_code_given_to_build_on_is_not_treated_as_a_bug(tmp_path: Path) -> None:
    model = TestChatModel()
    goal = ("```python\ndef total(xs):\n    return sum(xs)\n```\ntotal([1, 2]) gives 3. Using it, "
            "write mean(xs) in stats.py.")
    seen = prompts_of(model, ["C", "```python\ndef total(xs):\n    return sum(xs)\n\n\ndef mean(xs):\n"
                              "    return total(xs) / len(xs)\n```",
                              "```python\ndef test_mean():\n    assert mean([1, 3]) == 2\n    assert total([1, 2]) == 3\n```"])
    out = await run("coder", model, config(tmp_path), goal)
    assert out["error"] is None and "bug" not in seen[1]
    assert "assert total([1, 2]) == 3" in (workspace(tmp_path) / "test_stats.py").read_text()


def test_tests_calling_through_the_module_name_get_the_module_imported() -> None:
    text, error = code_text.test_file("def test_a():\n    assert leap.is_leap(1900) is False\n", "leap.py", ["is_leap"])
    assert error is None and text.startswith("from leap import is_leap\nimport leap\n")
    # a module named like its function: the module import would rebind the function's name
    text, error = code_text.test_file("def test_a():\n    assert is_prime.is_prime(7) is True\n",
                                      "is_prime.py", ["is_prime"])  # fmt: skip
    assert error is None and "import is_prime\n" not in text.replace("from is_prime import is_prime", "")
    assert "assert is_prime(7) is True" in text


def test_a_rounded_copy_of_the_reported_value_is_still_the_bug() -> None:
    from agents.flows.coder import _same_value

    assert _same_value("33.33", "33.333333333333336") and not _same_value("50.0", "33.333333333333336")
    assert _same_value("'a'", "'a'") and not _same_value("'b'", "'a'") and _same_value("raises X", "raises X")


STOCK_GOAL = "Write stock.py with a class Stock: add(name: str, qty: int) and count(name: str) -> int (0 for unknown names)."
STOCK = '''```python
class Stock:
    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def add(self, name: str, qty: int) -> None:
        self.items[name] = self.items.get(name, 0) + qty

    def count(self, name: str) -> int:
        return self.items.get(name, 0)
```'''
OTHER_STOCK = '''```python
from collections import defaultdict


class Stock:
    def __init__(self) -> None:
        self.levels = defaultdict(int)

    def add(self, name: str, qty: int) -> None:
        self.levels[name] += qty

    def count(self, name: str) -> int:
        return self.levels[name] if name in self.levels else 0
```'''
STOCK_TESTS = '''```python
def test_stock():
    s = Stock()
    s.add("pen", 3)
    assert s.count("pen") == 3
    s.add("pen", 2)
    assert s.count("pen") == 5
    assert s.count("ink") == 0
    s.add("pen", -9)
    assert s.count("pen") == 0
    assert s.count("pad") == 0
```'''


async def test_a_test_that_builds_an_object_is_split_per_assert_and_a_wrong_expectation_set_aside(
    tmp_path: Path,
) -> None:
    # A stateful test: each assert becomes its own test replaying the steps before it, so the
    # guessed "never below zero" expectation fails alone, is probed on both implementations
    # after those steps, and is set aside; the right module stays as it was.
    model = TestChatModel(script=[STOCK, STOCK_TESTS, OTHER_STOCK])
    out = await run("coder", model, config(tmp_path), STOCK_GOAL)
    assert out["error"] is None and out["verification"]["passed"] is True, out["output"]
    assert "4 passed, 1 xfailed" in out["output"]
    assert "returns -4" in out["output"] and "s.add('pen', -9)" in out["output"]
    written = (workspace(tmp_path) / "test_stock.py").read_text()
    assert "def test_stock_4():" in written and "s.count('pen') == 5\n" in written
    assert "self.items.get(name, 0) + qty" in (workspace(tmp_path) / "stock.py").read_text()
