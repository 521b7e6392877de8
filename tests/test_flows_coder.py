"""The coder flow's repair from evidence, with scripted TestChatModel replies and the real
sandbox: which side of a failure gets repaired, and that a pass is always a real pytest run."""

from __future__ import annotations

from pathlib import Path

from agents.flows import code_checks, code_text
from agents.flows.coder import failed_count
from agents.flows.common import PytestRun
from core.models import TestChatModel
from tests.test_agents_flows import config, run

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
